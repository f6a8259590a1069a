// The one executor: connects with node-ssh after checking the VM's host key against
// VM_KNOWN_HOSTS (never trust on first use), runs RemoteCommands, and turns SSH trouble into
// errors a person can act on. Everything it reports passes through `redact`.
import { NodeSSH } from 'node-ssh';
import { toShell, type RemoteCommand } from './commands/command.js';
import type { DeployConfig } from './config.js';
import { TIMEOUT_MS } from './limits.js';
import {
  describeVerdict,
  hostKeyAlgorithms,
  parseKnownHosts,
  verifyHostKey,
  type HostKeyVerdict,
} from './known-hosts.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type SshErrorKind = 'host-key' | 'auth' | 'connect' | 'lost' | 'timeout' | 'aborted';

export class SshError extends Error {
  override name = 'SshError';
  constructor(
    readonly kind: SshErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** The connection went away or stopped answering: the remote side may have done more than we heard. */
export const connectionLost = (err: unknown): err is SshError =>
  err instanceof SshError && (err.kind === 'lost' || err.kind === 'timeout');

/** Replaces every secret (and each long line of it, e.g. a key's base64 body) with [redacted]. */
export function redact(text: string, secrets: string[]): string {
  let out = text;
  const pieces = secrets
    .flatMap((s) => [s.trim(), ...s.split('\n').map((l) => l.trim())])
    .filter((p) => p.length >= 16 && !/^-----/.test(p));
  for (const piece of pieces.sort((a, b) => b.length - a.length))
    out = out.split(piece).join('[redacted]');
  return out;
}

export interface Executor {
  run(cmd: RemoteCommand, opts?: { timeoutMs?: number; signal?: AbortSignal }): Promise<RunResult>;
  readonly target: string;
  close(): void;
}

export interface ConnectOptions {
  timeoutMs?: number;
}

function classify(
  err: Error,
  target: string,
  verdict: HostKeyVerdict | undefined,
  cfg: DeployConfig,
): SshError {
  const msg = err.message;
  if (verdict && verdict.kind !== 'known')
    return new SshError('host-key', describeVerdict(verdict, cfg.host, cfg.port));
  if (/no matching host key format/i.test(msg))
    return new SshError(
      'host-key',
      `${target} offers no host key of the type(s) VM_KNOWN_HOSTS lists for it, so it cannot be the known VM. Refusing to connect: the VM's keys changed or VM_KNOWN_HOSTS belongs to another host; check with ssh-keyscan -p ${cfg.port} on the VM`,
    );
  if (/authentication methods failed/i.test(msg))
    return new SshError(
      'auth',
      `${target} refused the SSH key (authentication failed): check that VM_SSH_KEY belongs to ${cfg.user} on the VM (its public half in ~${cfg.user}/.ssh/authorized_keys)`,
    );
  if (/privateKey|private key|passphrase/i.test(msg))
    return new SshError(
      'auth',
      `cannot use VM_SSH_KEY: ${msg} (an unencrypted OpenSSH or PEM private key is expected)`,
    );
  if (/ECONNREFUSED/.test(msg))
    return new SshError(
      'connect',
      `cannot reach ${target}: connection refused (is sshd listening on port ${cfg.port}?)`,
    );
  if (/ENOTFOUND|EAI_AGAIN/.test(msg))
    return new SshError('connect', `cannot resolve VM_HOST ${cfg.host}`);
  if (/Timed out/i.test(msg))
    return new SshError('timeout', `cannot reach ${target}: timed out during the SSH handshake`);
  return new SshError('connect', `cannot connect to ${target}: ${msg}`);
}

export async function connect(cfg: DeployConfig, opts: ConnectOptions = {}): Promise<Executor> {
  const target = `${cfg.user}@${cfg.host}:${cfg.port}`;
  const entries = parseKnownHosts(cfg.knownHosts);
  if (entries.length === 0)
    throw new SshError(
      'host-key',
      "VM_KNOWN_HOSTS holds no host key lines: add the VM's key (ssh-keyscan output) so the deploy can tell the VM from an impostor",
    );
  const algorithms = hostKeyAlgorithms(entries, cfg.host, cfg.port);
  let verdict: HostKeyVerdict | undefined;
  const ssh = new NodeSSH();
  const secrets = [cfg.privateKey];
  try {
    await ssh.connect({
      host: cfg.host,
      port: cfg.port,
      username: cfg.user,
      privateKey: cfg.privateKey,
      readyTimeout: opts.timeoutMs ?? TIMEOUT_MS.connect,
      keepaliveInterval: 5_000,
      keepaliveCountMax: 3,
      // Only the key is offered: no agent, no password prompts in CI.
      tryKeyboard: false,
      // With no entry for this host, offer the defaults: the key is refused as unknown anyway.
      ...(algorithms.length > 0 ? { algorithms: { serverHostKey: algorithms } } : {}),
      hostVerifier: (key: Buffer) => {
        verdict = verifyHostKey(entries, cfg.host, cfg.port, key);
        return verdict.kind === 'known';
      },
    });
  } catch (err) {
    ssh.dispose();
    const e = classify(err instanceof Error ? err : new Error(String(err)), target, verdict, cfg);
    e.message = redact(e.message, secrets);
    throw e;
  }

  let lostReason: string | undefined;
  const waiters = new Set<(e: SshError) => void>();
  const lose = (why: string) => {
    if (lostReason) return;
    lostReason = why;
    const e = new SshError('lost', `the SSH connection to ${target} was lost (${why})`);
    for (const w of waiters) w(e);
  };
  const conn = ssh.connection;
  conn?.on('close', () => lose('closed by the other side or the network'));
  conn?.on('end', () => lose('ended'));
  conn?.on('error', (err: Error) => lose(err.message));

  return {
    target,
    close: () => {
      lostReason ??= 'closed by the deploy';
      ssh.dispose();
    },
    async run(cmd, runOpts = {}) {
      if (lostReason)
        throw new SshError('lost', `the SSH connection to ${target} was lost (${lostReason})`);
      if (runOpts.signal?.aborted) throw new SshError('aborted', 'interrupted');
      let cleanup = () => {};
      const stop = new Promise<never>((_, reject) => {
        const onLost = (e: SshError) => reject(e);
        waiters.add(onLost);
        const onAbort = () => reject(new SshError('aborted', 'interrupted'));
        runOpts.signal?.addEventListener('abort', onAbort, { once: true });
        const { timeoutMs } = runOpts;
        const timer = timeoutMs
          ? setTimeout(
              () =>
                reject(
                  new SshError(
                    'timeout',
                    `${cmd.name} took longer than ${Math.round(timeoutMs / 1000)} s on the VM`,
                  ),
                ),
              timeoutMs,
            )
          : undefined;
        cleanup = () => {
          waiters.delete(onLost);
          runOpts.signal?.removeEventListener('abort', onAbort);
          if (timer) clearTimeout(timer);
        };
      });
      try {
        const res = await Promise.race([ssh.execCommand(toShell(cmd), { stdin: cmd.stdin }), stop]);
        // A channel that ends without an exit status means the connection went away under it.
        if (res.code === null) {
          if (lostReason)
            throw new SshError('lost', `the SSH connection to ${target} was lost (${lostReason})`);
          throw new SshError(
            'lost',
            `the SSH connection to ${target} ended a command without an exit status (signal ${res.signal ?? 'none'})`,
          );
        }
        return {
          code: res.code,
          stdout: redact(res.stdout, secrets),
          stderr: redact(res.stderr, secrets),
        };
      } finally {
        cleanup();
      }
    },
  };
}
