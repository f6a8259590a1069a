import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/service/config.js';

describe('loadConfig', () => {
  it('has safe defaults', () => {
    expect(loadConfig({})).toEqual({
      port: 8000,
      host: '0.0.0.0',
      logLevel: 'info',
      basePath: '',
      appVersion: '0.0.0-dev',
      gitCommit: 'unknown',
      shutdownTimeoutMs: 10_000,
      shutdownDelayMs: 0,
      databaseUrl: undefined,
      databasePoolMax: 10,
      databaseTimeoutMs: 5_000,
      databaseReadyGraceS: 30,
    });
  });

  it('reads every variable', () => {
    const c = loadConfig({
      PORT: '9000',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'debug',
      BASE_PATH: '/team/api',
      APP_VERSION: '2.0.0',
      GIT_COMMIT: 'deadbeef',
      SHUTDOWN_TIMEOUT_MS: '2500',
      SHUTDOWN_DELAY_MS: '500',
      DATABASE_URL: 'postgres://berth:secret@db:5432/berth',
      DATABASE_POOL_MAX: '4',
      DATABASE_TIMEOUT_MS: '2000',
      DATABASE_READY_GRACE_S: '10',
    });
    expect(c).toEqual({
      port: 9000,
      host: '127.0.0.1',
      logLevel: 'debug',
      basePath: '/team/api',
      appVersion: '2.0.0',
      gitCommit: 'deadbeef',
      shutdownTimeoutMs: 2500,
      shutdownDelayMs: 500,
      databaseUrl: 'postgres://berth:secret@db:5432/berth',
      databasePoolMax: 4,
      databaseTimeoutMs: 2000,
      databaseReadyGraceS: 10,
    });
  });

  it('treats an empty value as unset', () => {
    expect(loadConfig({ PORT: '' }).port).toBe(8000);
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '0'],
    ['PORT', '70000'],
    ['PORT', '80.5'],
    ['LOG_LEVEL', 'verbose'],
    ['BASE_PATH', 'api'],
    ['BASE_PATH', '/api/'],
    ['BASE_PATH', '/a b'],
    ['BASE_PATH', '/..'],
    ['BASE_PATH', '/api/.'],
    ['HOST', 'not a host'],
    ['HOST', 'http://example.com'],
    ['SHUTDOWN_DELAY_MS', 'later'],
    ['SHUTDOWN_TIMEOUT_MS', '-1'],
    ['SHUTDOWN_TIMEOUT_MS', 'soon'],
    ['DATABASE_URL', 'mysql://db/berth'],
    ['DATABASE_URL', 'db:5432'],
    ['DATABASE_URL', 'postgres://'],
    ['DATABASE_POOL_MAX', '0'],
    ['DATABASE_POOL_MAX', '1000'],
    ['DATABASE_TIMEOUT_MS', '10'],
    ['DATABASE_READY_GRACE_S', 'half'],
  ])('rejects %s=%s naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(
      new RegExp(`${name} .*\\(got "${value.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}"\\)`),
    );
  });

  it('accepts IPv4, IPv6 and host names for HOST, and dotted names in BASE_PATH', () => {
    expect(loadConfig({ HOST: '::' }).host).toBe('::');
    expect(loadConfig({ HOST: '::1' }).host).toBe('::1');
    expect(loadConfig({ HOST: '127.0.0.1' }).host).toBe('127.0.0.1');
    expect(loadConfig({ HOST: 'berth-app.internal' }).host).toBe('berth-app.internal');
    expect(loadConfig({ BASE_PATH: '/v1.2/.well' }).basePath).toBe('/v1.2/.well');
  });

  it('refuses a drain delay longer than the whole shutdown timeout', () => {
    expect(() => loadConfig({ SHUTDOWN_TIMEOUT_MS: '1000', SHUTDOWN_DELAY_MS: '2000' })).toThrow(
      /SHUTDOWN_DELAY_MS must not exceed SHUTDOWN_TIMEOUT_MS/,
    );
  });

  it('accepts postgres and postgresql URLs, and a socket directory instead of a host', () => {
    expect(loadConfig({ DATABASE_URL: 'postgresql://u@localhost/berth' }).databaseUrl).toBe(
      'postgresql://u@localhost/berth',
    );
    expect(loadConfig({ DATABASE_URL: 'postgres:///berth?host=/run/postgresql' }).databaseUrl).toBe(
      'postgres:///berth?host=/run/postgresql',
    );
    expect(loadConfig({ DATABASE_URL: '' }).databaseUrl).toBeUndefined();
  });

  it.each([
    'ftp://berth:hunter2@db/berth',
    'postgres://berth:hunter2@',
    'postgres://berth:hunter2@db:port/berth',
    'postgres://berth:hun/ter@2@db/x y',
    'pg://db/berth?password=hunter2',
  ])('never echoes the password of a bad DATABASE_URL (%s)', (url) => {
    let message = '';
    try {
      loadConfig({ DATABASE_URL: url });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^Invalid configuration: DATABASE_URL must be a URL like postgres:/);
    expect(message).not.toContain('hunter2');
    expect(message).not.toContain('ter@2');
  });

  it('names every bad variable at once', () => {
    expect(() => loadConfig({ PORT: 'x', LOG_LEVEL: 'loud' })).toThrow(/PORT .*; LOG_LEVEL /);
  });
});
