// The deploy command line: parse arguments, read settings, connect, run one sub-command, and
// turn the outcome into output and an exit code (0 ok, 1 failed, 2 usage, 130 interrupted).
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type DeployConfig } from './config.js';
import { environments, isEnvName, type EnvName } from './environments.js';
import { Failure, unlockCommand } from './flow/advice.js';
import { deploy, rollback } from './flow/deploy.js';
import type { FlowDeps, LocalFiles } from './flow/run.js';
import { TIMEOUT_MS } from './limits.js';
import { breakIt, LockHeldError } from './lock.js';
import { consoleOutput, failureLine, Reporter, type Output, type Result } from './report.js';
import { notifySlack } from './notify.js';
import { envPaths } from './paths.js';
import { connect, redact, SshError, type StreamingExecutor } from './ssh.js';
import { envStatus, historyRows, historyTable, plainHttpLine, statusTable } from './status.js';
import { tearDown } from './teardown.js';
import { traced } from './trace.js';
import { heartbeatLine, heartbeatState, parseHeartbeatState } from './commands/monitoring.js';
import { execOneOff, lockStatus, OpsError, showLogs, type LogsRequest } from './dayops.js';
import { isBackupName } from './commands/db.js';
import { backup, backups, backupTable, restore } from './db.js';

export const usage = `Usage: npm run deploy -- <command> [options]

Commands:
  deploy   --env ENV --image REF   ship REF (repo:tag or repo@sha256:...) to ENV with a health-gated switch
  rollback --env ENV [VERSION]     go back to the previous healthy digest, or to VERSION (digest or tag)
  status   [--env ENV]             what runs in each environment: health, version, digest, since when
  history  --env ENV               every deploy and rollback of ENV ("rolled away": skipped by rollback)
  unlock   --env ENV               break a stale deploy lock (prints who held it)
  down     --env ENV               take ENV off the VM: out of monitoring, containers and proxy
                                   removed; its directory and images stay (deploy brings it back)
  lock status --env ENV            who holds the deploy lock, since when, doing what (or "not locked")
  logs     --env ENV [--follow] [--since 10m] [--tail N] [--grep TEXT] [--proxy]
                                   the live app's (or the proxy's) logs; Ctrl-C ends --follow
  exec     --env ENV [--interactive] -- CMD [ARG...]
                                   CMD in a one-off container of the live image (app.env, its
                                   networks and hardening); its exit code; removed afterwards
  backup   --env ENV [--list]      dump ENV's database into <env dir>/backups on the VM (keeps the
                                   newest DEPLOY_BACKUP_KEEP); --list shows the backups there
  restore  --env ENV FILE [--yes]  replace ENV's data with backup FILE (a name from backup --list),
                                   under the deploy lock, after a pre-restore backup; asks first

Options:
  --env ENV    ${environments.join(' | ')}
  --yes        restore without asking (needed when stdin is not a terminal)
  -v, --verbose
               each command run on the VM, with its duration (on stderr): where a slow run's time goes
  --json       print a final JSON line: the result (deploy, rollback), {"environments":[...]}
               (status) or {"env","entries":[...]} (history; rolledAway marks versions left by a rollback)
  -h, --help   this text

Settings come from the environment or .env: VM_HOST, VM_USER, VM_SSH_PORT, VM_SSH_KEY or
VM_SSH_KEY_FILE, VM_KNOWN_HOSTS or VM_KNOWN_HOSTS_FILE, BERTH_REMOTE_DIR, DEPLOY_HEALTH_PATH,
DEPLOY_HEALTH_TIMEOUT_S, DEPLOY_HEALTH_INTERVAL_S, DEPLOY_HEALTH_SUCCESSES, DEPLOY_KEEP,
DEPLOY_LOCK_WAIT_S, PROXY_IMAGE, DEPLOY_RELEASE_COMMAND, DEPLOY_RELEASE_TIMEOUT_S,
DEPLOY_SLACK_WEBHOOK_URL, DEPLOY_BACKUP_KEEP, DEPLOY_APP_SETTINGS with DEPLOY_SECRETS_JSON (deploy
only: the app's settings from CI). See docs/deploy.md.`;

