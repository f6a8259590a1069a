// What the HTTP benches share: the CPUs this process may use (to pin the server and the load
// apart), a process's CPU time, medians, and the compiled service started with every one of its
// variables set (a local .env cannot change what is measured) and its access log to /dev/null.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

export const root = path.resolve(import.meta.dirname, '..');

export function allowedCpus(): number[] {
  const list =
    /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '';
  return list.split(',').flatMap((part) => {
    const [from, to = from] = part.split('-').map(Number);
    return from === undefined || to === undefined
      ? []
      : Array.from({ length: to - from + 1 }, (_, i) => from + i);
  });
}

/** CPU seconds a process has used in user space and in the kernel, from /proc (all its threads). */
export function cpuTimes(pid: number): { user: number; system: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
}

/** CPU seconds (user + system) a process has used, from /proc. */
export function cpuSeconds(pid: number): number {
  const t = cpuTimes(pid);
  return t.user + t.system;
}

export function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? NaN)
    : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

export interface StartOptions {
  /** Pin the process to this CPU (taskset); undefined: not pinned. */
  cpu?: number;
  /** Variables beyond the service's own (e.g. DATABASE_URL). */
  env?: Record<string, string>;
  /** Resolves true once the process serves what is to be measured. */
  ready: (port: number) => Promise<boolean>;
  /** For the error: what `ready` waits for. */
  waitsFor: string;
}

/** Starts `entry` (relative to the repo) on 127.0.0.1:`port`; throws if it exits or is not ready in 10 s. */
export async function startCompiled(
  entry: string,
  port: number,
  o: StartOptions,
): Promise<ChildProcess> {
  const [file, args] =
    o.cpu === undefined
      ? [process.execPath, [entry]]
      : ['taskset', ['-c', String(o.cpu), process.execPath, entry]];
  const child = spawn(file, args, {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      BASE_PATH: '',
      APP_VERSION: 'bench',
      GIT_COMMIT: 'bench',
      SHUTDOWN_TIMEOUT_MS: '1000',
      SHUTDOWN_DELAY_MS: '0',
      NODE_ENV: 'production',
      ...o.env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`${entry} exited with ${child.exitCode}`);
    if (await o.ready(port).catch(() => false)) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${entry} did not ${o.waitsFor} within 10 s`);
}
