// Expand, then contract, on the real VM: a backward-compatible migration (a new nullable column)
// runs as the release step of a deploy while v1 keeps serving orders under load, then the switch;
// no request fails, no order written during the deploy is lost. The database is a PostgreSQL
// container on the environment's own compose network, reachable as `db`, as the environment's
// own database will be; the app reaches it through DATABASE_URL in app.env.
import { spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requirePart } from '../../helpers/real-tools.js';
import {
  cliEnv,
  deploy,
  docker,
  explain,
  imageRepo,
  images,
  served,
  takeVm,
  testEnv,
  testPorts,
  versions,
  vmReady,
  writeVmFile,
} from './harness.js';
import { startPoller } from './poller.js';

const env = 'testing';
const project = `berth-${env}`;
const network = `${project}_default`;
const dbImage = testEnv.DB_IMAGE ?? 'localhost/berth-test/postgres:latest';
const dbContainer = `${project}-migration-test-db`;
const release = { DEPLOY_RELEASE_COMMAND: '["node","dist/service/db/migrate.js"]' };

const dbImageReady =
  vmReady &&
  requirePart(
    `the database stand-in image ${dbImage}`,
    () =>
      spawnSync('docker', ['image', 'inspect', dbImage], {
        env: { ...process.env, DOCKER_HOST: testEnv.DOCKER_HOST },
        stdio: 'ignore',
      }).status === 0,
    'run `bash scripts/test-env/engine.sh up` (it builds the Debian postgresql stand-in)',
  );

/** psql in the database container, as the superuser over its local socket. */
const sql = async (query: string): Promise<string> =>
  (await docker(['exec', dbContainer, 'psql', '-U', 'berth', '-d', 'berth', '-Atc', query])).trim();

type Writes = { sent: number; created: string[]; failures: string[] };

/**
 * POST /orders in a loop, each with a new id, until stopped: every answer must be 201. A new
 * connection per request, so no request can meet a keep-alive connection the proxy closed and
 * nothing needs a retry: every error counts.
 */
function startWriter(port: number): { stop: () => Promise<Writes> } {
  let running = true;
  const result: Writes = { sent: 0, created: [], failures: [] };
  const post = (id: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          path: '/orders',
          method: 'POST',
          agent: false,
          timeout: 5000,
          headers: { 'content-type': 'application/json' },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
      req.on('error', reject);
      req.end(JSON.stringify({ id, amount: '10.25' }));
    });
  const loop = (async () => {
    while (running) {
      const id = randomUUID();
      result.sent += 1;
      try {
        const status = await post(id);
        if (status === 201) result.created.push(id);
        else result.failures.push(`HTTP ${status}`);
      } catch (error) {
        result.failures.push((error as Error).message);
      }
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return result;
    },
  };
}

/** The test's temporary folder: the password file and the images' build contexts. */
let work = '';

/** An image: `base` plus one more migration file. */
async function withMigration(base: string, tag: string, file: string, up: string, down: string) {
  const context = path.join(work, tag);
  mkdirSync(path.join(context, 'migrations'), { recursive: true });
  writeFileSync(
    path.join(context, 'migrations', file),
    `-- Up Migration\n${up}\n\n-- Down Migration\n${down}\n`,
  );
  writeFileSync(
    path.join(context, 'Dockerfile'),
    `FROM ${base}\nCOPY migrations/ /app/migrations/\n`,
  );
  const image = `${imageRepo}:${tag}`;
  await docker(['build', '--pull=false', '-q', '-t', image, context]);
  await docker(['push', '-q', image]);
  return image;
}

/** Health checks, order reads and order writes through the public port while `during` runs. */
async function underLoad<T>(knownId: string, during: () => Promise<T>) {
  const base = `http://127.0.0.1:${testPorts[env]}`;
  const health = startPoller(`${base}/health`);
  const reads = startPoller(`${base}/orders/${knownId}`);
  const writes = startWriter(testPorts[env]);
  // Orders written before the deploy starts, so the migration meets a table in use.
  await new Promise((r) => setTimeout(r, 1000));
  const result = await during();
  await new Promise((r) => setTimeout(r, 1000));
  const [h, rd, w] = await Promise.all([health.stop(), reads.stop(), writes.stop()]);
  return { result, h, rd, w };
}

