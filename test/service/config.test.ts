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
      shutdownDelayMs: 1_000,
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
  ])('rejects %s=%s naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`${name} .*\\(got "${value.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}"\\)`));
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

  it('names every bad variable at once', () => {
    expect(() => loadConfig({ PORT: 'x', LOG_LEVEL: 'loud' })).toThrow(/PORT .*; LOG_LEVEL /);
  });
});
