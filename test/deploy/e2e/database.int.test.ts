// The environment's PostgreSQL on the real test VM: the first deploy starts it (its migration runs
// as the release command), the app reaches it by name over the project network only, and its rows
// survive a deploy and a rollback with the very same db container (never recreated). Backups:
// backup -> DROP TABLE -> restore -> the same rows; restore without --yes refuses when nobody can
// confirm; retention keeps DEPLOY_BACKUP_KEEP; restore takes the deploy lock; the
// scheduled script writes the backup-age metric with files the deploy user still owns.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cliEnv,
  deploy,
  docker,
  explain,
  images,
  remoteDir,
  runCli,
  served,
  takeVm,
  testEnv,
  testPorts,
  versions,
  writeVmFile,
} from './harness.js';
import { repoRoot } from '../../helpers/real-tools.js';

const env = 'staging';
const dir = path.join(remoteDir, env);
const backupsDir = path.join(dir, 'backups');
const dbImage = testEnv.DB_IMAGE ?? 'localhost/berth-test/postgres:latest';
// Assembled at run time: a secret scanner reads the repository.
const password = `pw${randomBytes(12).toString('hex')}`;
const withMigrations = cliEnv({ DEPLOY_RELEASE_COMMAND: '["node","dist/service/db/migrate.js"]' });
const base = `http://127.0.0.1:${testPorts[env]}`;

interface Order {
  id: string;
  amount: string;
}

async function orders(): Promise<{ status: number; ids: string[] }> {
  const res = await fetch(`${base}/orders?limit=100`, { signal: AbortSignal.timeout(5000) });
  const body = (await res.json()) as { orders?: Order[] };
  return { status: res.status, ids: (body.orders ?? []).map((o) => `${o.id}=${o.amount}`).sort() };
}

async function dbContainer(): Promise<{ id: string; started: string }> {
  const id = await docker([
    'ps',
    '-q',
    '--filter',
    `label=com.docker.compose.project=berth-${env}`,
    '--filter',
    'label=com.docker.compose.service=db',
  ]);
  expect(id, 'a running db container').toMatch(/^\w+$/);
  return { id, started: await docker(['inspect', '-f', '{{.State.StartedAt}}', id]) };
}

const psql = async (sql: string): Promise<string> =>
  docker(['exec', (await dbContainer()).id, 'psql', '-U', 'berth', '-d', 'berth', '-Atc', sql]);

const backupFiles = (): string[] =>
  readdirSync(backupsDir)
    .filter((f) => f.endsWith('.dump'))
    .sort();

