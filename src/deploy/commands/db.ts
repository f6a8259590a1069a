// The environment's database: the `db` service of its compose project (docker-compose.yml), its
// external volume, and its backups (remote/db-backup.sh, sent on stdin).
import { projectName, type EnvName } from '../environments.js';
import { docker, sh, shellProgram, type RemoteCommand } from './command.js';
import { compose } from './compose.js';

/** The external volume the data lives on; docker-compose.yml names it `${COMPOSE_PROJECT_NAME}-db`. */
export const dbVolumeName = (env: EnvName): string => `${projectName(env)}-db`;

/** Where the app finds it: an alias on the project's own network only. */
export const dbHost = (env: EnvName): string => `${projectName(env)}-db`;

/** Prints `yes` when the environment's .env gives the database a password (init_setup.sh generates it). */
export const dbConfigured = (dotEnv: string): RemoteCommand =>
  sh(
    'db.configured',
    'if grep -Eq "^DB_PASSWORD=.+" "$1" 2>/dev/null; then echo yes; else echo no; fi',
    dotEnv,
  );

/** The db container's state (`running`, `exited`, ...), or nothing when there is none. */
export const dbState = (env: EnvName): RemoteCommand =>
  docker(
    'db.state',
    'ps',
    '-a',
    '--filter',
    `label=com.docker.compose.project=${projectName(env)}`,
    '--filter',
    'label=com.docker.compose.service=db',
    '--format',
    '{{.State}}',
  );

/** Idempotent: an existing volume is left exactly as it is. */
export const createDbVolume = (env: EnvName): RemoteCommand =>
  docker('db.volume', 'volume', 'create', dbVolumeName(env));

/**
 * Starts the db and waits until its health check passes. --no-recreate: an existing container is
 * only started, never replaced, even when the compose file or DB_IMAGE changed since it was made.
 */
export const startDb = (env: EnvName, dir: string, vars: Record<string, string>): RemoteCommand =>
  compose(
    'db.start',
    env,
    dir,
    ['up', '-d', '--no-recreate', '--no-deps', '--wait', '--wait-timeout', '150', 'db'],
    vars,
  );

export const backupDb = (dir: string, keep: number): RemoteCommand =>
  shellProgram('db.backup', 'db-backup.sh', 'backup', dir, String(keep));

export const restoreDb = (dir: string, name: string): RemoteCommand =>
  shellProgram('db.restore', 'db-backup.sh', 'restore', dir, name);

export const listBackups = (dir: string): RemoteCommand =>
  shellProgram('db.list', 'db-backup.sh', 'list', dir);

export interface Backup {
  name: string;
  bytes: number;
  /** Unix seconds. */
  mtime: number;
}

/** `db-backup.sh list`'s lines: MTIME SIZE NAME, newest first. */
export function parseBackups(text: string): Backup[] {
  return text
    .split('\n')
    .map((l) => /^(\d+(?:\.\d+)?) (\d+) (\S+)$/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ mtime: Math.floor(Number(m[1])), bytes: Number(m[2]), name: m[3] ?? '' }));
}

/** A backup's file name as the CLI accepts it: no path, no leading dot. */
export const isBackupName = (name: string): boolean =>
  /^[A-Za-z0-9][A-Za-z0-9._-]*\.dump$/.test(name);
