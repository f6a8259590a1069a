// Day-two operations on a running environment: `logs`, `exec` (a one-off container of the live
// image) and `lock status`. Each finds the live app the way status.ts does: the container
// proxy/upstream.conf names.
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { inspectContainer } from './commands/app.js';
import { readFile } from './commands/files.js';
import { showLock } from './commands/lock.js';
import {
  containerLogStream,
  findProxy,
  removeOneOff,
  runOneOff,
  type LogOptions,
} from './commands/oneoff.js';
import { parseUpstream } from './commands/proxy.js';
import type { DeployConfig } from './config.js';
import type { EnvName } from './environments.js';
import { parseContainerState } from './health.js';
import { TIMEOUT_MS } from './limits.js';
import { describeHolder } from './lock.js';
import { envPaths } from './paths.js';
import type { Output } from './report.js';
import type { Executor, StreamingExecutor } from './ssh.js';
import { timestamp } from './time.js';

/** A problem the operator can act on (no live app, no proxy): exit 1 with this line. */
export class OpsError extends Error {
  override name = 'OpsError';
}

const quick = { timeoutMs: TIMEOUT_MS.quick };

/** The live app container (what upstream.conf names) and its image id. */
export async function liveApp(
  exec: Executor,
  cfg: DeployConfig,
  env: EnvName,
): Promise<{ container: string; imageId: string }> {
  const name = parseUpstream(
    (await exec.run(readFile(envPaths(cfg.remoteDir, env).upstream), quick)).stdout,
  );
  if (!name) throw new OpsError(`nothing is deployed to ${env} (no live app in upstream.conf)`);
  const inspected = await exec.run(inspectContainer(name), quick);
  const state = inspected.code === 0 ? parseContainerState(inspected.stdout) : undefined;
  if (!state) throw new OpsError(`${env}'s live container ${name} does not exist on the VM`);
  return { container: name, imageId: state.imageId };
}

/**
 * Cuts chunks into lines and passes on those containing `grep` (a fixed string, matched here:
 * the text never reaches a shell). `flush` emits an unfinished last line.
 */
export function lineFilter(
  emit: (line: string) => void,
  grep?: string,
): { push(chunk: string): void; flush(): void } {
  let rest = '';
  const pass = (line: string) => {
    if (grep === undefined || line.includes(grep)) emit(line);
  };
  return {
    push(chunk) {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop() ?? '';
      for (const l of parts) pass(l.endsWith('\r') ? l.slice(0, -1) : l);
    },
    flush() {
      if (rest) pass(rest);
      rest = '';
    },
  };
}

export interface LogsRequest extends LogOptions {
  proxy?: boolean;
  grep?: string;
}

/** Streams the logs to io until they end (no follow) or `signal` aborts. Returns the exit code. */
export async function showLogs(
  exec: StreamingExecutor,
  cfg: DeployConfig,
  env: EnvName,
  req: LogsRequest,
  io: Output,
  signal?: AbortSignal,
): Promise<number> {
  let container: string;
  if (req.proxy) {
    const id = (await exec.run(findProxy(env), quick)).stdout.trim().split('\n')[0];
    if (!id) throw new OpsError(`${env} has no proxy container on the VM`);
    container = id;
  } else container = (await liveApp(exec, cfg, env)).container;
  const out = lineFilter((l) => io.out(l), req.grep);
  const err = lineFilter((l) => io.err(l), req.grep);
  const r = await exec.stream(containerLogStream(container, req), {
    onStdout: (c) => out.push(c),
    onStderr: (c) => err.push(c),
    stdin: { hold: true },
    signal,
  });
  out.flush();
  err.flush();
  return r.aborted ? 130 : r.code;
}

export const oneOffName = (env: EnvName): string =>
  `berth-${env}-oneoff-${timestamp().replace(/\D/g, '').slice(0, 14)}-${randomBytes(2).toString('hex')}`;

export interface ExecRequest {
  command: string[];
  interactive: boolean;
  /** Local stdin: piped to the command. */
  stdin?: Readable;
  /** A terminal on both ends (interactive and the local stdin is a TTY). */
  tty: boolean;
}

/** Runs the one-off container; returns its exit code (130 when interrupted, after removing it). */
export async function execOneOff(
  exec: StreamingExecutor,
  cfg: DeployConfig,
  env: EnvName,
  req: ExecRequest,
  io: Output,
  signal?: AbortSignal,
): Promise<number> {
  const live = await liveApp(exec, cfg, env);
  const name = oneOffName(env);
  const write = (to: 'out' | 'err', chunk: string): void => {
    if (io.write) io.write(to, chunk);
    else if (to === 'out') io.out(chunk);
    else io.err(chunk);
  };
  // An interrupted client does not end `docker run` on the VM (sshd keeps the session until its
  // command exits, and PID 1 in a container ignores SIGINT): removing the container does.
  const remove = () => exec.run(removeOneOff(name), quick).catch(() => undefined);
  let removing: Promise<unknown> | undefined;
  const onAbort = (): void => {
    removing = remove();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  let r;
  try {
    r = await exec.stream(
      runOneOff({
        env,
        name,
        image: live.imageId,
        envFile: envPaths(cfg.remoteDir, env).appEnv,
        sharedNetwork: cfg.network,
        tty: req.tty,
        command: req.command,
      }),
      {
        onStdout: (c) => write('out', c),
        onStderr: (c) => write('err', c),
        stdin: req.stdin,
        pty: req.tty,
        signal,
      },
    );
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  if (r.aborted) {
    await removing;
    // Once more: an interrupt before `docker run` had created it finds nothing the first time.
    await remove();
    return 130;
  }
  return r.code;
}

/** "ENV is locked by WHO (ACTION since TIME, N s ago), pid P" or "ENV is not locked". */
export async function lockStatus(exec: Executor, cfg: DeployConfig, env: EnvName): Promise<string> {
  const res = await exec.run(showLock(envPaths(cfg.remoteDir, env).lock), quick);
  if (res.code !== 0) throw new Error(`cannot read ${env}'s lock: ${res.stderr.trim()}`);
  const line = res.stdout.trim();
  if (!line) return `${env} is not locked`;
  const pid = /\bpid=(\d+)/.exec(line)?.[1];
  return `${env} is locked by ${describeHolder(line)}${pid ? `, pid ${pid} on the deploying machine` : ''}`;
}
