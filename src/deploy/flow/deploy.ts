// Deploy and rollback as the steps a person would take on the VM, each one named and timed.
// The rule every path follows: when these return or throw, a healthy version serves (the old
// one, the new one, or :stable), the lock is released, and no half-started container is left.
// A new step goes into `activate` (or `deploy` / `rollback` when it is theirs alone) as one
// `report.step(...)` call; its commands go into commands/, its remote program into remote/.
import { removeContainers } from '../commands/app.js';
import { appendLine } from '../commands/files.js';
import { appAlias } from '../environments.js';
import { hex12, shortDigest } from '../digest.js';
import type { Action } from '../history.js';
import { acquire } from '../lock.js';
import { connectionLost, SshError } from '../ssh.js';
import { seconds } from '../time.js';
import { explain, Failure, recordingFailed, servedBefore, unlockCommand } from './advice.js';
import { cleanUp } from './cleanup.js';
import { ensureDatabase } from './database.js';
import { checkHealth, joinShared, logsOf, retire, start } from './container.js';
import { prune } from './prune.js';
import { release } from './release.js';
import { stageForDeploy, stageForRollback } from './settings.js';
import { prepare } from './reconcile.js';
import { historyLine, record } from './record.js';
import { Run, together, type FlowDeps, type FlowResult, type Live, type Target } from './run.js';
import { switchTo } from './switch.js';
import { registerTargets } from './targets.js';
import { findTarget, pull, stableTarget } from './target.js';

export function deploy(deps: FlowDeps, image: string): Promise<FlowResult> {
  const run = new Run(deps);
  return locked(run, 'deploy', image, async () => {
    // The pull asks the registry while prepare reads the VM: neither needs the other, and a new
    // image's download is most of a deploy. Its step waits for what is left of it.
    const pullStarted = performance.now();
    let pullMs = 0;
    const stopPull = new AbortController();
    const pulling = pull(run, image, AbortSignal.any([run.deps.signal, stopPull.signal])).finally(
      () => (pullMs = performance.now() - pullStarted),
    );
    pulling.catch(() => undefined); // awaited by its step, or below
    const live = await run.report
      .step(
        'prepare',
        () => prepare(run),
        (l) => (l ? `live: ${l.name}` : 'first deploy'),
      )
      .catch(async (err: unknown) => {
        // Nothing of this run may still run on the VM when its clean-up and unlock come.
        stopPull.abort();
        await pulling.catch(() => undefined);
        throw err;
      });
    const target = await run.report.step(
      'pull image',
      () => pulling,
      (t) => `${hex12(t.digest)} (pulled in ${seconds(pullMs)}, beside prepare)`,
    );
    await settingsAndDatabase(run, () => stageForDeploy(run));
    return activate(run, target, live, 'deploy');
  });
}

export function rollback(deps: FlowDeps, version: string | undefined): Promise<FlowResult> {
  const run = new Run(deps);
  return locked(run, 'rollback', version ?? 'previous', async () => {
    const live = await run.report.step(
      'prepare',
      () => prepare(run),
      (l) => (l ? `live: ${l.name}` : 'nothing serving'),
    );
    const target = await run.report.step(
      'find version',
      () => findTarget(run, version, live),
      (t) => `${t.source} ${hex12(t.digest)}`,
    );
    await settingsAndDatabase(run, () => stageForRollback(run, target));
    return activate(run, target, live, 'rollback');
  });
}

/** The new container's settings and the database it needs: neither waits for the other. */
async function settingsAndDatabase(run: Run, stage: () => Promise<string>): Promise<void> {
  await together([
    run.report.step('settings', stage, (s) => s),
    run.report.step(
      'database',
      () => ensureDatabase(run),
      (s) => s,
    ),
  ]);
}

/** Start next to the live one, health-gate, run the release command (deploy only), switch, retire the old one, record, prune. */
async function activate(
  run: Run,
  target: Target,
  live: Live | undefined,
  action: Action,
): Promise<FlowResult> {
  const { report } = run;
  const name = await report.step(
    'start new container',
    () => start(run, target),
    (n) => n,
  );
  try {
    await report.step(
      'health check',
      () => checkHealth(run, name),
      (s) => s,
    );
  } catch (err) {
    if (!(err instanceof Failure)) throw err;
    await liveHealth(run);
    const logs = await logsOf(run, name);
    await report.step('remove new container', async () => {
      await run.must(removeContainers([name]), `cannot remove ${name}`);
      run.state = { kind: 'before' };
    });
    if (live?.healthy)
      throw new Failure(
        err.reason,
        `${servedBefore(run.env, live)}; fix the image and deploy again`,
        { logs, digest: target.digest },
      );
    return fallBackToStable(run, err.reason, logs, target, action);
  }
  await liveHealth(run);
  if (action === 'deploy' && run.cfg.releaseCommand) {
    await report.step(
      'release command',
      () => release(run, name, target),
      (s) => s,
    );
  } else if (run.cfg.releaseCommand) {
    report.info(
      'release command: not run on a rollback (the version rolled back to must work with the data as it is)',
    );
  }
  await report.step(
    'switch traffic',
    () => switchTo(run, name, target),
    (how) => how,
  );
  await afterSwitch(
    run,
    target,
    name,
    live,
    () => record(run, target, name, action),
    () =>
      report
        .step(
          'prune',
          () => prune(run, name),
          (n) => n,
        )
        .catch((err: Error) =>
          report.warn(`pruning old images failed (${err.message}); the deploy itself succeeded`),
        ),
  );
  return { image: target.source, digest: target.digest, rolledBack: false };
}

