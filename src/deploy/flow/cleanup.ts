// After a run, whatever happened: settle a switch that was cut off, remove the container this run
// started but never switched to, record a failure, release the lock.
import type { RemoteCommand } from '../commands/command.js';
import { appendLine, writeFile } from '../commands/files.js';
import { removeContainers } from '../commands/app.js';
import { unlockEdge } from '../commands/edge.js';
import { reloadProxy } from '../commands/proxy.js';
import { removeRelease } from '../commands/release.js';
import type { Action } from '../history.js';
import { TIMEOUT_MS } from '../limits.js';
import { connectionLost, type RunResult } from '../ssh.js';
import { Failure, unlockCommand } from './advice.js';
import { historyLine } from './record.js';
import { lastLine, type Run } from './run.js';
import { edgeBackTo, edgeSendsTo, edgeWanted, withEdgeLock } from './edge.js';
import { serves } from './switch.js';

/** Commands of the clean-up never throw: one that fails must not stop the next. */
const quietly = (run: Run, cmd: RemoteCommand): Promise<RunResult> =>
  run.exec
    .run(cmd, { timeoutMs: TIMEOUT_MS.quick })
    .catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));

/** `outcome` is what the run threw, or undefined when it succeeded. */
export async function cleanUp(
  run: Run,
  action: Action,
  image: string,
  outcome: unknown,
): Promise<void> {
  if (connectionLost(outcome) && !(await reconnect(run))) return;
  // A lock this run may still hold (its release was cut off or failed) would block every later
  // deploy; freeing it again is harmless (only this run's token frees it).
  if (run.edgeLock) await quietly(run, unlockEdge(run.edgeLock));

  if (run.state.kind === 'switching') await settleSwitch(run, run.state, image);
  if (run.state.kind === 'started') {
    const { name, oneOff } = run.state;
    if (oneOff) await quietly(run, removeRelease(oneOff));
    await removeNew(run, name);
  }
  // A version that serves is never recorded as failed; its own record (or the lack of it) stands.
  if (
    outcome !== undefined &&
    run.state.kind !== 'switched' &&
    !(outcome instanceof Failure && outcome.extra.rolledBack)
  ) {
    const digest = outcome instanceof Failure ? outcome.extra.digest : undefined;
    const reason =
      outcome instanceof Failure
        ? outcome.reason
        : outcome instanceof Error
          ? outcome.message
          : // eslint-disable-next-line @typescript-eslint/no-base-to-string -- whatever was thrown, as text
            String(outcome);
    await quietly(
      run,
      appendLine(
        run.paths.history,
        historyLine(run, action, image, digest ?? '-', 'failed', reason),
      ),
    );
  }
  await releaseLock(run, outcome);
}

/**
 * Cut off while switching: what the proxy and the edge route to decide, not what was planned.
 * The new container stays when nginx serves it and the edge does not send the domain elsewhere;
 * it also stays, with a warning, whenever the edge may send the domain to it (removing it would
 * take the domain down). Otherwise both go back and it is removed.
 */
async function settleSwitch(
  run: Run,
  { name, upstreamBefore }: { name: string; upstreamBefore: string },
  image: string,
): Promise<void> {
  const nginx = await serves(run, name);
  if (!edgeWanted(run)) {
    if (nginx) run.state = { kind: 'switched', name, source: image };
    else await nginxBack(run, upstreamBefore, name);
    return;
  }
  // Under the edge's lock: the edge-switch program of the lost connection outlives it. Either it
  // has finished (its route is what is read here), or it waits for this lock and then finds the
  // new container gone (it checks that it reaches it once it holds the lock).
  try {
    await withEdgeLock(run, async () => {
      const edge = await edgeSendsTo(run, name);
      if (nginx && edge !== false) {
        if (edge === undefined) run.report.warn(`could not ask the edge ${alignNext(run)}`);
        run.state = { kind: 'switched', name, source: image };
        return;
      }
      const back = run.live?.name;
      if (edge === undefined || (edge && !(back && (await edgeBackTo(run, back))))) {
        run.report.warn(
          `left ${name} running: the edge may send ${run.env}'s domain to it; ${alignNext(run)}`,
        );
        run.state = { kind: 'before' };
        return;
      }
      await nginxBack(run, upstreamBefore, name);
      // Still under the lock, so no edge switch can move to it in between.
      await removeNew(run, name);
    });
  } catch (err) {
    run.report.warn(`${(err as Error).message}; ${alignNext(run)}`);
    if (nginx) run.state = { kind: 'switched', name, source: image };
    else run.state = { kind: 'before' };
  }
}

const alignNext = (run: Run): string =>
  `where ${run.env}'s domain goes: the next deploy or rollback puts the edge on what nginx serves`;

/** nginx back on what it served before; never an empty file (a first deploy cut off mid-switch). */
async function nginxBack(run: Run, upstreamBefore: string, name: string): Promise<void> {
  if (upstreamBefore.trim()) {
    await quietly(run, writeFile(run.paths.upstream, upstreamBefore));
    await quietly(run, reloadProxy(run.env));
  }
  run.state = { kind: 'started', name };
}

async function removeNew(run: Run, name: string): Promise<void> {
  const r = await quietly(run, removeContainers([name]));
  if (r.code === 0) run.report.info(`removed the new container ${name}`);
  else run.report.warn(`could not remove ${name}: ${lastLine(r.stderr)}`);
  run.state = { kind: 'before' };
}

/** A second connection after the first was lost; false (with what to do) when there is none. */
async function reconnect(run: Run): Promise<boolean> {
  try {
    run.exec = await run.deps.reconnect();
    run.report.info('reconnected to clean up');
    return true;
  } catch (err) {
    run.report.warn(
      `could not reconnect to clean up (${(err as Error).message}); the lock stays: after checking the VM run \`${unlockCommand(run.env)}\``,
    );
    return false;
  }
}

/** Releases the lock, reconnecting once if the connection went away (e.g. during prune). */
async function releaseLock(run: Run, outcome: unknown): Promise<void> {
  if (!run.lock) return;
  let why = '';
  for (const attempt of [1, 2]) {
    try {
      await run.lock.release(run.exec);
      return;
    } catch (err) {
      why = (err as Error).message;
      if (attempt === 1 && connectionLost(err) && (await reconnect(run))) continue;
      break;
    }
  }
  if (outcome !== undefined) {
    run.report.warn(`could not release the lock (${why}): run \`${unlockCommand(run.env)}\``);
    return;
  }
  // Success otherwise, but a held lock blocks every later deploy: say so and exit non-zero.
  const serving =
    run.state.kind === 'switched' ? `${run.state.source} now serves ${run.env}, ` : '';
  throw new Failure(
    `${serving}but the lock could not be released (${why})`,
    `Run \`${unlockCommand(run.env)}\``,
  );
}
