// One run of deploy or rollback: what it was given, the connection it uses, and where it stands.
// Where it stands is ONE value (RunState): what a failure must undo, and what the operator is
// told, both follow from it.
import type { RemoteCommand } from '../commands/command.js';
import type { Tuning } from '../commands/files.js';
import type { DeployConfig } from '../config.js';
import type { EnvName } from '../environments.js';
import type { ContainerState } from '../health.js';
import { TIMEOUT_MS } from '../limits.js';
import type { HeldLock } from '../lock.js';
import { envPaths, type EnvPaths } from '../paths.js';
import type { Reporter } from '../report.js';
import { SshError, type Executor, type RunResult } from '../ssh.js';

export interface LocalFiles {
  compose: string;
  nginxConf: string;
}

export interface FlowDeps {
  cfg: DeployConfig;
  env: EnvName;
  exec: Executor;
  /** A fresh connection, for cleaning up after the first one was lost. */
  reconnect: () => Promise<Executor>;
  report: Reporter;
  signal: AbortSignal;
  files: LocalFiles;
}

export interface FlowResult {
  image: string;
  digest: string;
  rolledBack: boolean;
}

/** A version to run. */
export interface Target {
  /** What `docker create` runs: an image id. */
  id: string;
  /** What the user asked for, for labels and history. */
  source: string;
  digest: string;
}

/** The container upstream.conf named when the run began. */
export interface Live {
  name: string;
  state?: ContainerState;
  healthy: boolean;
}

/**
 * before: nothing of this run is on the VM that a failure must undo.
 * started: this run's container `name` exists, not behind the proxy: a failure removes it, and
 *   the release command's one-off container `oneOff` when it may be running. `address`: its
 *   address on the project network, once the health check's inspect has read it.
 * switching: the switch script may be running: what the proxy routes to decides, and the
 *   upstream file it replaced is put back if the switch did not go through.
 * switched: `name` (running `source`) serves: a failure after this is never called a failed deploy.
 */
export type RunState =
  | { kind: 'before' }
  | { kind: 'started'; name: string; oneOff?: string; address?: string }
  | { kind: 'switching'; name: string; upstreamBefore: string }
  | { kind: 'switched'; name: string; source: string; digest?: string };

export class Run {
  readonly cfg: DeployConfig;
  readonly env: EnvName;
  readonly report: Reporter;
  readonly paths: EnvPaths;
  /** Replaced by a fresh connection when the first one is lost before clean-up. */
  exec: Executor;
  state: RunState = { kind: 'before' };
  /** What served when this run began (set once, by prepare). */
  live?: Live;
  /**
   * Settles once `live.healthy` is known: prepare starts the live container's health probe and
   * the run goes on beside it; only a refused new version, or a failure, needs the answer.
   */
  liveChecked: Promise<void> = Promise.resolve();
  /** The .env settings the new container gets (set once, by prepare). */
  tuning: Tuning = {};
  lock?: HeldLock;
  /**
   * Whether the HTTPS edge runs, its settings file, where it sent this environment's domain
   * when the run began, and whether its certificate issuer is another than the settings ask
   * for: read once, by prepare (flow/edge.ts readEdge).
   */
  edge?: {
    up: boolean;
    vars: Record<string, string>;
    route?: { upstream: string; domain?: string };
    issuerStale?: boolean;
  };
  /** Whether the environment has a database (DB_PASSWORD in .env; set by the database step). */
  hasDatabase = false;
  /**
   * upstream.conf as prepare last read it, for the run's first switch to put back if it must: the
   * lock keeps it as it was, and one round trip fewer is one less the switch waits for.
   */
  upstreamRead?: string;
  /** The environment's running proxy container as prepare found it (its id). */
  proxyId?: string;
  /** This run's token in the edge's lock, once it has asked for the lock (flow/edge.ts). */
  edgeLock?: string;
  /** Containers this run attaches to the shared network, by name (flow/container.ts joinShared). */
  joined = new Map<string, Promise<void>>();

  constructor(readonly deps: FlowDeps) {
    this.cfg = deps.cfg;
    this.env = deps.env;
    this.report = deps.report;
    this.exec = deps.exec;
    this.paths = envPaths(deps.cfg.remoteDir, deps.env);
  }

  /** Image names for docker compose: non-secret, they override the VM's .env for this run. */
  get composeVars(): Record<string, string> {
    return {
      BERTH_NETWORK: this.cfg.network,
      ...(this.cfg.proxyImage ? { PROXY_IMAGE: this.cfg.proxyImage } : {}),
    };
  }

  /**
   * Only long waits (pull, health check) are cut short by Ctrl-C; short commands finish, so the
   * VM is never left between two halves of one step. Steps check for an interrupt as they begin.
   */
  /** `abortable`: Ctrl-C ends the command (true), or this signal does. */
  run(
    cmd: RemoteCommand,
    timeoutMs: number = TIMEOUT_MS.command,
    abortable: boolean | AbortSignal = false,
  ): Promise<RunResult> {
    const signal = abortable === true ? this.deps.signal : abortable || undefined;
    return this.exec.run(cmd, { timeoutMs, signal });
  }

  /** Runs a command that must succeed; otherwise throws with `what` and the command's last output line. */
  async must(cmd: RemoteCommand, what: string, timeoutMs?: number): Promise<RunResult> {
    const res = await this.run(cmd, timeoutMs);
    if (res.code !== 0)
      throw new Error(
        `${what}: ${lastLine(res.stderr) || lastLine(res.stdout) || `exit ${res.code}`}`,
      );
    return res;
  }

  checkInterrupt(): void {
    if (this.deps.signal.aborted) throw new SshError('aborted', 'interrupted');
  }
}

export const lastLine = (text: string): string =>
  text.trim().split('\n').filter(Boolean).at(-1) ?? '';

/**
 * Independent remote commands at once, each on its own channel of the one SSH connection: every
 * round trip costs more while the VM serves load, and these need not wait for each other. Waits
 * for all of them, so none is still running on the VM when this throws; then throws the first
 * failure.
 */
export async function together<T extends readonly Promise<unknown>[]>(
  promises: readonly [...T],
): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as {
    -readonly [K in keyof T]: Awaited<T[K]>;
  };
}
