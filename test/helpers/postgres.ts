// A throwaway PostgreSQL cluster for tests: initdb in a temporary folder, a server on a free
// loopback port with password authentication, one database. Debian's postgresql package
// provides the binaries (in /usr/lib/postgresql/<version>/bin, not on PATH). PostgreSQL refuses
// to run as root, so as root the cluster belongs to the `postgres` user (or `nobody`).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './net.js';
import { onPath, requirePart } from './real-tools.js';

export const POSTGRES_HINT =
  'install it with `apt-get install -y postgresql` (Debian), or run `bash scripts/test-env/postgres.sh up`';

/** The folder holding initdb, pg_ctl and postgres: on PATH, else Debian's newest version. */
export function postgresBinDir(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (
      dir !== '' &&
      existsSync(path.join(dir, 'initdb')) &&
      existsSync(path.join(dir, 'pg_ctl'))
    ) {
      // initdb finds postgres beside its real location, so a symlinked initdb still works.
      return dir;
    }
  }
  const debian = '/usr/lib/postgresql';
  if (!existsSync(debian)) return undefined;
  const versions = readdirSync(debian)
    .filter((v) => /^\d+$/.test(v) && existsSync(path.join(debian, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : path.join(debian, versions[0], 'bin');
}

/** At module level: true when PostgreSQL's server binaries are here; under CI=true a throw. */
export function requirePostgres(): boolean {
  // As root the cluster runs under another user, through runuser (util-linux).
  const check = () =>
    postgresBinDir() !== undefined && (process.getuid?.() !== 0 || onPath('runuser'));
  return requirePart('PostgreSQL (initdb, pg_ctl)', check, POSTGRES_HINT);
}

export type PostgresCluster = {
  /** postgres://berth_test:<password>@127.0.0.1:<port>/berth_test */
  url: string;
  password: string;
  port: number;
  stop(): void;
  start(): void;
  /** Stops the server and deletes its folder. */
  destroy(): void;
  /** A one-off client for checks made beside the service. */
  query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]>;
};

function ownerUser(): { name: string; uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${name}:`));
    const [, , uid, gid] = line?.split(':') ?? [];
    if (uid !== undefined && gid !== undefined) return { name, uid: Number(uid), gid: Number(gid) };
  }
  throw new Error(
    'running as root, but neither a postgres nor a nobody user exists to own the cluster',
  );
}

export async function startPostgres(): Promise<PostgresCluster> {
  const bin = postgresBinDir();
  if (bin === undefined) throw new Error(`PostgreSQL is not installed: ${POSTGRES_HINT}`);
  const owner = ownerUser();
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-pg-'));
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'server.log');
  const password = randomBytes(12).toString('hex');
  writeFileSync(path.join(dir, 'pwfile'), `${password}\n`);
  if (owner !== undefined) {
    chownSync(dir, owner.uid, owner.gid);
    chownSync(path.join(dir, 'pwfile'), owner.uid, owner.gid);
  }
  chmodSync(dir, 0o700);

  const run = (command: string, args: string[]) => {
    const [file, argv] =
      owner === undefined
        ? [command, args]
        : ['runuser', ['-u', owner.name, '--', command, ...args]];
    const result = spawnSync(file, argv, { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    if (result.status !== 0) {
      const serverLog = existsSync(log) ? readFileSync(log, 'utf8').slice(-2_000) : '';
      throw new Error(
        `${command} ${args.join(' ')} failed (${result.status}): ${result.stderr}${result.stdout}\n${serverLog}`,
      );
    }
  };

  run(path.join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    'berth_test',
    `--pwfile=${path.join(dir, 'pwfile')}`,
    '--auth-host=scram-sha-256',
    '--auth-local=trust',
    '-E',
    'UTF8',
    '--no-locale',
    '--no-sync',
  ]);
  const port = await freePort();
  // Sockets in the cluster's own folder; fsync off: a test database need not survive a power cut.
  const options = `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off -c max_connections=60`;
  const start = () =>
    run(path.join(bin, 'pg_ctl'), [
      '-D',
      data,
      '-l',
      log,
      '-o',
      options,
      '-w',
      '-t',
      '60',
      'start',
    ]);
  const stop = () =>
    run(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']);
  start();

  const base = `postgres://berth_test:${password}@127.0.0.1:${port}`;
  const admin = new pg.Client({ connectionString: `${base}/postgres` });
  await admin.connect();
  await admin.query('CREATE DATABASE berth_test');
  await admin.end();
  const url = `${base}/berth_test`;

  let stopped = false;
  return {
    url,
    password,
    port,
    start: () => {
      start();
      stopped = false;
    },
    stop: () => {
      stop();
      stopped = true;
    },
    destroy: () => {
      try {
        if (!stopped) stop();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    query: async <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return (await client.query<R>(text, values)).rows;
      } finally {
        await client.end();
      }
    },
  };
}
