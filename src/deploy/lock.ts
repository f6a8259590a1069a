// The per-environment deploy lock on the VM: an atomic `mkdir` (Kamal does the same) with a
// holder file saying who and since when. A second deploy waits up to DEPLOY_LOCK_WAIT_S or fails
// at once naming the holder; `unlock` breaks a stale one. The holder line carries a random token,
// so a deploy only ever releases its own lock.
import { randomBytes } from 'node:crypto';
import { breakLock, releaseLock, takeLock } from './commands/lock.js';
import { EXIT, TIMEOUT_MS } from './limits.js';
import type { Executor } from './ssh.js';
import { sleep, timestamp } from './time.js';

export interface Holder {
  who: string;
  action: string;
  /** What the action is about: the image deployed, the version rolled back to. */
  what?: string;
  since: string;
  pid: number;
  token: string;
}

export const holderLine = (h: Holder): string =>
  `who=${h.who} action=${h.action}${h.what ? ` what=${h.what.replace(/\s+/g, '_')}` : ''} since=${h.since} pid=${h.pid} token=${h.token}`;

export function parseHolder(line: string): Partial<Holder> {
  const f: Record<string, string> = {};
  for (const m of line.matchAll(/([a-z]+)=(\S+)/g)) f[m[1] ?? ''] = m[2] ?? '';
  return {
    who: f.who,
    action: f.action,
    what: f.what,
    since: f.since,
    pid: f.pid ? Number(f.pid) : undefined,
    token: f.token,
  };
}

export function describeHolder(line: string, now = new Date()): string {
  const h = parseHolder(line.trim());
  if (!h.who) return line.trim() || 'someone';
  const since = h.since ? new Date(h.since) : undefined;
  const ago =
    since && !Number.isNaN(since.getTime())
      ? `, ${Math.max(0, Math.round((now.getTime() - since.getTime()) / 1000))} s ago`
      : '';
  const doing = `${h.action ?? 'deploy'}${h.what ? ` of ${h.what}` : ''}`;
  return `${h.who} (${doing} since ${h.since ?? '?'}${ago})`;
}

export class LockHeldError extends Error {
  override name = 'LockHeldError';
  constructor(readonly holder: string) {
    super(`the lock is held by ${holder}`);
  }
}

export interface HeldLock {
  /** Releases it over `exec` (a fresh connection when the first was lost). */
  release(exec: Executor): Promise<void>;
}

export async function acquire(
  exec: Executor,
  lockDir: string,
  who: string,
  action: string,
  waitS: number,
  signal?: AbortSignal,
  onWait?: (holder: string) => void,
  what?: string,
): Promise<HeldLock> {
  const line = holderLine({
    who,
    action,
    what,
    since: timestamp(),
    pid: process.pid,
    token: randomBytes(8).toString('hex'),
  });
  const until = Date.now() + waitS * 1000;
  for (;;) {
    // Not abortable: an interrupt between the remote mkdir and its answer would leave a lock we do not know we hold.
    const res = await exec.run(takeLock(lockDir, line), { timeoutMs: TIMEOUT_MS.quick });
    if (res.code === 0) {
      const release = async (e: Executor) => {
        const r = await e.run(releaseLock(lockDir, line), { timeoutMs: TIMEOUT_MS.quick });
        if (r.code !== 0)
          throw new Error(
            `cannot remove the lock ${lockDir}: ${r.stderr.trim() || `exit ${r.code}`}`,
          );
      };
      return { release };
    }
    if (res.code !== EXIT.lockHeld)
      throw new Error(
        `cannot create the lock ${lockDir}: ${res.stderr.trim() || `exit ${res.code}`}`,
      );
    if (Date.now() >= until || signal?.aborted) throw new LockHeldError(describeHolder(res.stdout));
    if (onWait) {
      onWait(describeHolder(res.stdout));
      onWait = undefined;
    }
    await sleep(1000, signal);
  }
}

/** Breaks the lock whoever holds it; returns a description of the holder, or undefined if none. */
export async function breakIt(exec: Executor, lockDir: string): Promise<string | undefined> {
  const res = await exec.run(breakLock(lockDir), { timeoutMs: TIMEOUT_MS.quick });
  if (res.code !== 0) throw new Error(`cannot remove the lock ${lockDir}: ${res.stderr.trim()}`);
  return res.stdout.trim() ? describeHolder(res.stdout) : undefined;
}
