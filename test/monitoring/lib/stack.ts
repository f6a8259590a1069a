// Starting the shipped Prometheus and Alertmanager as local processes, shared by the end-to-end
// tests (e2e.int.test.ts, pipeline.int.test.ts): localized rule files, the flags the compose file
// runs each binary with, Alertmanager through the shipped entrypoint.sh, and waiting until a
// process answers. Only addresses, paths and the intervals the caller passes differ from the VM.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { alertmanagerDir, composeFile, prometheusDir, ruleFiles } from './expressions.js';
import {
  composeFlags,
  localizeAlertmanagerConfig,
  localizePrometheusConfig,
  localizeRules,
  localizeTargetsFile,
  type AlertmanagerLocal,
  type PrometheusLocal,
} from './localize.js';
import { startProcess, tail, waitFor, type Proc } from './processes.js';

/** Writes every shipped rule file with `for:` set to `forDuration` into `dir`; returns the paths. */
export function writeLocalRules(dir: string, forDuration: string): string[] {
  mkdirSync(dir, { recursive: true });
  return ruleFiles().map((file) => {
    const out = path.join(dir, path.basename(file));
    writeFileSync(out, stringify(localizeRules(shipped(file), forDuration)));
    return out;
  });
}

const shipped = (file: string): unknown => parse(readFileSync(file, 'utf8'));

/** Writes the shipped prometheus.yml, localized, to `file`. */
export function writeLocalPrometheusConfig(file: string, local: PrometheusLocal): void {
  writeFileSync(
    file,
    stringify(localizePrometheusConfig(shipped(path.join(prometheusDir, 'prometheus.yml')), local)),
  );
}

/**
 * Writes a targets file as the deploy writes it on the VM (`content`, from
 * src/deploy/commands/targets.ts), its addresses mapped, to `file`.
 */
export function writeLocalTargets(
  file: string,
  content: string,
  addresses: Record<string, string>,
): void {
  writeFileSync(file, stringify(localizeTargetsFile(parse(content), addresses)));
}

/** Writes the shipped alertmanager.yml, localized, to `file`. */
export function writeLocalAlertmanagerConfig(file: string, local: AlertmanagerLocal): void {
  writeFileSync(
    file,
    stringify(
      localizeAlertmanagerConfig(shipped(path.join(alertmanagerDir, 'alertmanager.yml')), local),
    ),
  );
}

/** The command-line flags of a compose service, minus the flags that name paths or addresses. */
export function shippedFlags(service: string, drop: string[]): string[] {
  const compose = parse(readFileSync(composeFile, 'utf8'), { merge: true }) as {
    services: Record<string, { command: unknown }>;
  };
  return composeFlags(compose.services[service]?.command, drop, { PATH: process.env.PATH });
}

type Start = {
  work: string;
  port: number;
  configFile: string;
  logName: string;
  extraArgs?: string[];
};

export function startPrometheus(opts: Start & { env: Record<string, string> }): Proc {
  return startProcess(
    'prometheus',
    'prometheus',
    [
      ...shippedFlags('prometheus', ['--config.file', '--storage.tsdb.path', '--web.external-url']),
      `--config.file=${opts.configFile}`,
      `--storage.tsdb.path=${path.join(opts.work, 'prometheus-data')}`,
      `--web.listen-address=127.0.0.1:${opts.port}`,
      `--web.external-url=http://127.0.0.1:${opts.port}`,
      ...(opts.extraArgs ?? []),
    ],
    { env: { PATH: process.env.PATH, ...opts.env }, logFile: path.join(opts.work, opts.logName) },
  );
}

/**
 * Alertmanager through the shipped entrypoint.sh. `env` carries what .env would pass
 * (SLACK_WEBHOOK_URL, HEARTBEAT_URL); the entrypoint's private files go into `work`.
 */
export function startAlertmanager(
  opts: Start & { env: Record<string, string>; webhookFile: string },
): Proc {
  return startProcess(
    'alertmanager',
    'sh',
    [
      path.join(alertmanagerDir, 'entrypoint.sh'),
      ...shippedFlags('alertmanager', ['--config.file', '--storage.path', '--web.external-url']),
      `--config.file=${opts.configFile}`,
      `--storage.path=${path.join(opts.work, 'alertmanager-data')}`,
      `--web.listen-address=127.0.0.1:${opts.port}`,
      `--web.external-url=http://127.0.0.1:${opts.port}`,
    ],
    {
      env: {
        PATH: process.env.PATH,
        SECRET_FILE: path.join(opts.work, 'no-secret-file'),
        WEBHOOK_FILE: opts.webhookFile,
        CONFIG_COPY: path.join(opts.work, 'alertmanager.rendered.yml'),
        ALERTMANAGER_BIN: 'prometheus-alertmanager',
        ...opts.env,
      },
      logFile: path.join(opts.work, opts.logName),
    },
  );
}

/** Resolves once `url` answers 2xx; fails at once with the log's tail if the process exits. */
export async function untilReady(proc: Proc, url: string): Promise<void> {
  await waitFor(
    `${proc.name} at ${url}`,
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited:\n${tail(proc)}`);
      const res = await fetch(url);
      return res.ok ? true : undefined;
    },
    60_000,
  );
}
