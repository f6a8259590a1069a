// The one executor: connects with node-ssh after checking the VM's host key against
// VM_KNOWN_HOSTS (never trust on first use), runs RemoteCommands, and turns SSH trouble into
// errors a person can act on. Everything it reports passes through `redact`.
import type { Readable } from 'node:stream';
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

export interface StreamOptions {
  /** Each chunk of the command's stdout / stderr as it arrives (already redacted). */
  onStdout(chunk: string): void;
  onStderr(chunk: string): void;
  /**
   * What the command reads: text, a stream (piped, ended when it ends), or `{ hold: true }`:
   * nothing, but stdin stays open until the command ends or is aborted (see `untilHangup` in
   * commands/command.ts). Left out: the command's own `stdin`, else closed at once.
   */
  stdin?: string | Readable | { hold: true };
  /** A terminal on the VM (`ssh -t`): for interactive commands. */
  pty?: boolean;
  /** Ends the command: the channel gets SIGINT, then is closed (which closes its stdin). */
  signal?: AbortSignal;
}

/** How a streamed command ended: its exit code, or `aborted` when the signal ended it first. */
export type StreamResult = { code: number; aborted: false } | { code: null; aborted: true };

/** The executor `connect` returns: `run` plus `stream` for long-running, interactive commands (logs, exec). */
export interface StreamingExecutor extends Executor {
  stream(cmd: RemoteCommand, opts: StreamOptions): Promise<StreamResult>;
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

export async function connect(
  cfg: DeployConfig,
  opts: ConnectOptions = {},
): Promise<StreamingExecutor> {
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
  // The app's settings too: a failing app may print them in the log lines shown.
  const secrets = [cfg.privateKey, ...Object.values(cfg.appSettings ?? {})];
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
    stream(cmd, so) {
      const lost = () =>
        new SshError('lost', `the SSH connection to ${target} was lost (${lostReason})`);
      if (lostReason) return Promise.reject(lost());
      if (so.signal?.aborted) return Promise.resolve({ code: null, aborted: true });
      const client = ssh.connection;
      if (!client) return Promise.reject(lost());
      return new Promise<StreamResult>((resolve, reject) => {
        let settled = false;
        let aborted = false;
        const detach: (() => void)[] = [];
        const settle = (fn: () => void) => {
          if (settled) return;
          settled = true;
          for (const d of detach) d();
          fn();
        };
        const onLost = () => settle(() => reject(lost()));
        waiters.add(onLost);
        detach.push(() => waiters.delete(onLost));
        client.exec(toShell(cmd), so.pty ? { pty: true } : {}, (err, channel) => {
          if (err) {
            settle(() =>
              reject(new SshError('lost', `cannot run a command on ${target}: ${err.message}`)),
            );
            return;
          }
          const onAbort = () => {
            aborted = true;
            // SIGINT first (OpenSSH passes it on when it can), then closing the channel: the
            // remote side sees its stdin end and, with a pty, a hangup.
            try {
              channel.signal('INT');
            } catch {
              // the channel is already going
            }
            channel.close();
          };
          so.signal?.addEventListener('abort', onAbort, { once: true });
          detach.push(() => so.signal?.removeEventListener('abort', onAbort));
          channel.on('data', (d: Buffer) => so.onStdout(redact(d.toString(), secrets)));
          channel.stderr.on('data', (d: Buffer) => so.onStderr(redact(d.toString(), secrets)));
          let code: number | null = null;
          channel.on('exit', (c: number | null) => {
            code = typeof c === 'number' ? c : null;
          });
          channel.on('close', () =>
            settle(() => {
              if (aborted) resolve({ code: null, aborted: true });
              else if (code === null)
                reject(
                  lostReason
                    ? lost()
                    : new SshError(
                        'lost',
                        `the SSH connection to ${target} ended a command without an exit status`,
                      ),
                );
              else resolve({ code, aborted: false });
            }),
          );
          const input = so.stdin ?? cmd.stdin;
          if (input === undefined) channel.end();
          else if (typeof input === 'string') channel.end(input);
          else if ('hold' in input) {
            // stdin stays open: the remote side learns that we left when the channel closes.
          } else {
            input.pipe(channel);
            detach.push(() => input.unpipe(channel));
          }
        });
      });
    },
  };
}
