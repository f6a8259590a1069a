// What a VM reboot does to the engine, on the real Docker Engine: dockerd and containerd stop
// (every container with them) and start again, and nobody runs a deploy. Every environment's
// proxy and live app must answer again on their public ports with the version the history names,
// and no request may reach a wrong or dead address on the way (a 502 from a proxy whose upstream
// went stale, or the version that was switched away from).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { LABEL_DIGEST } from '../../../src/deploy/commands/app.js';
import { parseHistory } from '../../../src/deploy/history.js';
import { waitForHealth } from '../../image/engine.js';
import {
  STANDINS,
  startMonitoringStack,
  type MonitoringStack,
} from '../../monitoring/lib/compose-stack.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  appContainers,
  deploy,
  docker,
  explain,
  historyLines,
  images,
  runCli,
  served,
  takeVm,
  testEnv,
  testPorts,
  writeVmFile,
  versions,
  vmReady,
  type EnvName,
} from './harness.js';

const run = promisify(execFile);

/** SQL in staging's db container (its id does not change across a daemon restart). */
const stagingDb = (): Promise<string> =>
  docker([
    'ps',
    '-q',
    '--filter',
    'label=com.docker.compose.project=berth-staging',
    '--filter',
    'label=com.docker.compose.service=db',
  ]);
const psql = async (sql: string): Promise<string> =>
  docker(['exec', await stagingDb(), 'psql', '-U', 'berth', '-d', 'berth', '-Atc', sql]);
const engineScript = testEnv.BERTH_ENGINE_SCRIPT ?? '';

interface Sample {
  at: number;
  status: number;
  version?: string;
}

/**
 * Restarts the engine as a reboot does, while polling each public port every 50 ms. Returns what
 * each port answered from the moment the engine was asked to stop.
 */
