// docker-compose.yml brought up for real with `docker compose` (v2) on Docker Engine, as on the
// VM, with a test .env and app.env: the public port answers through the proxy, the app is
// hardened as the file says, its settings arrive byte for byte, and Prometheus can reach it by
// its alias on the shared network.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/real-tools.js';
import { awkwardSettings, awkwardSettingsFile } from '../helpers/settings.js';
import { buildImage, removeImage, type BuiltImage } from './build.js';
import {
  docker,
  engineAvailable,
  exec,
  freePort,
  must,
  testEnv,
  unique,
  waitFor200,
} from './engine.js';

const ok = engineAvailable();

function copyComposeDir(env: string, appEnv?: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-compose-'));
  cpSync(path.join(repoRoot, 'docker-compose.yml'), path.join(dir, 'docker-compose.yml'));
  cpSync(path.join(repoRoot, 'proxy'), path.join(dir, 'proxy'), { recursive: true });
  writeFileSync(path.join(dir, '.env'), env);
  if (appEnv !== undefined) writeFileSync(path.join(dir, 'app.env'), appEnv, { mode: 0o600 });
  return dir;
}

describe.skipIf(!ok)('docker-compose.yml, statically', () => {
  it('passes `docker compose config -q` with an empty .env and no app.env (every variable has a default)', async () => {
    const dir = copyComposeDir('');
    try {
      const r = await exec('docker', ['compose', 'config', '-q'], { cwd: dir });
      expect(r).toMatchObject({ code: 0, stderr: '' });
      type Resolved = {
        services: Record<
          string,
          { image: string; ports?: { host_ip: string; published: string; target: number }[] }
        >;
      };
      const resolved = JSON.parse(
        await must('docker', ['compose', '--profile', 'standalone', 'config', '--format', 'json'], {
          cwd: dir,
        }),
      ) as Resolved;
      expect(resolved.services.app?.image).toBe('docker.io/acme/berth:latest');
      expect(resolved.services.proxy?.image).toBe('nginx:1.27-alpine');
      expect(resolved.services.proxy?.ports).toMatchObject([
        { host_ip: '0.0.0.0', published: '8000', target: 8080 },
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!ok)('docker-compose.yml on a real engine', () => {
  const project = unique('berth-it').toLowerCase();
  const berthEnv = project.replace(/^berth-/, '');
  const network = `${project}-net`;
  let image: BuiltImage;
  let dir: string;
  let base: string;
  const compose = (...args: string[]) =>
    must('docker', ['compose', '-p', project, ...args], { cwd: dir });
  const id = async (service: string) => compose('ps', '-q', service);

  beforeAll(async () => {
    image = await buildImage();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const [repository, tag] = [
      image.ref.slice(0, image.ref.lastIndexOf(':')),
      image.ref.slice(image.ref.lastIndexOf(':') + 1),
    ];
    dir = copyComposeDir(
      [
        `IMAGE=${repository}`,
        `TAG=${tag}`,
        `PROXY_IMAGE=${testEnv.PROXY_IMAGE ?? 'localhost/berth-test/nginx:latest'}`,
        'APP_BIND=127.0.0.1',
        `APP_PORT=${port}`,
        `BERTH_ENV=${berthEnv}`,
        `BERTH_NETWORK=${network}`,
        '',
      ].join('\n'),
      [
        'LOG_LEVEL=warn',
        // Must not move the app off 8000: the compose file pins PORT for the proxy and Prometheus.
        'PORT=9999',
        awkwardSettingsFile,
      ].join('\n'),
    );
    await docker('network', 'create', network);
    await compose('--profile', 'standalone', 'up', '-d');
    await waitFor200(`${base}/health`);
  });

  afterAll(async () => {
    if (dir) {
      await exec('docker', ['compose', '-p', project, 'down', '-v', '--timeout', '5'], {
        cwd: dir,
      });
      rmSync(dir, { recursive: true, force: true });
    }
    await exec('docker', ['network', 'rm', network]);
    if (image) await removeImage(image.ref);
  });

  it('answers through the published port, via the proxy, with the request id passed on', async () => {
    const res = await fetch(`${base}/health`, { headers: { 'x-request-id': 'compose-it-1' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('server')).toBe('nginx');
    expect(res.headers.get('x-request-id')).toBe('compose-it-1');
    expect(await res.json()).toMatchObject({ status: 'ok', version: image.version });
    // The proxy logged it, with the same id and the app container as upstream.
    const logs = await compose('logs', '--no-color', 'proxy');
    expect(logs).toMatch(/"request_id":"compose-it-1".*"status":200.*"upstream":"[\d.]+:8000"/);
  });

  it('gives the app every value of app.env byte for byte ($, $$, quotes, #, \\, spaces, =)', async () => {
    const env = JSON.parse(
      await docker(
        'exec',
        await id('app'),
        'node',
        '-e',
        'console.log(JSON.stringify(process.env))',
      ),
    ) as Record<string, string>;
    for (const [key, value] of Object.entries(awkwardSettings))
      expect({ key, value: env[key] }).toEqual({ key, value });
    // .env is compose's: its keys never reach the app.
    expect(env.APP_PORT).toBeUndefined();
    expect(env.PORT).toBe('8000');
  });

  it('publishes no host port for the app itself', async () => {
    expect(await docker('port', await id('app'))).toBe('');
  });

  it('runs the app read-only, without capabilities or privilege escalation, as non-root', async () => {
    const app = await id('app');
    const touch = await exec('docker', ['exec', app, 'touch', '/x']);
    expect(touch.code).not.toBe(0);
    expect(touch.stderr).toContain('Read-only file system');
    expect((await exec('docker', ['exec', app, 'touch', '/tmp/x'])).code).toBe(0);

    const status = await docker('exec', app, 'cat', '/proc/1/status');
    expect(status).toMatch(/^CapEff:\s+0{16}$/m);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(status).toMatch(/^Uid:\s+1000\s/m);

    const limits = await docker(
      'inspect',
      '--format',
      '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.RestartPolicy.Name}}',
      app,
    );
    expect(limits).toBe(`${512 * 1024 * 1024} 1000000000 unless-stopped`);
  });

  it('runs the proxy read-only and unprivileged too', async () => {
    const proxy = await id('proxy');
    const touch = await exec('docker', ['exec', proxy, 'touch', '/etc/nginx/berth/x']);
    expect(touch.stderr).toContain('Read-only file system');
    const status = await docker('exec', proxy, 'cat', '/proc/1/status');
    expect(status).toMatch(/^Uid:\s+101\s/m);
    expect(status).toMatch(/^CapEff:\s+0{16}$/m);
  });

  it('is reachable as berth-<env>-app:8000 on the shared network (where Prometheus scrapes)', async () => {
    const nodeImage = testEnv.NODE_IMAGE ?? 'docker.io/library/node:24-bookworm-slim';
    const scraped = await docker(
      'run',
      '--rm',
      '--network',
      network,
      nodeImage,
      'node',
      '-e',
      `fetch('http://berth-${berthEnv}-app:8000/metrics').then(async (r) => console.log(r.status, await r.text()))`,
    );
    expect(scraped).toMatch(/^200 /);
    expect(scraped).toContain(`app_info{version="${image.version}"`);
  });

  it('keeps serving across a graceful proxy reload', async () => {
    const proxy = await id('proxy');
    await docker(
      'exec',
      proxy,
      'nginx',
      '-e',
      'stderr',
      '-c',
      '/etc/nginx/berth/nginx.conf',
      '-s',
      'reload',
    );
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });
});
