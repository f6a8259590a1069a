// What the operator is told when a run fails: one reason and one piece of advice. Each message
// that more than one path gives is written here once.
import type { EnvName } from '../environments.js';
import { SshError } from '../ssh.js';
import type { Live, Run } from './run.js';

/** A failure with the one-line reason and the advice the operator gets. */
export class Failure extends Error {
  override name = 'Failure';
  constructor(
    readonly reason: string,
    readonly advice: string,
    readonly extra: {
      logs?: string;
      /** Whose lines `logs` are (default: the new container). */
      logsOf?: string;
      rolledBack?: boolean;
      digest?: string;
    } = {},
  ) {
    super(reason);
  }
}

export const unlockCommand = (env: EnvName): string => `npm run deploy -- unlock --env ${env}`;

/** What serves when this run changed nothing. */
export const servedBefore = (env: EnvName, live: Live | undefined): string =>
  live?.healthy
    ? `${live.name} (the version that served before) keeps serving`
    : `${env} serves what it served before this run (nothing healthy was running)`;

/** The new version serves, but its record (:stable, history) may be missing. */
export const recordingFailed = (
  run: Run,
  serving: { source: string; name: string; digest?: string },
  why: string,
): Failure =>
  new Failure(
    `${serving.source} now serves ${run.env} (${serving.name}); recording failed: ${why}`,
    `The :stable tag, app.env and history may be stale: check \`npm run deploy -- status --env ${run.env}\`, then deploy again`,
    serving.digest ? { digest: serving.digest } : {},
  );

/** Turns SSH trouble and interrupts into Failures (called after cleaning up what can be cleaned). */
export function explain(run: Run, err: unknown): Failure {
  if (err instanceof Failure) return err;
  const why = err instanceof Error ? err.message : String(err);
  if (run.state.kind === 'switched')
    return recordingFailed(run, { source: run.state.source, name: run.state.name }, why);
  const before = servedBefore(run.env, run.live);
  if (err instanceof SshError && err.kind === 'aborted')
    return new Failure('interrupted', `The new version was not switched on; ${before}`);
  if (err instanceof SshError)
    return new Failure(
      err.message,
      `The proxy was not switched; ${before}. The next deploy removes anything this one left behind`,
    );
  return new Failure(why, `The proxy was not switched; ${before}`);
}