async function rebootEngine(
  envs: EnvName[],
): Promise<{ samples: Record<string, Sample[]>; engineBackAt: number; startedAt: number }> {
  const samples: Record<string, Sample[]> = Object.fromEntries(envs.map((e) => [e, []]));
  let polling = true;
  const pollers = envs.map(async (env) => {
    while (polling) {
      const r = await served(env);
      samples[env]?.push({ at: performance.now(), status: r.status, version: r.version });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
  const startedAt = performance.now();
  await run('bash', [engineScript, 'restart'], { timeout: 180_000 });
  const engineBackAt = performance.now();
  // Until every port has answered 200 for a while after the engine is back, or 90 s.
  const deadline = engineBackAt + 90_000;
  const settled = (env: EnvName) =>
    (samples[env] ?? []).filter((s) => s.at > engineBackAt && s.status === 200).length >= 20;
  while (!envs.every(settled) && performance.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 200));
  polling = false;
  await Promise.all(pollers);
  return { samples, engineBackAt, startedAt };
}

/** The digest the history says is live: the newest deploy or rollback that succeeded. */
const historyDigest = (env: EnvName): string | undefined =>
  parseHistory(historyLines(env).join('\n'))
    .filter((e) => e.result === 'ok')
    .at(-1)?.digest;

describe.skipIf(!vmReady)('a VM reboot (dockerd and containerd stop and start again)', () => {
  let releaseVm = (): void => {};
  let monitoring: MonitoringStack | undefined;
  const envs: EnvName[] = ['production', 'staging'];

  beforeAll(async () => {
    if (!engineScript)
      throw new Error(
        '.test-env/engine.env names no BERTH_ENGINE_SCRIPT: run scripts/test-env/engine.sh up',
      );
    releaseVm = await takeVm(...envs);
    // staging has its database, as init_setup.sh sets it up (the password assembled at run time).
    await docker(['volume', 'rm', '-f', 'berth-staging-db']);
    writeVmFile(
      'staging',
      '.env',
      `APP_PORT=${testPorts.staging}\nAPP_BIND=127.0.0.1\nDB_IMAGE=${testEnv.DB_IMAGE ?? 'localhost/berth-test/postgres:latest'}\nDB_PASSWORD=pw${randomBytes(12).toString('hex')}\n`,
    );
    // The monitoring stack's parts that can run here, as init_setup.sh starts them on the VM.
    monitoring = await startMonitoringStack();
  }, 900_000);

  afterAll(async () => {
    // Whatever happened above, the engine every later test needs is up again.
    await run('bash', [engineScript, 'up'], { timeout: 600_000 }).catch((err: Error) =>
      console.error(`engine.sh up: ${err.message}`),
    );
    monitoring?.down();
    releaseVm();
  });

  const expectBackAfterReboot = async (want: Record<EnvName, string>) => {
    const { samples, engineBackAt, startedAt } = await rebootEngine(envs);
    for (const env of envs) {
      const after = (samples[env] ?? []).filter((s) => s.at > engineBackAt);
      const first = after.find((s) => s.status === 200);
      expect(first, `${env} never answered 200 after the engine came back`).toBeDefined();
      console.log(
        `reboot: ${env} first 200 ${((first!.at - engineBackAt) / 1000).toFixed(2)} s after dockerd answered ` +
          `(${((first!.at - startedAt) / 1000).toFixed(2)} s after the stop began)`,
      );
      // From the first 200 on: only 200s, only the version the history names.
      const fromFirst = after.slice(after.indexOf(first!));
      expect(fromFirst.filter((s) => s.status !== 200 || s.version !== want[env])).toEqual([]);
      const apps = await appContainers(env);
      expect(apps).toHaveLength(1);
      expect(apps[0]?.labels[LABEL_DIGEST]).toBe(historyDigest(env));
    }
    // The monitoring stack's containers are back and healthy, with no `up` run.
    for (const part of STANDINS) {
      expect(await waitForHealth(monitoring!.container(part), 'healthy', 60_000), part).toBe(
        'healthy',
      );
    }
  };

  // One reboot for both cases (each costs about 50 s): staging after a deploy, production after a
  // rollback away from the version deployed last.
  it('after a deploy, and after a rollback, each environment serves the version it had, with no deploy run', async () => {
    for (const [env, image] of [
      ['production', images.v1],
      ['production', images.v2],
      ['staging', images.v1],
    ] as const) {
      const r = await deploy(env, image);
      expect(r.code, explain(r)).toBe(0);
    }
    await psql('CREATE TABLE reboot_probe (x int); INSERT INTO reboot_probe VALUES (42)');
    const db = await stagingDb();
    const r = await runCli(['rollback', '--env', 'production', '--json']);
    expect(r.code, explain(r)).toBe(0);
    expect(await served('production')).toEqual({ status: 200, version: versions.v1 });
    await expectBackAfterReboot({ production: versions.v1, staging: versions.v1, testing: '' });
    // The database is back by its restart policy, the same container, with its data.
    expect(await waitForHealth(db, 'healthy', 60_000)).toBe('healthy');
    expect(await psql('SELECT x FROM reboot_probe')).toBe('42');
  });

  it('shows the live app healthy by its own HEALTHCHECK, and unhealthy once it sickens after the switch', async () => {
    const [live] = await appContainers('production');
    expect(await waitForHealth(live!.id, 'healthy', 30_000)).toBe('healthy');

    const r = await deploy('production', images.sickens);
    expect(r.code, explain(r)).toBe(0);
    const [sick] = await appContainers('production');
    // Docker's timer: 1 s during the 15 s start period (failures there do not count), then every
    // 10 s; three failures in a row make it unhealthy.
    expect(await waitForHealth(sick!.id, 'unhealthy', 90_000)).toBe('unhealthy');
    expect(await docker(['ps', '--filter', `id=${sick!.id}`, '--format', '{{.Status}}'])).toMatch(
      /\(unhealthy\)/,
    );
  });
});
