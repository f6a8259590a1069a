// Database backups from the CLI: `backup` (a dump on the VM, the newest DEPLOY_BACKUP_KEEP kept),
// `backup --list`, and `restore`, which takes the deploy lock so no deploy or rollback (and no
// release command's migration) runs against the data while it is replaced.
import { backupDb, listBackups, parseBackups, restoreDb, type Backup } from './commands/db.js';
import type { DeployConfig } from './config.js';
import { OpsError } from './dayops.js';
import type { EnvName } from './environments.js';
import { EXIT, TIMEOUT_MS } from './limits.js';
import { acquire } from './lock.js';
import { envPaths } from './paths.js';
import type { Executor, RunResult } from './ssh.js';

const lastLine = (r: RunResult): string =>
  r.stderr.trim().split('\n').at(-1) || r.stdout.trim().split('\n').at(-1) || `exit ${r.code}`;

function check(r: RunResult, what: string): RunResult {
  if (r.code === EXIT.db.noDatabase || r.code === EXIT.db.noBackup) throw new OpsError(lastLine(r));
  if (r.code !== 0) throw new Error(`${what}: ${lastLine(r)}`);
  return r;
}

export const size = (bytes: number): string =>
  bytes < 1024
    ? `${bytes} B`
    : bytes < 1024 ** 2
      ? `${(bytes / 1024).toFixed(1)} kB`
      : `${(bytes / 1024 ** 2).toFixed(1)} MB`;

/** Dumps the database; returns the line to print. */
export async function backup(exec: Executor, cfg: DeployConfig, env: EnvName): Promise<string> {
  const dir = envPaths(cfg.remoteDir, env).dir;
  const r = check(
    await exec.run(backupDb(dir, cfg.backupKeep), { timeoutMs: TIMEOUT_MS.backup }),
    `the backup of ${env} failed`,
  );
  const [name = '?', bytes = '0'] = r.stdout.trim().split('\n').at(-1)?.split(' ') ?? [];
  return `backed up ${env}: ${name} (${size(Number(bytes))}) in ${dir}/backups; the newest ${cfg.backupKeep} are kept`;
}

export async function backups(exec: Executor, cfg: DeployConfig, env: EnvName): Promise<Backup[]> {
  const r = check(
    await exec.run(listBackups(envPaths(cfg.remoteDir, env).dir), { timeoutMs: TIMEOUT_MS.quick }),
    `cannot list ${env}'s backups`,
  );
  return parseBackups(r.stdout);
}

export function backupTable(list: Backup[]): string {
  if (list.length === 0) return 'no backups';
  return list
    .map((b) => `${b.name}  ${size(b.bytes)}  ${new Date(b.mtime * 1000).toISOString()}`)
    .join('\n');
}

/** Restores `name` under the deploy lock; returns the line to print. */
export async function restore(
  exec: Executor,
  cfg: DeployConfig,
  env: EnvName,
  name: string,
  signal?: AbortSignal,
): Promise<string> {
  const paths = envPaths(cfg.remoteDir, env);
  const lock = await acquire(exec, paths.lock, cfg.who, 'restore', cfg.lockWaitS, signal);
  try {
    const r = check(
      await exec.run(restoreDb(paths.dir, name), { timeoutMs: TIMEOUT_MS.backup }),
      `the restore of ${env} from ${name} failed (the data is as it was: the restore is one transaction)`,
    );
    return r.stdout.trim().split('\n').at(-1) ?? `restored ${name}`;
  } finally {
    await lock.release(exec);
  }
}