describe.skipIf(!dbImageReady)('deploy: a backward-compatible migration under load', () => {
  let releaseVm = (): void => {};
  let knownId = '';
  let expandImage = '';
  let contractImage = '';

  beforeAll(async () => {
    releaseVm = await takeVm(env);
    work = mkdtempSync(path.join(tmpdir(), 'berth-migration-'));
    await docker(['rm', '-f', '-v', dbContainer]).catch(() => '');
    // The environment's network as compose makes it (its labels), so the deploy's compose adopts it.
    const networks = await docker(['network', 'ls', '--format', '{{.Name}}']);
    if (!networks.split('\n').includes(network))
      await docker([
        'network',
        'create',
        '--label',
        'com.docker.compose.network=default',
        '--label',
        `com.docker.compose.project=${project}`,
        network,
      ]);
    const password = randomBytes(18).toString('hex');
    const passwordFile = path.join(work, 'db-password');
    // Read inside the container by its postgres user; the folder (0700) keeps it from others here.
    // The password reaches the container as a file, never as an argument or a variable.
    writeFileSync(passwordFile, password);
    chmodSync(work, 0o700);
    chmodSync(passwordFile, 0o644);
    await docker([
      'run',
      '-d',
      '--name',
      dbContainer,
      '--network',
      network,
      '--network-alias',
      'db',
      '-e',
      'POSTGRES_USER=berth',
      '-e',
      'POSTGRES_DB=berth',
      '-e',
      'POSTGRES_PASSWORD_FILE=/run/secrets/db-password',
      '-v',
      `${passwordFile}:/run/secrets/db-password:ro`,
      dbImage,
    ]);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const ready = await docker([
        'exec',
        dbContainer,
        'pg_isready',
        '-h',
        '127.0.0.1',
        '-U',
        'berth',
      ])
        .then(() => true)
        .catch(() => false);
      if (ready) break;
      if (Date.now() > deadline) throw new Error(await docker(['logs', dbContainer]));
      await new Promise((r) => setTimeout(r, 500));
    }
    writeVmFile(
      env,
      'app.env',
      `# written by the migration e2e test\nLOG_LEVEL=info\nDATABASE_URL=postgres://berth:${password}@db:5432/berth\n`,
    );
    // v1 and its schema: the first migration, through the release step.
    const first = await deploy(env, images.v1, cliEnv(release));
    expect(first.code, explain(first)).toBe(0);
    knownId = randomUUID();
    const created = await fetch(`http://127.0.0.1:${testPorts[env]}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: knownId, amount: '1.00' }),
    });
    expect(created.status).toBe(201);
    // v2 plus one expand-only migration: a nullable column, which v1's INSERTs and SELECTs ignore.
    expandImage = await withMigration(
      images.v2,
      'expand',
      '1796170090290_add-order-note.sql',
      'ALTER TABLE orders ADD COLUMN note text;',
      'ALTER TABLE orders DROP COLUMN note;',
    );
    // The counter-example: a rename, which the version still serving cannot survive.
    contractImage = await withMigration(
      expandImage,
      'contract-too-early',
      '1796170090291_rename-amount.sql',
      'ALTER TABLE orders RENAME COLUMN amount TO total;',
      'ALTER TABLE orders RENAME COLUMN total TO amount;',
    );
  }, 900_000);

  afterAll(async () => {
    await docker(['rm', '-f', '-v', dbContainer]).catch(() => '');
    if (work) rmSync(work, { recursive: true, force: true });
    releaseVm();
  });

  it('migrates while v1 serves reads and writes, switches to v2: 0 failed requests, every order kept', async () => {
    expect((await served(env)).version).toBe(versions.v1);
    expect(await sql('SELECT count(*) FROM pgmigrations')).toBe('1');
    const {
      result: r,
      h,
      rd,
      w,
    } = await underLoad(knownId, () => deploy(env, expandImage, cliEnv(release)));
    console.log(
      `migration under load: ${h.sent} health, ${rd.sent} order reads, ${w.sent} order writes; ` +
        `failed ${h.failed} / ${rd.failed} / ${w.failures.length}; longest gap ${h.longestGapMs} / ${rd.longestGapMs} ms`,
    );
    expect(r.code, explain(r)).toBe(0);
    expect(r.output).toMatch(/release command .* exited 0/);
    expect(h.failed, h.failures.join('\n')).toBe(0);
    expect(rd.failed, rd.failures.join('\n')).toBe(0);
    expect(w.failures).toEqual([]);
    expect(h.served).toEqual([versions.v1, versions.v2]);
    expect(h.oldAfterNew).toBe(0);
    expect(rd.sent).toBeGreaterThan(10);
    expect(w.created.length).toBeGreaterThan(10);
    // The migration ran once, before the switch, and every order the load wrote is there.
    expect(await sql('SELECT name FROM pgmigrations ORDER BY id')).toBe(
      '1796170090289_create-orders\n1796170090290_add-order-note',
    );
    expect(
      await sql(
        "SELECT is_nullable FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'note'",
      ),
    ).toBe('YES');
    const stored = Number(
      await sql(
        `SELECT count(*) FROM orders WHERE id IN (${w.created.map((id) => `'${id}'`).join(',')})`,
      ),
    );
    expect(stored).toBe(w.created.length);
    expect((await served(env)).version).toBe(versions.v2);
  });

  it('the counter-example: a rename in the release step breaks the version still serving', async () => {
    expect((await served(env)).version).toBe(versions.v2);
    const {
      result: r,
      rd,
      w,
    } = await underLoad(knownId, () => deploy(env, contractImage, cliEnv(release)));
    const failed = rd.failed + w.failures.length;
    console.log(
      `rename under load: ${rd.sent} order reads, ${w.sent} order writes; failed ${rd.failed} / ${w.failures.length}`,
    );
    // The deploy itself goes through (its health gate never asks the database), and from the
    // migration on every order request fails: the old code and the new both ask for `amount`.
    expect(r.code, explain(r)).toBe(0);
    expect(failed).toBeGreaterThan(0);
    expect([...rd.failures, ...w.failures]).toContainEqual(expect.stringMatching(/^HTTP 5\d\d$/));
  });
});