/** Waits for the live container's probe (begun by prepare); says so when it failed. */
async function liveHealth(run: Run): Promise<void> {
  await run.liveChecked;
  if (run.live?.state?.status === 'running' && !run.live.healthy)
    run.report.info(
      `${run.live.name}, which served when this run began, did not answer its health check`,
    );
}

/** The new version failed and nothing healthy was serving: bring back :stable. */
async function fallBackToStable(
  run: Run,
  reason: string,
  logs: string,
  failed: Target,
  action: Action,
): Promise<never> {
  const { report, live } = run;
  const target = await stableTarget(run);
  if (!target) {
    throw new Failure(
      `${reason}; nothing healthy was running and there is no :stable image on the VM to fall back to`,
      `Fix the image and deploy again (${run.env} serves nothing right now)`,
      { logs, digest: failed.digest },
    );
  }
  await report.step(
    'settings for :stable',
    () => stageForRollback(run, target),
    (s) => s,
  );
  const name = await report.step(
    'start :stable',
    () => start(run, target),
    (n) => n,
  );
  try {
    await report.step(
      'health check :stable',
      () => checkHealth(run, name),
      (s) => s,
    );
  } catch (err) {
    if (!(err instanceof Failure)) throw err;
    throw new Failure(
      `${reason}; :stable did not pass the health check either (${err.reason})`,
      `Nothing healthy serves ${run.env}: look at the VM (docker ps, docker logs)`,
      { logs, digest: failed.digest },
    );
  }
  await report.step(
    'switch traffic to :stable',
    () => switchTo(run, name, target),
    (how) => how,
  );
  await run.run(
    appendLine(
      run.paths.history,
      historyLine(run, action, failed.source, failed.digest, 'failed', reason),
    ),
  );
  await afterSwitch(run, target, name, live, () =>
    record(run, target, name, 'rollback', `automatic: ${action} of ${failed.source} failed`),
  );
  throw new Failure(
    reason,
    `Nothing healthy was running, so :stable (${shortDigest(target.digest)}) now serves; fix the image and deploy again`,
    { logs, rolledBack: true, digest: target.digest },
  );
}

/**
 * Once traffic has switched, the new version serves whatever happens next: a failure to stop the
 * old container is only a warning, and a failure to record is reported as exactly that.
 * `afterRecord` (prune) needs the record, not the stop: a container still stopping counts as
 * running, and retention never removes a running container nor its image.
 */
async function afterSwitch(
  run: Run,
  target: Target,
  name: string,
  live: Live | undefined,
  recordIt: () => Promise<void>,
  afterRecord: () => Promise<unknown> = async () => {},
): Promise<void> {
  const { report, cfg } = run;
  // The old container drains while the run records and monitoring follows: nothing routes to it
  // any more, and its SIGTERM drain need not wait for their round trips, nor they for it.
  const stopping = report
    .step(
      'stop old container',
      () => retire(run, live),
      (stopped) => stopped,
    )
    .catch((err: Error) =>
      report.warn(
        `${err.message}; it no longer gets traffic, stop it by hand (docker stop ${live?.name})`,
      ),
    );
  const watched = report
    .step(`join ${cfg.network} network`, () => joinShared(run, name))
    .catch((err: Error) =>
      report.warn(
        `${err.message}; it serves, but monitoring cannot scrape it until: docker network connect --alias ${appAlias(run.env)} ${cfg.network} ${name}`,
      ),
    )
    .then(() => registerTargets(run));
  try {
    await report.step('record', recordIt);
  } catch (err) {
    await Promise.all([stopping, watched]);
    if (err instanceof SshError) throw err;
    throw recordingFailed(
      run,
      { source: target.source, name, digest: target.digest },
      (err as Error).message,
    );
  }
  await Promise.all([stopping, watched, afterRecord()]);
}

/** Takes the environment's lock, runs `body`, cleans up after it whatever happened, releases the lock. */
async function locked(
  run: Run,
  action: Action,
  image: string,
  body: () => Promise<FlowResult>,
): Promise<FlowResult> {
  const { cfg, env, report } = run;
  try {
    run.lock = await report.step('lock', () =>
      acquire(
        run.exec,
        run.paths.lock,
        cfg.who,
        action,
        cfg.lockWaitS,
        run.deps.signal,
        (holder) =>
          report.info(`waiting up to ${cfg.lockWaitS} s for the ${env} lock, held by ${holder}`),
        image,
      ),
    );
  } catch (err) {
    // The remote mkdir may have run before the answer was lost: the lock may now be ours.
    if (connectionLost(err))
      throw new Failure(
        `${err.message} while taking the ${env} lock`,
        `Nothing was deployed; the lock may be left behind: if no deploy runs, \`${unlockCommand(env)}\``,
      );
    throw err;
  }
  let result: FlowResult | undefined;
  let outcome: unknown;
  try {
    result = await body();
  } catch (err) {
    outcome = err ?? new Error('unknown error');
  }
  // Clean up first: only then is it known whether a switch cut off by a lost connection went through.
  await cleanUp(run, action, image, outcome);
  await run.liveChecked;
  if (outcome !== undefined || !result) throw explain(run, outcome);
  return result;
}
