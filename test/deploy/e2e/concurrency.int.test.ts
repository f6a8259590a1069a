// Two deploys to one environment at the same time: the per-environment lock on the VM lets one
// through; the other fails at once naming the holder, or waits its turn when asked to.
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  appContainers,
  cliEnv,
  type CliRun,
  deploy,
  explain,
  failureLine,
  historyLines,
  images,
  served,
  startCli,
  takeVm,
  versions,
  vmReady,
  waitFor,
} from './harness.js';

const env = 'testing';

/** Starts a deploy and resolves once it holds the lock (its output has passed the lock step). */
async function startHoldingLock(image: string): Promise<CliRun> {
  const run = startCli(
    ['deploy', '--env', env, '--image', image, '--json'],
    cliEnv({ DEPLOY_HEALTH_SUCCESSES: '4' }),
  );
  await waitFor(
    'the first deploy to take the lock',
    () => Promise.resolve(/lock/i.test(run.output()) || run.child.exitCode !== null),
    60_000,
    50,
  );
  return run;
}

describe.skipIf(!vmReady)('deploy: two deploys to one environment', () => {
  let releaseVm = (): void => {};
  afterAll(() => releaseVm());

  beforeAll(async () => {
    releaseVm = await takeVm(env);
    const r = await deploy(env, images.v1);
    expect(r.code, explain(r)).toBe(0);
  }, 900_000);

  it('with DEPLOY_LOCK_WAIT_S=0 the second fails at once, naming who holds the lock', async () => {
    const first = await startHoldingLock(images.v2);
    const second = await deploy(env, images.v1, cliEnv({ DEPLOY_LOCK_WAIT_S: '0' }));
    const firstResult = await first.done;

    expect(firstResult.code, explain(firstResult)).toBe(0);
    expect(second.code, explain(second)).toBe(1);
    const reason = failureLine(second.output) ?? '';
    expect(reason, explain(second)).toMatch(/lock/i);
    // The holder: who started the first deploy — the git identity when there is one (as on a
    // laptop), else the login and host.
    expect(second.output).toContain(expectedWho());
    expect(await served(env)).toEqual({ status: 200, version: versions.v2 });
    expect(await appContainers(env)).toHaveLength(1);
  });

  it('with a lock wait the second deploy runs after the first, and its version serves last', async () => {
    const before = historyLines(env).length;
    const first = await startHoldingLock(images.v1);
    const second = startCli(
      ['deploy', '--env', env, '--image', images.v2, '--json'],
      cliEnv({ DEPLOY_LOCK_WAIT_S: '120' }),
    );
    const [a, b] = await Promise.all([first.done, second.done]);

    expect(a.code, explain(a)).toBe(0);
    expect(b.code, explain(b)).toBe(0);
    expect(await served(env)).toEqual({ status: 200, version: versions.v2 });
    expect(await appContainers(env)).toHaveLength(1);
    const added = historyLines(env).slice(before);
    expect(added).toHaveLength(2);
    expect(added[0]).toContain(a.json?.digest ?? 'missing digest');
    expect(added[1]).toContain(b.json?.digest ?? 'missing digest');
  });
});

function expectedWho(): string {
  const gitName = spawnSync('git', ['config', 'user.name'], { encoding: 'utf8' }).stdout.trim();
  return (gitName || `${os.userInfo().username}@${os.hostname()}`).replace(
    /[^A-Za-z0-9@._-]/g,
    '_',
  );
}
