// The app container: what `docker create` gets, held to docker-compose.yml's app service.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import * as c from '../../../src/deploy/commands/app.js';
import { toShell } from '../../../src/deploy/commands/command.js';
import { repoRoot } from '../../helpers/real-tools.js';

describe('the app container', () => {
  const spec: c.AppSpec = {
    env: 'production',
    name: 'berth-production-app-20260101000000-abcd',
    image: 'sha256:1234',
    source: 'reg/berth:v1',
    digest: 'sha256:ff',
    envFile: '/opt/berth/production/.env',
    tuning: { APP_MEMORY_LIMIT: '256m' },
  };
  const argv = c.createApp(spec).argv;
  const value = (flag: string) => argv.filter((_, i) => argv[i - 1] === flag);

  it('joins the compose project by label, under its own name, on the project network', () => {
    expect(value('--name')).toEqual([spec.name]);
    expect(value('--network')).toEqual(['berth-production_default']);
    expect(value('--label')).toEqual(
      expect.arrayContaining([
        'com.docker.compose.project=berth-production',
        'com.docker.compose.service=app',
        'berth.env=production',
        'berth.digest=sha256:ff',
      ]),
    );
    expect(argv.at(-1)).toBe('sha256:1234');
  });
  it('takes tuning from .env and falls back to the compose defaults', () => {
    expect(value('--memory')).toEqual(['256m']);
    expect(value('--cpus')).toEqual(['1.0']);
  });

  // docker-compose.yml is what an operator reads; the deploy must run the app the same way.
  it('carries every hardening setting of the app service in docker-compose.yml', () => {
    const compose = parse(readFileSync(path.join(repoRoot, 'docker-compose.yml'), 'utf8')) as {
      services: { app: Record<string, unknown> };
    };
    const app = compose.services.app;
    const interp = (v: unknown) => String(v).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1');
    const plain = c.createApp({ ...spec, tuning: {} }).argv;
    const val = (flag: string) => plain.filter((_, i) => plain[i - 1] === flag);
    expect(app.read_only).toBe(true);
    expect(plain).toContain('--read-only');
    expect(val('--tmpfs')).toEqual(app.tmpfs);
    expect(val('--cap-drop')).toEqual(app.cap_drop);
    expect(val('--security-opt')).toEqual(app.security_opt);
    expect(val('--memory')).toEqual([interp(app.mem_limit)]);
    expect(val('--cpus')).toEqual([interp(app.cpus)]);
    expect(val('--pids-limit')).toEqual([String(app.pids_limit)]);
    expect(val('--restart')).toEqual([app.restart]);
    expect(val('--stop-timeout')).toEqual([String(app.stop_grace_period).replace(/s$/, '')]);
    expect(val('--expose')).toEqual(app.expose);
    // Neither sets a health check: the image's own HEALTHCHECK applies, whatever its runtime.
    expect(app.healthcheck).toBeUndefined();
    expect(plain.filter((a) => a.startsWith('--health') || a === '--no-healthcheck')).toEqual([]);
    expect(val('--env')).toEqual(
      Object.entries(app.environment as Record<string, string>).map(([k, v]) => `${k}=${v}`),
    );
    const logging = app.logging as { driver: string; options: Record<string, string> };
    expect(val('--log-driver')).toEqual([logging.driver]);
    expect(val('--log-opt')).toEqual(
      Object.entries(logging.options).map(([k, v]) => `${k}=${interp(v)}`),
    );
    const aliases = (
      (app.networks as Record<string, { aliases?: string[] } | null>).berth?.aliases ?? []
    ).map((a) => a.replace('${BERTH_ENV:-production}', 'production'));
    const join = c.joinSharedNetwork('berth', 'production', spec.name);
    expect(join.argv[2]).toContain('docker network connect --alias "$2" "$1" "$3"');
    expect(join.argv.slice(4)).toEqual(['berth', aliases[0], spec.name]);
  });

  it('joins the shared network once: "already exists" is success, any other error is not', () => {
    const bin = mkdtempSync(path.join(tmpdir(), 'berth-fake-docker-'));
    const fake = path.join(bin, 'docker');
    const join = (answer: string) => {
      writeFileSync(fake, `#!/bin/sh\necho '${answer}' >&2\nexit 1\n`, { mode: 0o755 });
      return spawnSync(
        'sh',
        [
          '-c',
          `PATH=${bin}:$PATH; ${toShell(c.joinSharedNetwork('berth', 'production', 'app-1'))}`,
        ],
        { encoding: 'utf8' },
      );
    };
    expect(
      join('Error response from daemon: endpoint with name app-1 already exists in network berth')
        .status,
    ).toBe(0);
    const other = join('Error response from daemon: network berth not found');
    expect(other.status).toBe(1);
    expect(other.stderr).toContain('network berth not found');
  });

  it('names its image id, not a tag, so a re-pushed tag cannot change what runs', () => {
    expect(argv).not.toContain('reg/berth:v1');
  });
});
