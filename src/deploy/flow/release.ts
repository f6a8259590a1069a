// The release step: DEPLOY_RELEASE_COMMAND (e.g. database migrations) once, in a one-off
// container of the new image, after the new container is healthy and before the switch. A
// failure refuses the deploy: the new container is removed (clean-up, from RunState) and the
// version that served before keeps serving. A rollback never runs it (expand/contract: the
// version rolled back to must work with the data as it is).
import { removeRelease, runRelease } from '../commands/release.js';
import { EXIT, LOG_LINES, RELEASE_TIMEOUT_S, TIMEOUT_MS } from '../limits.js';
import { SshError } from '../ssh.js';
import { Failure, servedBefore } from './advice.js';
import type { Run, Target } from './run.js';

/** The one-off container's name: next to the app container it belongs to. */
export const releaseName = (appName: string): string => `${appName}-release`;

/** Runs the release command; returns a note for the step line, or throws a Failure. */
export async function release(run: Run, appName: string, target: Target): Promise<string> {
  const { cfg } = run;
  const argv = cfg.releaseCommand;
  if (!argv) return 'none configured';
  run.checkInterrupt();
  const name = releaseName(appName);
  const timeoutS = cfg.releaseTimeoutS ?? RELEASE_TIMEOUT_S;
  if (run.state.kind === 'started') run.state = { ...run.state, oneOff: name };
  let res;
  try {
    res = await run.run(
      runRelease({
        env: run.env,
        name,
        image: target.id,
        envFile: run.paths.stagedSettings,
        network: cfg.network,
        argv,
        timeoutS,
        tuning: run.tuning,
      }),
      timeoutS * 1000 + TIMEOUT_MS.releaseGrace,
      true,
    );
  } catch (err) {
    // Our side gave up (or Ctrl-C): the VM's container may still run. Clean-up removes it too
    // (RunState names it); on a live connection, remove it now.
    if (!(err instanceof SshError && err.kind === 'lost'))
      await run.run(removeRelease(name), TIMEOUT_MS.quick).catch(() => undefined);
    throw err;
  }
  const logs = lastLines(`${res.stdout}\n${res.stderr}`);
  if (res.code === 0) {
    // The address goes too: a release can run for minutes, and a restart would change it.
    if (run.state.kind === 'started') run.state = { kind: 'started', name: appName };
    const last = logs.split('\n').at(-1)?.slice(0, 200);
    return `\`${argv.join(' ')}\` exited 0${last ? `: ${last}` : ''}`;
  }
  const why =
    res.code === EXIT.release.timedOut
      ? `the release command \`${argv.join(' ')}\` ran longer than ${timeoutS} s (DEPLOY_RELEASE_TIMEOUT_S) and was killed`
      : res.code === EXIT.release.setup
        ? `docker could not start the release command's container`
        : `the release command \`${argv.join(' ')}\` failed (exit ${res.code})`;
  throw new Failure(
    why,
    `The new version was not switched on; ${servedBefore(run.env, run.live)}. Fix the release command (or the data) and deploy again`,
    { logs, digest: target.digest, logsOf: 'the release command' },
  );
}

const lastLines = (text: string): string =>
  text
    .split('\n')
    .filter((l) => l.trim())
    .slice(-LOG_LINES)
    .join('\n');