describe.skipIf(!testEnv.VM_HOST)('the database of an environment on the real VM', () => {
  let releaseVm = (): void => {};
  let first: { id: string; started: string };
  const rows: string[] = [];
  beforeAll(async () => {
    releaseVm = await takeVm(env);
    // The data volume is external: resetEnv leaves it, so start from none.
    await docker(['volume', 'rm', '-f', `berth-${env}-db`]);
    // What init_setup.sh writes: the password once in .env, the URL by network name in app.env.
    writeVmFile(
      env,
      '.env',
      `APP_PORT=${testPorts[env]}\nAPP_BIND=127.0.0.1\nDB_IMAGE=${dbImage}\nDB_PASSWORD=${password}\n`,
    );
    writeVmFile(
      env,
      'app.env',
      `LOG_LEVEL=warn\nDATABASE_URL=postgres://berth:${password}@berth-${env}-db:5432/berth\n`,
    );
    const r = await deploy(env, images.v1, withMigrations);
    expect(r.code, explain(r)).toBe(0);
    expect(r.output).toMatch(/✓ database .*created and started/);
    expect(r.output).not.toContain(password);
    for (const [id, amount] of [
      ['a-1', '12.34'],
      ['b-2', '0.01'],
      ['c-3', '99999.99'],
    ]) {
      const res = await fetch(`${base}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id, amount }),
      });
      expect(res.status).toBe(201);
      rows.push(`${id}=${amount}`);
    }
    first = await dbContainer();
  }, 900_000);
  afterAll(() => releaseVm());

  it('runs as postgres, on the project network only, with no published port and its data on the external volume', async () => {
    expect(await orders()).toEqual({ status: 200, ids: rows });
    const info = JSON.parse(await docker(['inspect', first.id])) as [
      {
        Config: { User: string };
        NetworkSettings: { Networks: Record<string, { Aliases: string[] | null }>; Ports: object };
        HostConfig: { PortBindings: object | null; ReadonlyRootfs: boolean };
        Mounts: { Name?: string; Destination: string }[];
      },
    ];
    const c = info[0];
    expect(c.Config.User).toBe('postgres');
    expect(await docker(['exec', first.id, 'id', '-un'])).toBe('postgres');
    expect(Object.keys(c.NetworkSettings.Networks)).toEqual([`berth-${env}_default`]);
    expect(c.NetworkSettings.Networks[`berth-${env}_default`]?.Aliases).toContain(
      `berth-${env}-db`,
    );
    expect(c.HostConfig.PortBindings ?? {}).toEqual({});
    expect(c.HostConfig.ReadonlyRootfs).toBe(true);
    expect(c.Mounts).toContainEqual(
      expect.objectContaining({ Name: `berth-${env}-db`, Destination: '/var/lib/postgresql/data' }),
    );
    // `down -v` removes a project's own volumes: this one is not compose's to remove.
    expect(await docker(['volume', 'inspect', '-f', '{{json .Labels}}', `berth-${env}-db`])).toBe(
      'null',
    );
    expect(await docker(['inspect', '-f', '{{.State.Health.Status}}', first.id])).toBe('healthy');
  });

  it('keeps the rows and the very same db container through a deploy and a rollback', async () => {
    const up = await deploy(env, images.v2, withMigrations);
    expect(up.code, explain(up)).toBe(0);
    expect(up.output).toMatch(/✓ database .*running, untouched/);
    expect((await served(env)).version).toBe(versions.v2);
    expect(await orders()).toEqual({ status: 200, ids: rows });
    const back = await runCli(['rollback', '--env', env, '--json'], withMigrations);
    expect(back.code, explain(back)).toBe(0);
    expect((await served(env)).version).toBe(versions.v1);
    expect(await orders()).toEqual({ status: 200, ids: rows });
    expect(await dbContainer()).toEqual(first);
  });

  it('backup, DROP TABLE, restore: the same rows again, and the dropped state kept as a pre-restore backup', async () => {
    const b = await runCli(['backup', '--env', env]);
    expect(b.code, explain(b)).toBe(0);
    const name = /backed up staging: (staging-\S+\.dump) \(/.exec(b.stdout)?.[1] ?? '';
    expect(name, b.output).not.toBe('');
    expect(statSync(path.join(backupsDir, name)).mode & 0o777).toBe(0o600);
    expect(readFileSync(path.join(backupsDir, name)).subarray(0, 5).toString()).toBe('PGDMP');
    expect(readdirSync(backupsDir).filter((f) => f.startsWith('.'))).toEqual([]);

    await psql('DROP TABLE orders');
    expect((await orders()).status).toBeGreaterThanOrEqual(500);

    const refused = await runCli(['restore', '--env', env, name]);
    expect(refused.code, explain(refused)).toBe(2);
    expect(refused.stderr).toMatch(/restore refused: .*stdin is not a terminal.*--yes/);
    expect((await orders()).status).toBeGreaterThanOrEqual(500);

    const r = await runCli(['restore', '--env', env, name, '--yes']);
    expect(r.code, explain(r)).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`restored ${name}; the data before it is in staging-.*-pre-restore\\.dump`),
    );
    expect(await orders()).toEqual({ status: 200, ids: rows });
    expect(backupFiles().filter((f) => f.endsWith('-pre-restore.dump'))).toHaveLength(1);
    expect(await dbContainer()).toEqual(first);

    const missing = await runCli(['restore', '--env', env, 'staging-nope.dump', '--yes']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no backup staging-nope\.dump in .*; there are: .*staging-/);
  });

  it('restore takes the deploy lock: a held lock refuses it, naming the holder', async () => {
    mkdirSync(path.join(dir, '.deploy-lock'));
    try {
      spawnSync('sh', [
        '-c',
        `echo 'who=ci@github-actions action=deploy since=2026-01-01T00:00:00Z pid=1 token=x' > "$1"`,
        'sh',
        path.join(dir, '.deploy-lock', 'holder'),
      ]);
      const r = await runCli(['restore', '--env', env, backupFiles()[0] ?? '', '--yes']);
      expect(r.code, explain(r)).toBe(1);
      expect(r.stderr).toMatch(/staging is locked by ci@github-actions \(deploy since/);
    } finally {
      rmSync(path.join(dir, '.deploy-lock'), { recursive: true, force: true });
    }
  });

  it('keeps the newest DEPLOY_BACKUP_KEEP backups', async () => {
    const made: string[] = [];
    for (let i = 0; i < 2; i++) {
      const b = await runCli(['backup', '--env', env], cliEnv({ DEPLOY_BACKUP_KEEP: '1' }));
      expect(b.code, explain(b)).toBe(0);
      made.push(/(staging-\S+\.dump)/.exec(b.stdout)?.[1] ?? '');
    }
    expect(backupFiles()).toEqual(made.slice(1).sort());
    const list = await runCli(['backup', '--env', env, '--list']);
    expect(list.stdout.split('\n').filter((l) => l.startsWith('staging-'))).toHaveLength(1);
  });

  it('the scheduled run (as root, like the timer) writes the metric and leaves the files to the environment owner', () => {
    const textfiles = mkdtempSync(path.join(os.tmpdir(), 'berth-textfile-'));
    // An environment taken down (`down` removes its database container) keeps its backups, but
    // their age must not page: no metric for it.
    const gone = path.join(remoteDir, 'gone');
    mkdirSync(path.join(gone, 'backups'), { recursive: true });
    writeFileSync(path.join(gone, 'backups', 'gone-20261201T000000Z.dump'), 'old');
    try {
      const before = Math.floor(Date.now() / 1000);
      const run = spawnSync(
        'sh',
        [
          path.join(repoRoot, 'src/deploy/remote/db-backup.sh'),
          'scheduled',
          textfiles,
          '2',
          dir,
          path.join(remoteDir, 'no-such-env'),
          gone,
        ],
        { env: { ...process.env, DOCKER_HOST: testEnv.DOCKER_HOST }, encoding: 'utf8' },
      );
      expect(run.status, run.stderr).toBe(0);
      expect(run.stdout).toMatch(/^staging: backed up staging-\S+\.dump \d+$/m);
      const metric = readFileSync(path.join(textfiles, 'berth_backup.prom'), 'utf8');
      const value = Number(
        /^berth_backup_last_success_timestamp_seconds\{env="staging"\} (\d+)$/m.exec(metric)?.[1],
      );
      expect(value).toBeGreaterThanOrEqual(before - 1);
      expect(metric).not.toContain('no-such-env');
      expect(metric).not.toContain('env="gone"');
      expect(backupFiles()).toHaveLength(2);
      const owner = statSync(dir).uid;
      for (const f of backupFiles()) expect(statSync(path.join(backupsDir, f)).uid).toBe(owner);
    } finally {
      rmSync(textfiles, { recursive: true, force: true });
      rmSync(gone, { recursive: true, force: true });
    }
  });
});
