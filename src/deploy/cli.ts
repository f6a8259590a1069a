// The deploy command line: parse arguments, read settings, connect, run one sub-command, and
// turn the outcome into output and an exit code (0 ok, 1 failed, 2 usage, 130 interrupted).
import { readFileSync } from 'node:fs';
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
import { connect, redact, SshError, type Executor } from './ssh.js';
import { envStatus, historyText, statusTable } from './status.js';

export const usage = `Usage: npm run deploy -- <command> [options]

Commands:
  deploy   --env ENV --image REF   ship REF (repo:tag or repo@sha256:...) to ENV with a health-gated switch
  rollback --env ENV [VERSION]     go back to the previous healthy digest, or to VERSION (digest or tag)
  status   [--env ENV]             what runs in each environment: health, version, digest, since when
  history  --env ENV               every deploy and rollback of ENV
  unlock   --env ENV               break a stale deploy lock (prints who held it)

Options:
  --env ENV    ${environments.join(' | ')}
  --json       print a final JSON line: the result (deploy, rollback) or {"environments":[...]} (status)
  -h, --help   this text

Settings come from the environment or .env: VM_HOST, VM_USER, VM_SSH_PORT, VM_SSH_KEY or
VM_SSH_KEY_FILE, VM_KNOWN_HOSTS or VM_KNOWN_HOSTS_FILE, BERTH_REMOTE_DIR, DEPLOY_HEALTH_PATH,
DEPLOY_HEALTH_TIMEOUT_S, DEPLOY_HEALTH_INTERVAL_S, DEPLOY_HEALTH_SUCCESSES, DEPLOY_KEEP,
DEPLOY_LOCK_WAIT_S, PROXY_IMAGE, DEPLOY_RELEASE_COMMAND, DEPLOY_RELEASE_TIMEOUT_S,
DEPLOY_SLACK_WEBHOOK_URL. See the README's deploy section.`;

class UsageError extends Error {}

export interface Invocation {
  command: 'deploy' | 'rollback' | 'status' | 'history' | 'unlock' | 'help';
  env?: EnvName;
  image?: string;
  version?: string;
  json: boolean;
}

export function parseInvocation(argv: string[]): Invocation {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        env: { type: 'string', short: 'e' },
        image: { type: 'string', short: 'i' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help || command === 'help') return { command: 'help', json: false };
  if (command === undefined)
    throw new UsageError('which command? (deploy, rollback, status, history, unlock)');
  if (!['deploy', 'rollback', 'status', 'history', 'unlock'].includes(command))
    throw new UsageError(`unknown command "${command}"`);
  const env = values.env;
  if (env !== undefined && !isEnvName(env))
    throw new UsageError(`--env must be one of ${environments.join(', ')} (got "${env}")`);
  if (command !== 'status' && env === undefined)
    throw new UsageError(`${command} needs --env (${environments.join(' | ')})`);
  const inv: Invocation = {
    command: command as Invocation['command'],
    env,
    json: values.json ?? false,
  };
  if (command === 'deploy') {
    if (!values.image)
      throw new UsageError('deploy needs --image REF (repo:tag or repo@sha256:...)');
    if (!/^[a-z0-9][a-z0-9._:/-]*(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$/i.test(values.image))
      throw new UsageError(`--image "${values.image}" is not an image reference`);
    inv.image = values.image;
  } else if (values.image) throw new UsageError(`--image is only for deploy`);
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
  /** Signals to trap (the entry passes process); tests leave it out. */
  signals?: NodeJS.EventEmitter;
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

  let cfg: DeployConfig;
  try {
    cfg = loadConfig(o.env, `${os.userInfo().username}@${os.hostname()}`);
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
  let exec: Executor | undefined;
  const extra: Executor[] = [];
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
    exec = await reporter.step(
      'connect',
      () => connect(cfg),
      (e) => e.target,
    );
    switch (inv.command) {
      case 'status': {
        const list = [];
        for (const env of inv.env ? [inv.env] : environments)
          list.push(await envStatus(exec, cfg, env));
        // --json: promote.yml (and npm run rehearse) read the full digest an environment runs.
        io.out(inv.json ? JSON.stringify({ environments: list }) : statusTable(list));
        return 0;
      }
      case 'history':
        io.out(await historyText(exec, cfg, inv.env!));
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
            return e;
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
      reason: redact((err as Error).message ?? String(err), [cfg.privateKey]),
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
