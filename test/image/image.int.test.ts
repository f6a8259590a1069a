// The service image, built from the repository's Dockerfile and run on Docker Engine (see
// scripts/test-env/engine.sh): registry round trip by digest,
// baked-in version on Node 24, non-root, graceful `docker stop`, its own HEALTHCHECK, what is
// (not) inside it, and how much it adds to the base image.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresBinDir, startPostgres } from '../helpers/postgres.js';
import { repoRoot } from '../helpers/real-tools.js';
import { buildImage, removeImage, type BuiltImage } from './build.js';
import {
  docker,
  engineAvailable,
  exec,
  freePort,
  listFiles,
  must,
  testEnv,
  unique,
  waitFor200,
  waitForHealth,
} from './engine.js';

const ok = engineAvailable();
const BASE_IMAGE = testEnv.NODE_IMAGE ?? 'docker.io/library/node:24-bookworm-slim';
const REGISTRY = testEnv.REGISTRY ?? '127.0.0.1:5000';
const ADDED_BUDGET_BYTES = 25 * 1024 * 1024;
const MB = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

describe.skipIf(!ok)('the service image', () => {
  let image: BuiltImage;
  const containers: string[] = [];
  const extraRefs: string[] = [];

  const start = async (...args: string[]): Promise<string> => {
    const name = unique('berth-img');
    containers.push(name);
    await docker('run', '-d', '--name', name, ...args);
    return name;
  };

  beforeAll(async () => {
    image = await buildImage();
    console.log(`image: built ${image.ref} in ${image.seconds.toFixed(1)} s`);
  });

  afterAll(async () => {
    if (containers.length > 0) await exec('docker', ['rm', '-f', ...containers]);
    if (image) await removeImage(image.ref, ...extraRefs);
  });

  it('carries OCI labels and the build version in its environment', async () => {
    const labels = JSON.parse(
      await docker('image', 'inspect', '--format', '{{json .Config.Labels}}', image.ref),
    ) as Record<string, string>;
    expect(labels).toMatchObject({
      'org.opencontainers.image.version': image.version,
      'org.opencontainers.image.revision': image.commit,
      'org.opencontainers.image.created': image.created,
      'org.opencontainers.image.base.name': 'node:24-bookworm-slim',
    });
    expect(labels['org.opencontainers.image.source']).toMatch(/^https:\/\//);
    const env = JSON.parse(
      await docker('image', 'inspect', '--format', '{{json .Config.Env}}', image.ref),
    ) as string[];
    expect(env).toEqual(
      expect.arrayContaining([
        `APP_VERSION=${image.version}`,
        `GIT_COMMIT=${image.commit}`,
        'NODE_ENV=production',
      ]),
    );
  });

  describe('running', () => {
    let name: string;
    let base: string;

    beforeAll(async () => {
      const port = await freePort();
      name = await start('-p', `127.0.0.1:${port}:8000`, image.ref);
      base = `http://127.0.0.1:${port}`;
      await waitFor200(`${base}/health`);
    });

    it('answers /health with the baked-in version, on Node 24', async () => {
      const health = (await (await fetch(`${base}/health`)).json()) as Record<string, unknown>;
      expect(health).toMatchObject({ status: 'ok', version: image.version, commit: image.commit });

      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(/^nodejs_version_info\{version="v24\.\d+\.\d+",major="24"/m);
      expect(metrics).toContain(`app_info{version="${image.version}",commit="${image.commit}"} 1`);
      expect(await docker('exec', name, 'node', '-p', 'process.version')).toMatch(/^v24\./);
    });

    it('runs the service as a non-root user', async () => {
      expect(await docker('image', 'inspect', '--format', '{{.Config.User}}', image.ref)).toBe(
        'node',
      );
      // PID 1 is the service itself (node, no shell in between), so signals reach it directly.
      const status = await docker('exec', name, 'cat', '/proc/1/status');
      const uids =
        /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/m.exec(status)?.slice(1).map(Number) ?? [];
      expect(uids).toHaveLength(4);
      for (const uid of uids) expect(uid).not.toBe(0);
      expect(await docker('exec', name, 'cat', '/proc/1/cmdline')).toBe(
        'node\0dist/service/server.js\0',
      );
      // The code belongs to root: the service user cannot change it.
      const write = await exec('docker', ['exec', name, 'touch', '/app/dist/service/server.js']);
      expect(write.code).not.toBe(0);
      expect(write.stderr).toContain('Permission denied');
    });

    it("loads the service (one bundled module) and the HEALTHCHECK's from the compile cache made at build, which it cannot change", async () => {
      // The service's entry, on a port of its own beside the running one, left once it is loaded.
      const load = await exec('docker', [
        'exec',
        '-e',
        'NODE_DEBUG_NATIVE=COMPILE_CACHE',
        '-e',
        'PORT=8099',
        name,
        'node',
        '-e',
        "await import('/app/dist/service/server.js'); await import('/app/dist/service/healthcheck.js'); process.exit(0)",
        '--input-type=module',
      ]);
      expect(load.code, load.stderr).toBe(0);
      for (const module of [
        'file:///app/dist/service/server.js',
        'file:///app/dist/service/healthcheck.js',
      ])
        expect(load.stderr).toContain(`V8 code cache for ESM ${module} was accepted`);
      // One module: the packages are inside it, not loaded from node_modules.
      expect(load.stderr).not.toContain('node_modules/express');
      const write = await exec('docker', [
        'exec',
        name,
        'sh',
        '-c',
        'touch "$(ls -d /app/.compile-cache/*/ | head -n 1)/x"',
      ]);
      expect(write.code).not.toBe(0);
      expect(write.stderr).toContain('Permission denied');
    });

    it("turns healthy through the image's own HEALTHCHECK, on Docker's own timer", async () => {
      // Nobody runs the check here: dockerd does, every --start-interval during the start period.
      const status = await waitForHealth(name, 'healthy', 20_000);
      expect(status).toBe('healthy');
      expect(await docker('ps', '--filter', `name=^${name}$`, '--format', '{{.Status}}')).toMatch(
        /\(healthy\)/,
      );
    });

    it('finishes a request in flight on `docker stop`, and stops in under 5 s', async () => {
      const inFlight = fetch(`${base}/work?delay_ms=1500`).then(async (res) => ({
        status: res.status,
        body: await res.json(),
      }));
      await new Promise((r) => setTimeout(r, 300)); // the request is now inside the service
      const started = performance.now();
      await docker('stop', '--time', '10', name);
      const stopSeconds = (performance.now() - started) / 1000;
      console.log(`image: docker stop with a request in flight took ${stopSeconds.toFixed(2)} s`);

      await expect(inFlight).resolves.toMatchObject({ status: 200, body: { status: 'ok' } });
      expect(stopSeconds).toBeLessThan(5);
      // 0 = the service's own SIGTERM handler exited; 137 would mean the engine had to SIGKILL it.
      expect(await docker('inspect', '--format', '{{.State.ExitCode}}', name)).toBe('0');
      const logs = await exec('docker', ['logs', name]);
      expect(logs.stdout + logs.stderr).toMatch(/shutting down/);
    });
  });

  it('runs the release command: migrations from inside the image, against a real PostgreSQL when there is one', async () => {
    // Without DATABASE_URL: refused, which proves the runner and its dependencies load in the
    // pruned image.
    const unset = await exec('docker', [
      'run',
      '--rm',
      image.ref,
      'node',
      'dist/service/db/migrate.js',
    ]);
    expect(unset.code).toBe(1);
    expect(unset.stdout + unset.stderr).toContain('DATABASE_URL must be set to run migrations');
    if (postgresBinDir() === undefined) return;
    const pg = await startPostgres();
    try {
      // Host networking: the throwaway cluster listens on this machine's loopback.
      const run = await exec('docker', [
        'run',
        '--rm',
        '--network',
        'host',
        '-e',
        `DATABASE_URL=${pg.url}`,
        image.ref,
        'node',
        'dist/service/db/migrate.js',
      ]);
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(run.stdout).toContain('migrations: applied 1');
      expect(run.stdout + run.stderr).not.toContain(pg.password);
      expect(await pg.query('SELECT name FROM pgmigrations')).toEqual([
        { name: '1796170090289_create-orders' },
      ]);
    } finally {
      pg.destroy();
    }
  });

  it('reports unhealthy when the service does not answer', async () => {
    // Same image and HEALTHCHECK, but nothing listens on the port: the check must fail.
    // The image's own check command; only its timing is shortened, so dockerd gives up in seconds
    // rather than after the 15 s start period and three 10 s intervals.
    const name = await start(
      // 1 s, not 0: a zero value inherits the image's 15 s start period.
      '--health-start-period=1s',
      '--health-interval=1s',
      '--health-retries=2',
      image.ref,
      'node',
      '-e',
      'setTimeout(() => {}, 60_000)',
    );
    expect(await waitForHealth(name, 'unhealthy', 30_000)).toBe('unhealthy');
    expect(await docker('ps', '--filter', `name=^${name}$`, '--format', '{{.Status}}')).toMatch(
      /\(unhealthy\)/,
    );
  });

  it('contains no .env, tests, TypeScript sources, npm cache or dev dependencies', async () => {
    const name = unique('berth-img-files');
    containers.push(name);
    await docker('create', '--name', name, image.ref);
    const files = await listFiles(name);
    const app = files.filter((f) => f.startsWith('app/'));

    // The listing is real: what must be there is there.
    expect(app).toEqual(
      expect.arrayContaining([
        'app/package.json',
        'app/dist/service/server.js',
        'app/dist/service/healthcheck.js',
        'app/node_modules/express/package.json',
        'app/dist/service/db/migrate.js',
        'app/migrations/1796170090289_create-orders.sql',
      ]),
    );

    expect(files.filter((f) => /(^|\/)\.env($|\.)/.test(f.replace(/\/$/, '')))).toEqual([]);
    expect(
      app.filter(
        (f) => f.startsWith('app/src/') || f.startsWith('app/test/') || f.startsWith('app/bench/'),
      ),
    ).toEqual([]);
    // Not ours, and not the ones packages publish either (pruned in the Dockerfile).
    expect(
      app.filter((f) => /\.(test|spec)\.[cm]?[jt]s$/.test(f) || /\/(tests?|__tests__)\//.test(f)),
    ).toEqual([]);
    expect(app.filter((f) => /\.[cm]?ts$/.test(f))).toEqual([]);
    expect(files.filter((f) => /^(root|home\/node)\/\.npm\//.test(f))).toEqual([]);

    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    const devDeps = Object.keys(pkg.devDependencies);
    expect(devDeps).toContain('typescript');
    const shipped = devDeps.filter((dep) => app.includes(`app/node_modules/${dep}/package.json`));
    expect(shipped).toEqual([]);
  });

  it('adds at most 25 MB to the base image (figures printed)', async () => {
    const size = Number(await docker('image', 'inspect', '--format', '{{.Size}}', image.ref));
    const baseSize = Number(await docker('image', 'inspect', '--format', '{{.Size}}', BASE_IMAGE));
    const layers = (
      await docker(
        'history',
        '--human=false',
        '--no-trunc',
        '--format',
        '{{.Size}}\t{{.CreatedBy}}',
        image.ref,
      )
    )
      .split('\n')
      .map((line) => {
        const [bytes = '0', createdBy = ''] = line.split('\t');
        return {
          bytes: Number(bytes),
          step: createdBy.replace(/^\/bin\/sh -c #\(nop\)\s*/, '').slice(0, 70),
        };
      });
    // Berth's own layers are the ones above the base's single imported layer.
    const own = layers.slice(0, -1).filter((l) => l.bytes > 0);
    const added = size - baseSize;
    const biggest = await must('docker', [
      'run',
      '--rm',
      image.ref,
      'sh',
      '-c',
      'cd node_modules && du -sk -- * @*/* 2>/dev/null | grep -v "\t@[^/]*$" | sort -rn | head -n 5',
    ]);

    console.log(
      [
        `image: ${image.ref}`,
        `  full image      ${MB(size)}`,
        `  base image      ${MB(baseSize)}  (${BASE_IMAGE}, local stand-in)`,
        `  added by Berth  ${MB(added)}  (budget ${MB(ADDED_BUDGET_BYTES)})`,
        ...own.map((l) => `    ${MB(l.bytes).padStart(9)}  ${l.step}`),
        '  largest production dependencies (KB):',
        ...biggest.split('\n').map((l) => `    ${l}`),
      ].join('\n'),
    );

    expect(own.reduce((sum, l) => sum + l.bytes, 0)).toBeGreaterThan(0);
    expect(added).toBeGreaterThan(0);
    expect(added).toBeLessThanOrEqual(ADDED_BUDGET_BYTES);
  });

  // Last: it removes the local image and brings it back from the registry, so a failure here
  // cannot take the other tests down with it.
  it('is pushed to the registry and pulled back, byte for byte, by digest', async () => {
    const repo = `${REGISTRY}/${unique('berth-it')}`;
    const pushed = `${repo}:${image.version}`;
    await docker('tag', image.ref, pushed);
    await docker('push', pushed);

    // The digest as the registry itself reports it: what a deploy pins.
    const head = await fetch(
      `http://${REGISTRY}/v2/${repo.slice(REGISTRY.length + 1)}/manifests/${image.version}`,
      {
        method: 'HEAD',
        headers: {
          accept:
            'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json',
        },
      },
    );
    expect(head.status).toBe(200);
    const digest = head.headers.get('docker-content-digest') ?? '';
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);

    // Gone locally, then back from the registry: same image ID (= same config and layers).
    if (containers.length > 0) await docker('rm', '-f', ...containers.splice(0));
    await docker('image', 'rm', pushed, image.ref);
    expect((await exec('docker', ['image', 'inspect', image.id])).code).not.toBe(0);
    await docker('pull', `${repo}@${digest}`);
    expect(await docker('image', 'inspect', '--format', '{{.Id}}', `${repo}@${digest}`)).toBe(
      image.id,
    );
    await docker('tag', image.id, image.ref);

    await docker('image', 'rm', `${repo}@${digest}`);
    const removed = await fetch(
      `http://${REGISTRY}/v2/${repo.slice(REGISTRY.length + 1)}/manifests/${digest}`,
      { method: 'DELETE' },
    );
    expect(removed.status).toBe(202);
  });
});
