// Local processes for the end-to-end test: free loopback ports, start with a log file, wait
// for a condition, stop by pid. Every process a test starts is stopped by that test.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
export { freePort } from '../../helpers/net.js';

export type Proc = {
  name: string;
  child: ChildProcess;
  logFile: string;
  exited: Promise<number | null>;
};

export function startProcess(
  name: string,
  cmd: string,
  args: string[],
  opts: { env: NodeJS.ProcessEnv; logFile: string; cwd?: string },
): Proc {
  const log = createWriteStream(opts.logFile);
  const child = spawn(cmd, args, {
    env: opts.env,
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return { name, child, logFile: opts.logFile, exited };
}

export function tail(proc: Proc, lines = 20): string {
  try {
    return readFileSync(proc.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopProcess(proc: Proc | undefined, graceMs = 5_000): Promise<void> {
  if (proc === undefined || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill('SIGTERM');
  const killed = await Promise.race([
    proc.exited.then(() => true),
    sleep(graceMs).then(() => false),
  ]);
  if (!killed) {
    proc.child.kill('SIGKILL');
    await proc.exited;
  }
}

/** Polls `check` until it returns a value (not undefined); fails with `what` and the last error. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
      );
    }
    await sleep(everyMs);
  }
}
