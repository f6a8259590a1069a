// The monitoring targets a deploy writes: file_sd YAML for the app (alias, env, metrics path under
// BASE_PATH) and the public URL, made only from the environment's settings on the VM.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { toShell } from '../../../src/deploy/commands/command.js';
import * as t from '../../../src/deploy/commands/targets.js';
import { EXIT } from '../../../src/deploy/limits.js';
import { runLocally as sh } from '../../helpers/remote-shell.js';

const settings = (over: Partial<t.EnvSettings> = {}): t.EnvSettings => ({
  basePath: '',
  port: 8001,
  bind: '0.0.0.0',
  ...over,
});

describe('target files', () => {
  it('lists the app by its network alias with its env and /metrics', () => {
    expect(parse(t.appTargetsFile('staging', settings()))).toEqual([
      {
        targets: ['berth-staging-app:8000'],
        labels: { env: 'staging', __metrics_path__: '/metrics' },
      },
    ]);
  });

  it('puts the metrics path under BASE_PATH', () => {
    const groups = parse(t.appTargetsFile('testing', settings({ basePath: '/team/api' }))) as {
      labels: Record<string, string>;
    }[];
    expect(groups[0]?.labels).toEqual({ env: 'testing', __metrics_path__: '/team/api/metrics' });
  });

  it('probes the proxy on its published port through the host gateway, under BASE_PATH', () => {
    expect(parse(t.probeTargetsFile('staging', settings({ basePath: '/api' })) ?? '')).toEqual([
      { targets: ['http://host.docker.internal:8001/api/health'], labels: { env: 'staging' } },
    ]);
  });

  it('probes https://APP_DOMAIN when the environment has a domain, whatever the bind', () => {
    const s = settings({ domain: 'staging.example.com', bind: '127.0.0.1', basePath: '/api' });
    expect(t.probeUrl(s)).toBe('https://staging.example.com/api/health');
  });

  it('has no probe for a port bound to loopback only (no container could reach it)', () => {
    expect(t.probeTargetsFile('staging', settings({ bind: '127.0.0.1' }))).toBeUndefined();
    expect(t.probeUrl(settings({ bind: '::1' }))).toBeUndefined();
  });

  it('probes a specific bind address directly', () => {
    expect(t.probeUrl(settings({ bind: '10.1.2.3' }))).toBe('http://10.1.2.3:8001/health');
    expect(t.probeUrl(settings({ bind: 'fd00::5' }))).toBe('http://[fd00::5]:8001/health');
  });

  it('names files by environment inside the monitoring stack on the VM', () => {
    expect(t.targetsDir('/opt/berth')).toBe('/opt/berth/monitoring/prometheus/targets');
    expect(t.targetFiles('/d', 'production')).toEqual({
      app: '/d/app-production.yml',
      probe: '/d/probe-production.yml',
      database: '/d/postgres-production.yml',
    });
  });
});

describe('settings from the VM', () => {
  it('reads compose quoting in .env and raw values in app.env; the last one wins', () => {
    const text = [
      'APP_PORT="18001"',
      "APP_BIND='0.0.0.0'",
      'APP_DOMAIN=api.example.com # production',
      '--- app.env',
      'BASE_PATH=/v1',
      'BASE_PATH=/api',
    ].join('\n');
    expect(t.parseSettings(text, 8001)).toEqual({
      basePath: '/api',
      port: 18001,
      bind: '0.0.0.0',
      domain: 'api.example.com',
    });
  });

  it('falls back to the environment default port, all interfaces, no prefix, no domain', () => {
    expect(t.parseSettings('--- app.env\n', 8002)).toEqual({
      basePath: '',
      port: 8002,
      bind: '0.0.0.0',
    });
  });

  it('takes APP_DOMAIN from .env only, where the edge switch reads it', () => {
    expect(t.parseSettings('--- app.env\nAPP_DOMAIN=s.example.org\n', 1).domain).toBeUndefined();
    expect(t.parseSettings('APP_DOMAIN=s.example.org\n--- app.env\n', 1).domain).toBe(
      's.example.org',
    );
  });

  it.each([
    ['--- app.env\nBASE_PATH=api', /BASE_PATH in app.env is not a path like \/api/],
    ["--- app.env\nBASE_PATH=/a'b", /BASE_PATH/],
    ['APP_PORT=80000', /APP_PORT in .env is not a port/],
    ['APP_BIND=localhost', /APP_BIND in .env is not an IP address/],
    ["APP_DOMAIN=x.example.com'", /APP_DOMAIN is not a host name/],
  ])('refuses a value that would make a wrong target: %s', (text, message) => {
    expect(() => t.parseSettings(text, 8000)).toThrow(message);
  });

  it('reads only its keys from the files, in a real shell, and copes with missing files', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'berth-targets-'));
    const [dot, app] = [path.join(dir, '.env'), path.join(dir, 'app.env')];
    writeFileSync(dot, 'APP_PORT=18001\nSECRET=hunter2\n');
    writeFileSync(app, 'DATABASE_URL=postgres://u:pw@db/x\nBASE_PATH=/api\n');
    const out = sh(t.readSettings(dot, app)).out;
    expect(out).toBe('APP_PORT=18001\n--- app.env\nBASE_PATH=/api\n');
    expect(t.parseSettings(out, 8001)).toMatchObject({ port: 18001, basePath: '/api' });
    expect(sh(t.readSettings(path.join(dir, 'no'), path.join(dir, 'none')))).toEqual({
      code: 0,
      out: '--- app.env\n',
    });
    expect(toShell(t.readSettings(dot, app))).not.toMatch(/hunter2|DATABASE/);
  });
});

describe('target commands in a real shell', () => {
  it('tells a VM without the monitoring stack from one with it', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'berth-targets-'));
    expect(sh(t.checkTargetsDir(path.join(dir, 'monitoring/prometheus/targets'))).code).toBe(
      EXIT.targets.missing,
    );
    mkdirSync(path.join(dir, 't'));
    expect(sh(t.checkTargetsDir(path.join(dir, 't'))).code).toBe(0);
  });

  it('removes only the named files, and a missing one is no error', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'berth-targets-'));
    const files = t.targetFiles(dir, 'staging');
    writeFileSync(files.app, 'x');
    writeFileSync(path.join(dir, 'app-production.yml'), 'keep');
    expect(sh(t.removeTargetFiles(files.app, files.probe)).code).toBe(0);
    expect(readFileSync(path.join(dir, 'app-production.yml'), 'utf8')).toBe('keep');
    expect(() => readFileSync(files.app)).toThrow();
  });

  it("parks the database's target out of Prometheus's *.yml and brings it back, saying when it did", () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'berth-targets-'));
    const { database } = t.targetFiles(dir, 'staging');
    expect(sh(t.parkTargetFile(database))).toMatchObject({ code: 0, out: '' });
    writeFileSync(database, 'db');
    expect(sh(t.parkTargetFile(database))).toMatchObject({ code: 0, out: 'parked\n' });
    expect(existsSync(database)).toBe(false);
    expect(readFileSync(`${database}.down`, 'utf8')).toBe('db');
    expect(sh(t.unparkTargetFile(database))).toMatchObject({ code: 0, out: 'restored\n' });
    expect(readFileSync(database, 'utf8')).toBe('db');
    expect(existsSync(`${database}.down`)).toBe(false);
    expect(sh(t.unparkTargetFile(database))).toMatchObject({ code: 0, out: '' });
  });
});
