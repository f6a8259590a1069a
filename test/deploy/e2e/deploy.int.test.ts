// One environment through its life: first deploy, a second healthy one, three kinds of bad
// image, rollbacks, and a deploy onto a VM where nothing healthy runs. Each scenario runs the
// real CLI over SSH against the test VM and then looks at what actually serves there.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  appContainers,
  cliEnv,
  type CliResult,
  deploy,
  docker,
  explain,
  failureLine,
  historyLines,
  images,
  runCli,
  served,
  takeVm,
  testEnv,
  testPorts,
  versions,
  vmReady,
} from './harness.js';
import { startPoller, type PollResult } from './poller.js';

const env = 'production';

/** Runs a deploy while a poller hits the public port; returns both. */
async function deployUnderLoad(image: string): Promise<{ r: CliResult; load: PollResult }> {
  const poller = startPoller(`http://127.0.0.1:${testPorts[env]}/health`);
  const r = await deploy(env, image);
  return { r, load: await poller.stop() };
}

describe.skipIf(!vmReady)('deploy: one environment on the test VM', () => {
  let releaseVm = (): void => {};
  afterAll(() => releaseVm());

  const digests: Record<string, string> = {};
  const runningIds = async (): Promise<string[]> => (await appContainers(env)).map((c) => c.id);

  beforeAll(async () => {
    releaseVm = await takeVm(env);
  }, 900_000);

  it('first deploy (key and known_hosts given as text, as in CI) serves v1 and records it', async () => {
    const key = readFileSync(testEnv.VM_SSH_KEY_FILE ?? '', 'utf8');
    const r = await deploy(
      env,
      images.v1,
      cliEnv({
        VM_SSH_KEY_FILE: undefined,
        VM_KNOWN_HOSTS_FILE: undefined,
        VM_SSH_KEY: key,
        VM_KNOWN_HOSTS: readFileSync(testEnv.VM_KNOWN_HOSTS_FILE ?? '', 'utf8'),
      }),
    );
    expect(r.code, explain(r)).toBe(0);
    expect(r.json).toMatchObject({ ok: true, env, rolledBack: false });
    expect(r.json?.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(r.json?.steps?.length).toBeGreaterThan(2);
    expect(r.json?.steps?.every((s) => s.ok && s.ms >= 0)).toBe(true);
    // The private key never reaches the output.
    const keyBody = key.split('\n')[1] ?? 'unreachable';
    expect(r.output).not.toContain(keyBody);

    expect(await served(env)).toEqual({ status: 200, version: versions.v1 });
    expect(await appContainers(env)).toHaveLength(1);
    digests.v1 = r.json?.digest ?? '';
    const history = historyLines(env);
    expect(history).toHaveLength(1);
    expect(history[0]).toContain(digests.v1);
  });

  it('a second healthy deploy switches to v2 with no failed request and removes v1', async () => {
    const before = await runningIds();
    const { r, load } = await deployUnderLoad(images.v2);
    expect(r.code, explain(r)).toBe(0);
    expect(r.json).toMatchObject({ ok: true, env, rolledBack: false });
    digests.v2 = r.json?.digest ?? '';
    expect(digests.v2).not.toBe(digests.v1);

    expect(load.failed, JSON.stringify(load)).toBe(0);
    expect(load.served).toEqual([versions.v1, versions.v2]);
    expect(load.oldAfterNew).toBe(0);
    expect(await served(env)).toEqual({ status: 200, version: versions.v2 });
    // The switch reads which container answered from a header nginx adds only for requests
    // from inside the proxy: a client never sees it.
    const res = await fetch(`http://127.0.0.1:${testPorts[env]}/health`);
    expect(res.headers.get('x-berth-upstream')).toBeNull();
    expect(res.headers.get('x-request-id')).toBeTruthy();
    const after = await runningIds();
    expect(after).toHaveLength(1);
    expect(after).not.toEqual(before);
    expect(historyLines(env)).toHaveLength(2);
  });

  it('an image whose /health answers 500 is refused: v2 keeps serving, one-line reason, its log lines', async () => {
    const before = await runningIds();
    const { r, load } = await deployUnderLoad(images.unhealthy);
    expect(r.code, explain(r)).toBe(1);
    expect(r.json?.ok).toBe(false);
    expect(failureLine(r.output), explain(r)).toMatch(/health/i);
    expect(r.output).toContain('berth-fixture: /health answers 500 on purpose');

    expect(load.failed, JSON.stringify(load)).toBe(0);
    expect(load.served).toEqual([versions.v2]);
    expect(await served(env)).toEqual({ status: 200, version: versions.v2 });
    expect(await runningIds()).toEqual(before);
  });

  it('an image that crashes at start is refused with its last log lines; v2 keeps serving', async () => {
    const before = await runningIds();
    const { r, load } = await deployUnderLoad(images.crash);
    expect(r.code, explain(r)).toBe(1);
    expect(failureLine(r.output), explain(r)).toBeDefined();
    expect(r.output).toContain('berth-fixture: crashing at start on purpose');

    expect(load.failed, JSON.stringify(load)).toBe(0);
    expect(await served(env)).toEqual({ status: 200, version: versions.v2 });
    expect(await runningIds()).toEqual(before);
  });

  it('a tag that does not exist stops at the pull: nothing on the VM changes', async () => {
    const before = await runningIds();
    const historyBefore = historyLines(env).length;
    const r = await deploy(env, images.missing);
    expect(r.code, explain(r)).toBe(1);
    expect(failureLine(r.output), explain(r)).toMatch(/pull/i);
    const steps = r.json?.steps ?? [];
    expect(steps.at(-1)?.ok, explain(r)).toBe(false);
    expect(steps.at(-1)?.name).toMatch(/pull/i);

    expect(await served(env)).toEqual({ status: 200, version: versions.v2 });
    expect(await runningIds()).toEqual(before);
    // A refused deploy may be logged, but the current digest stays v2.
    expect(historyLines(env).length).toBeGreaterThanOrEqual(historyBefore);
  });

  it('rollback without a version returns to the previous healthy digest (v1)', async () => {
    const r = await runCli(['rollback', '--env', env, '--json']);
    expect(r.code, explain(r)).toBe(0);
    expect(r.json?.digest).toBe(digests.v1);
    expect(await served(env)).toEqual({ status: 200, version: versions.v1 });
    expect(await appContainers(env)).toHaveLength(1);
    expect(historyLines(env).at(-1)).toContain(digests.v1);
  });

  it('rollback to a named version (its digest) serves that version', async () => {
    const r = await runCli(['rollback', '--env', env, digests.v2 ?? '', '--json']);
    expect(r.code, explain(r)).toBe(0);
    expect(r.json?.digest).toBe(digests.v2);
    expect(await served(env)).toEqual({ status: 200, version: versions.v2 });
    expect(await appContainers(env)).toHaveLength(1);
  });

  it('status and history show what runs', async () => {
    const status = await runCli(['status', '--env', env]);
    expect(status.code, explain(status)).toBe(0);
    expect(status.output).toContain(digests.v2?.slice(7, 19));
    expect(status.output).toContain(versions.v2);
    // No APP_DOMAIN: the VM's port, and what plain HTTP exposes.
    expect(status.output).toContain(`http://127.0.0.1:${testPorts[env]}`);
    expect(status.output).toContain(`plain HTTP (no APP_DOMAIN): ${env}: anyone on the path`);
    // The test VM runs no berth-monitoring stack: status says so, and what to do.
    expect(status.output).toContain('monitoring: Alertmanager is not running on this VM');

    const history = await runCli(['history', '--env', env]);
    expect(history.code, explain(history)).toBe(0);
    expect(history.output).toContain(digests.v1?.slice(7, 19));
    expect(history.output).toContain(digests.v2?.slice(7, 19));
  });

  it('with nothing healthy running, a refused deploy brings back :stable (v2)', async () => {
    // The VM after a crash: the app container is gone, the proxy has nothing to send traffic to.
    await docker(['rm', '-f', ...(await runningIds())]);
    expect((await served(env)).status).not.toBe(200);

    const r = await deploy(env, images.crash);
    expect(r.code, explain(r)).toBe(1);
    expect(r.json?.rolledBack, explain(r)).toBe(true);
    expect(await served(env)).toEqual({ status: 200, version: versions.v2 });
    expect(await appContainers(env)).toHaveLength(1);
  });
});
