// `status` and `history`: read-only views of what runs on the VM, per environment.
import { inspectContainer } from './commands/app.js';
import { probeOnce } from './commands/probe.js';
import { readFile } from './commands/files.js';
import { parseUpstream } from './commands/proxy.js';
import type { DeployConfig } from './config.js';
import { shortDigest } from './digest.js';
import { environmentInfo, type EnvName } from './environments.js';
import { parseSettings, readSettings } from './commands/targets.js';
import { parseContainerState } from './health.js';
import { parseHistory, replay, type HistoryEntry } from './history.js';
import { TIMEOUT_MS } from './limits.js';
import { envPaths } from './paths.js';
import type { Executor } from './ssh.js';

export interface EnvStatus {
  env: EnvName;
  /** Where users reach it: https://APP_DOMAIN, or the VM's port over plain HTTP. */
  url?: string;
  container?: string;
  health: 'healthy' | 'unhealthy' | 'stopped' | 'missing' | 'not deployed';
  version?: string;
  digest?: string;
  image?: string;
  since?: string;
}

export async function envStatus(
  exec: Executor,
  cfg: DeployConfig,
  env: EnvName,
): Promise<EnvStatus> {
  const quick = { timeoutMs: TIMEOUT_MS.quick };
  const paths = envPaths(cfg.remoteDir, env);
  const name = parseUpstream((await exec.run(readFile(paths.upstream), quick)).stdout);
  if (!name) return { env, health: 'not deployed' };
  const url = publicUrl(
    (await exec.run(readSettings(paths.env, paths.appEnv), quick)).stdout,
    cfg.host,
    env,
  );
  const inspected = await exec.run(inspectContainer(name), quick);
  const state = inspected.code === 0 ? parseContainerState(inspected.stdout) : undefined;
  if (!state) return { env, url, container: name, health: 'missing' };
  const base = {
    env,
    url,
    container: name,
    digest: state.digest,
    image: state.image,
    since: state.startedAt.replace(/\.\d+/, ''),
  };
  if (state.status !== 'running') return { ...base, health: 'stopped' };
  const probe = await exec.run(probeOnce(env, name, cfg.healthPath), quick);
  const [code, ...body] = probe.stdout.trim().split(' ');
  let version: string | undefined;
  try {
    version = (JSON.parse(body.join(' ')) as { version?: string }).version;
  } catch {
    version = undefined;
  }
  return {
    ...base,
    health: Number(code) >= 200 && Number(code) < 300 ? 'healthy' : 'unhealthy',
    version,
  };
}

export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** https://APP_DOMAIN, or http://HOST:APP_PORT; undefined when the settings do not parse. */
export function publicUrl(settings: string, host: string, env: EnvName): string | undefined {
  try {
    const s = parseSettings(settings, environmentInfo[env].port);
    return s.domain
      ? `https://${s.domain}${s.basePath}`
      : `http://${host.includes(':') ? `[${host}]` : host}:${s.port}${s.basePath}`;
  } catch {
    return undefined;
  }
}

/** Under the table when some environment is served over plain HTTP: what that exposes. */
export function plainHttpLine(list: EnvStatus[]): string | undefined {
  const plain = list.filter((s) => s.url?.startsWith('http:')).map((s) => s.env);
  if (plain.length === 0) return undefined;
  return `plain HTTP (no APP_DOMAIN): ${plain.join(', ')}: anyone on the path can read and change requests and answers; give each a domain for HTTPS (docs/edge.md, "Without domains")`;
}

export function statusTable(list: EnvStatus[]): string {
  return table([
    ['ENV', 'HEALTH', 'URL', 'VERSION', 'DIGEST', 'SINCE', 'IMAGE', 'CONTAINER'],
    ...list.map((s) => [
      s.env,
      s.health,
      s.url ?? '-',
      s.version ?? '-',
      shortDigest(s.digest),
      s.since ?? '-',
      s.image ?? '-',
      s.container ?? '-',
    ]),
  ]);
}

/** A history line, and whether a later rollback left the version it served (plain rollback skips it). */
export type HistoryRow = HistoryEntry & { rolledAway: boolean };

export async function historyRows(
  exec: Executor,
  cfg: DeployConfig,
  env: EnvName,
): Promise<HistoryRow[]> {
  const entries = parseHistory(
    (
      await exec.run(readFile(envPaths(cfg.remoteDir, env).history), {
        timeoutMs: TIMEOUT_MS.quick,
      })
    ).stdout,
  );
  const { left } = replay(entries);
  return entries.map((e) => ({ ...e, rolledAway: left.has(e) }));
}

export function historyTable(env: EnvName, rows: HistoryRow[]): string {
  if (rows.length === 0) return `no deploys recorded for ${env} yet`;
  return table([
    ['TIME', 'ACTION', 'RESULT', 'DIGEST', 'IMAGE', 'WHO', 'REASON'],
    ...rows.map((e) => [
      e.time,
      e.action,
      e.rolledAway ? `${e.result}, rolled away` : e.result,
      shortDigest(e.digest),
      e.image,
      e.who,
      e.reason ?? '',
    ]),
  ]);
}