class UsageError extends Error {}

const COMMANDS = [
  'deploy',
  'rollback',
  'status',
  'history',
  'unlock',
  'lock',
  'logs',
  'exec',
  'down',
  'backup',
  'restore',
];

export interface Invocation {
  command:
    | 'deploy'
    | 'rollback'
    | 'status'
    | 'history'
    | 'unlock'
    | 'lock-status'
    | 'logs'
    | 'exec'
    | 'down'
    | 'backup'
    | 'restore'
    | 'help';
  env?: EnvName;
  image?: string;
  version?: string;
  json: boolean;
  /** Each command run on the VM, with its duration, on stderr. */
  verbose?: boolean;
  logs?: LogsRequest;
  /** exec: the command after `--`, and whether it wants a terminal. */
  run?: string[];
  interactive?: boolean;
  /** backup --list */
  list?: boolean;
  /** restore: the backup's file name, and whether it is confirmed already (--yes). */
  backupName?: string;
  yes?: boolean;
}

/** docker logs --since: a duration (10m, 1h30m, 90s), a date/time (RFC 3339) or a Unix time. */
const SINCE =
  /^(?:(?:\d+(?:\.\d+)?(?:ms|s|m|h))+|\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?|\d+(?:\.\d+)?)$/;

export function parseInvocation(argv: string[]): Invocation {
  // Everything after the first `--` is exec's command, never options of ours.
  const dashes = argv.indexOf('--');
  const head = dashes < 0 ? argv : argv.slice(0, dashes);
  const tail = dashes < 0 ? [] : argv.slice(dashes + 1);
  let parsed;
  try {
    parsed = parseArgs({
      args: head,
      allowPositionals: true,
      strict: true,
      options: {
        env: { type: 'string', short: 'e' },
        image: { type: 'string', short: 'i' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        follow: { type: 'boolean', short: 'f' },
        since: { type: 'string' },
        tail: { type: 'string', short: 'n' },
        grep: { type: 'string' },
        proxy: { type: 'boolean' },
        interactive: { type: 'boolean' },
        list: { type: 'boolean' },
        yes: { type: 'boolean', short: 'y' },
        verbose: { type: 'boolean', short: 'v' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help || command === 'help') return { command: 'help', json: false };
  if (command === undefined) throw new UsageError(`which command? (${COMMANDS.join(', ')})`);
  if (!COMMANDS.includes(command)) throw new UsageError(`unknown command "${command}"`);
  if (command === 'lock' && rest.shift() !== 'status')
    throw new UsageError('lock takes one sub-command: lock status --env ENV');
  const logsOnly = ['follow', 'since', 'tail', 'grep', 'proxy'] as const;
  for (const o of logsOnly)
    if (command !== 'logs' && values[o] !== undefined)
      throw new UsageError(`--${o} is only for logs`);
  if (command !== 'backup' && values.list !== undefined)
    throw new UsageError('--list is only for backup');
  if (command !== 'restore' && values.yes !== undefined)
    throw new UsageError('--yes is only for restore');
  if (command !== 'exec' && values.interactive !== undefined)
    throw new UsageError('--interactive is only for exec');
  if (command !== 'exec' && tail.length > 0)
    throw new UsageError(`unexpected argument "${tail[0]}" (only exec takes a command after --)`);
  const env = values.env;
  if (env !== undefined && !isEnvName(env))
    throw new UsageError(`--env must be one of ${environments.join(', ')} (got "${env}")`);
  if (command !== 'status' && env === undefined)
    throw new UsageError(`${command} needs --env (${environments.join(' | ')})`);
  const inv: Invocation = {
    command: command === 'lock' ? 'lock-status' : (command as Invocation['command']),
    env,
    json: values.json ?? false,
    ...(values.verbose ? { verbose: true } : {}),
  };
  if (command === 'logs') {
    const tailN = values.tail;
    if (tailN !== undefined && !/^\d+$/.test(tailN))
      throw new UsageError(`--tail must be a number of lines (got "${tailN}")`);
    if (values.since !== undefined && !SINCE.test(values.since))
      throw new UsageError(
        `--since must be a duration (10m, 1h30m), a date/time (2026-01-01T10:00:00Z) or a Unix time (got "${values.since}")`,
      );
    if (values.grep === '') throw new UsageError('--grep needs some text');
    inv.logs = {
      follow: values.follow ?? false,
      since: values.since,
      tail: tailN === undefined ? undefined : Number(tailN),
      grep: values.grep,
      proxy: values.proxy ?? false,
    };
  }
  if (command === 'exec') {
    if (rest.length > 0)
      throw new UsageError(`put the command after --: exec --env ENV -- ${rest.join(' ')}`);
    if (tail.length === 0)
      throw new UsageError('exec needs a command after --: exec --env ENV -- CMD');
    inv.run = tail;
    inv.interactive = values.interactive ?? false;
  }
  if (command === 'deploy') {
    if (!values.image)
      throw new UsageError('deploy needs --image REF (repo:tag or repo@sha256:...)');
    if (!/^[a-z0-9][a-z0-9._:/-]*(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$/i.test(values.image))
      throw new UsageError(`--image "${values.image}" is not an image reference`);
    inv.image = values.image;
  } else if (values.image) throw new UsageError(`--image is only for deploy`);
  if (command === 'backup') inv.list = values.list ?? false;
  if (command === 'restore') {
    const file = rest.shift();
    if (file === undefined)
      throw new UsageError('restore needs the backup FILE (its name, as backup --list shows it)');
    if (!isBackupName(file))
      throw new UsageError(
        `"${file}" is not a backup's file name (a name from backup --list, e.g. ${inv.env}-20260101T031500.000Z.dump, no path)`,
      );
    inv.backupName = file;
    inv.yes = values.yes ?? false;
  }
  if (command === 'rollback') {
    if (rest.length > 1) throw new UsageError('rollback takes at most one VERSION');
    inv.version = rest[0];
  } else if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  return inv;
}

function localFiles(repoRoot: string): LocalFiles {
  return {
    compose: readFileSync(path.join(repoRoot, 'docker-compose.yml'), 'utf8'),
    nginxConf: readFileSync(path.join(repoRoot, 'proxy', 'nginx.conf'), 'utf8'),
  };
}

export interface MainOptions {
  env: Record<string, string | undefined>;
  repoRoot: string;
  io?: Output;
  /** exec's stdin (default process.stdin). */
  stdin?: NodeJS.ReadStream;
  /** Signals to trap (the entry passes process); tests leave it out. */
  signals?: NodeJS.EventEmitter;
  /** Where this code was loaded from (compiled or sources), said under --verbose. */
  runsFrom?: string;
}

export async function main(argv: string[], o: MainOptions): Promise<number> {
  const io = o.io ?? consoleOutput;
  let inv: Invocation;
  try {
    inv = parseInvocation(argv);
  } catch (err) {
    io.err(`error: ${(err as Error).message}\n\n${usage}`);
    return 2;
  }
  if (inv.command === 'help') {
    io.out(usage);
    return 0;
  }
  if (inv.verbose && o.runsFrom) io.err(`    · tool: ${o.runsFrom}`);

  if (inv.command === 'restore' && !inv.yes) {
    const confirmed = await confirmRestore(inv.env!, inv.backupName!, o.stdin ?? process.stdin, io);
    if (confirmed === 'no terminal') {
      io.err(
        `restore refused: it replaces ${inv.env}'s data and nobody can confirm (stdin is not a terminal); run it from a terminal, or pass --yes`,
      );
      return 2;
    }
    if (!confirmed) {
      io.err(`restore cancelled: nothing was changed`);
      return 1;
    }
  }

  let cfg: DeployConfig;
  try {
    cfg = loadConfig(o.env, `${os.userInfo().username}@${os.hostname()}`, {
      appSettings: inv.command === 'deploy',
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      io.err(
        `${inv.command} failed: bad configuration: ${err.message}. Set it in .env or the environment (see .env.example)`,
      );
      return 2;
    }
    throw err;
  }

  const controller = new AbortController();
  let interrupted = false;
  const onSignal = (sig: string) => {
    if (interrupted) {
      io.err(`${sig} again: quitting without cleaning up (the lock may stay; use unlock)`);
      process.exit(130);
    }
    interrupted = true;
    if (inv.command === 'deploy' || inv.command === 'rollback')
      io.err(
        `${sig}: stopping, removing what this run started and releasing the lock (${sig} again to quit at once)`,
      );
    controller.abort();
  };
  const onInt = () => onSignal('SIGINT');
  const onTerm = () => onSignal('SIGTERM');
  o.signals?.on('SIGINT', onInt);
  o.signals?.on('SIGTERM', onTerm);

  const reporter = new Reporter(io);
  let exec: StreamingExecutor | undefined;
  const extra: StreamingExecutor[] = [];
  const action = inv.command;
  const result: Result = {
    ok: false,
    action,
    env: inv.env ?? '',
    image: inv.image ?? inv.version ?? '',
    rolledBack: false,
    steps: reporter.steps,
  };
  const started = performance.now();
  const finish = async (code: number, logs?: string, logsOf?: string): Promise<number> => {
    if (inv.command === 'deploy' || inv.command === 'rollback') {
      reporter.finish(result, {
        json: inv.json,
        logs,
        logsOf,
        summaryFile: o.env.GITHUB_STEP_SUMMARY,
      });
      const warning = await notifySlack(cfg.slackWebhookUrl, {
        result,
        who: cfg.who,
        durationMs: performance.now() - started,
      });
      if (warning) reporter.warn(`${warning}; the ${inv.command} itself is not affected`);
    } else if (code !== 0) io.err(failureLine(result));
    return interrupted && code !== 0 ? 130 : code;
  };
  try {
    // logs, exec and lock status print only what was asked for: no step lines.
    const connected = ['logs', 'exec', 'lock-status'].includes(inv.command)
      ? await connect(cfg)
      : await reporter.step(
          'connect',
          () => connect(cfg),
          (e) => e.target,
        );
    exec = inv.verbose ? traced(connected, (line) => io.err(line)) : connected;
    switch (inv.command) {
      case 'logs':
        return await showLogs(exec, cfg, inv.env!, inv.logs ?? {}, io, controller.signal);
      case 'exec': {
        const stdin = o.stdin ?? process.stdin;
        const tty = (inv.interactive ?? false) && stdin.isTTY === true;
        // A terminal goes raw, so Ctrl-C and the like reach the remote command.
        if (tty) stdin.setRawMode?.(true);
        try {
          return await execOneOff(
            exec,
            cfg,
            inv.env!,
            {
              command: inv.run ?? [],
              interactive: inv.interactive ?? false,
              // Without --interactive a terminal is not read (the command gets an empty stdin).
              stdin: !inv.interactive && stdin.isTTY ? undefined : stdin,
              tty,
            },
            io,
            controller.signal,
          );
        } finally {
          if (tty) stdin.setRawMode?.(false);
          stdin.pause();
        }
      }
      case 'lock-status':
        io.out(await lockStatus(exec, cfg, inv.env!));
        return 0;
      case 'status': {
        const list = [];
        for (const env of inv.env ? [inv.env] : environments)
          list.push(await envStatus(exec, cfg, env));
        const monitoring = parseHeartbeatState(
          (await exec.run(heartbeatState(), { timeoutMs: TIMEOUT_MS.quick })).stdout,
        );
        // --json: promote.yml (and npm run rehearse) read the full digest an environment runs.
        io.out(
          inv.json
            ? JSON.stringify({ environments: list, monitoring: monitoring ?? 'unknown' })
            : [statusTable(list), '', plainHttpLine(list), heartbeatLine(monitoring)]
                .filter((l) => l !== undefined)
                .join('\n'),
        );
        return 0;
      }
      case 'history': {
        const rows = await historyRows(exec, cfg, inv.env!);
        io.out(
          inv.json ? JSON.stringify({ env: inv.env, entries: rows }) : historyTable(inv.env!, rows),
        );
        return 0;
      }
      case 'down':
        await tearDown(exec, cfg, inv.env!, reporter);
        io.out(
          `${inv.env} is down: no longer watched, no containers; its directory and images stay on the VM`,
        );
        return 0;
      case 'backup':
        io.out(
          inv.list
            ? backupTable(await backups(exec, cfg, inv.env!))
            : await backup(exec, cfg, inv.env!),
        );
        return 0;
      case 'restore':
        io.out(await restore(exec, cfg, inv.env!, inv.backupName!, controller.signal));
        return 0;
      case 'unlock': {
        const held = await breakIt(exec, envPaths(cfg.remoteDir, inv.env!).lock);
        io.out(
          held ? `unlocked ${inv.env}: the lock was held by ${held}` : `${inv.env} was not locked`,
        );
        return 0;
      }
      default: {
        const deps: FlowDeps = {
          cfg,
          env: inv.env!,
          exec,
          reconnect: async () => {
            const e = await connect(cfg, { timeoutMs: TIMEOUT_MS.reconnect });
            extra.push(e);
            return inv.verbose ? traced(e, (line) => io.err(line)) : e;
          },
          report: reporter,
          signal: controller.signal,
          files: localFiles(o.repoRoot),
        };
        const r =
          inv.command === 'deploy'
            ? await deploy(deps, inv.image!)
            : await rollback(deps, inv.version);
        Object.assign(result, {
          ok: true,
          image: r.image,
          digest: r.digest,
          rolledBack: r.rolledBack,
        });
        return finish(0);
      }
    }
  } catch (err) {
    if (err instanceof OpsError) {
      io.err(`${inv.command} failed: ${err.message}`);
      return 1;
    }
    if (err instanceof Failure) {
      Object.assign(result, {
        reason: err.reason,
        advice: err.advice,
        digest: err.extra.digest,
        rolledBack: err.extra.rolledBack ?? false,
      });
      return finish(1, err.extra.logs, err.extra.logsOf);
    }
    if (err instanceof LockHeldError) {
      Object.assign(result, {
        reason: `${inv.env} is locked by ${err.holder}`,
        advice: `Wait for it to finish (DEPLOY_LOCK_WAIT_S waits), or if that run died: ${unlockCommand(inv.env!)}`,
      });
      return finish(1);
    }
    if (err instanceof SshError) {
      const advice =
        err.kind === 'host-key'
          ? 'Nothing was sent to the VM'
          : err.kind === 'auth'
            ? 'Nothing on the VM changed'
            : 'Nothing on the VM changed unless the steps above say so';
      Object.assign(result, { reason: err.message, advice });
      return finish(1);
    }
    Object.assign(result, {
      reason: redact((err as Error).message ?? String(err), [
        cfg.privateKey,
        ...Object.values(cfg.appSettings ?? {}),
      ]),
      advice:
        'See the steps above; the version that served before still serves unless a step says otherwise',
    });
    return finish(1);
  } finally {
    o.signals?.off('SIGINT', onInt);
    o.signals?.off('SIGTERM', onTerm);
    exec?.close();
    for (const e of extra) e.close();
  }
}

/** Asks on the terminal; the answer must be the environment's name, so a reflexive `y` is not enough. */
async function confirmRestore(
  env: EnvName,
  name: string,
  stdin: NodeJS.ReadStream,
  io: Output,
): Promise<boolean | 'no terminal'> {
  if (!stdin.isTTY) return 'no terminal';
  const rl = createInterface({ input: stdin, output: process.stderr });
  try {
    io.err(
      `restore replaces ALL of ${env}'s data with ${name} (a pre-restore backup is taken first).`,
    );
    return (await rl.question(`Type ${env} to go on: `)).trim() === env;
  } finally {
    rl.close();
  }
}
