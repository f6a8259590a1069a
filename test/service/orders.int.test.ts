// The Orders API through a real PostgreSQL: a throwaway cluster, the real migration entry point,
// then every behaviour the issue asks for, including concurrency and a database restart.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import request from 'supertest';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS_DIR, migrateUp } from '../../src/service/db/migrate.js';
import { freePort } from '../helpers/net.js';

const orderIds = (body: unknown): string[] =>
  (body as { orders: { id: string }[] }).orders.map((o) => o.id);
import { repoRoot } from '../helpers/real-tools.js';
import { requirePostgres, startPostgres, type PostgresCluster } from '../helpers/postgres.js';
import { sample, testApp } from './helpers.js';

const available = requirePostgres();

const tsxLoader = pathToFileURL(
  path.join(repoRoot, 'node_modules', 'tsx', 'dist', 'loader.mjs'),
).href;
const migrateEntry = path.join(repoRoot, 'src', 'service', 'db', 'migrate.ts');

/** The release step's command, as a process: `node dist/service/db/migrate.js` from source. */
function migrate(env: Record<string, string>) {
  const result = spawnSync(process.execPath, ['--import', tsxLoader, migrateEntry], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', DATABASE_URL: '', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: result.status, output: `${result.stdout}${result.stderr}` };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe.skipIf(!available)('orders with a real PostgreSQL', () => {
  let pg: PostgresCluster;
  let made: ReturnType<typeof testApp>;
  const app = () => made.app;
  const cleanups: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    pg = await startPostgres();
  }, 120_000);

  afterAll(async () => {
    for (const c of cleanups) await c();
    pg?.destroy();
  });

  describe('migrations', () => {
    it('are applied by the release command, once, without printing the password', () => {
      const first = migrate({ DATABASE_URL: pg.url });
      expect(first.code, first.output).toBe(0);
      expect(first.output).toContain('migrations: applied 1');
      expect(first.output).not.toContain(pg.password);
      const again = migrate({ DATABASE_URL: pg.url });
      expect(again.code, again.output).toBe(0);
      expect(again.output).toContain('schema already up to date');
    });

    it('record what ran, and the table has the exact column types', async () => {
      const ran = await pg.query<{ name: string }>('SELECT name FROM pgmigrations ORDER BY id');
      expect(ran.map((r) => r.name)).toEqual(['1796170090289_create-orders']);
      const columns = await pg.query<{
        column_name: string;
        data_type: string;
        numeric_precision: number | null;
        numeric_scale: number | null;
      }>(
        `SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns WHERE table_name = 'orders' ORDER BY ordinal_position`,
      );
      expect(columns).toContainEqual({
        column_name: 'amount',
        data_type: 'numeric',
        numeric_precision: 17,
        numeric_scale: 2,
      });
    });

    it('change nothing when one of the pending migrations fails', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'berth-migrations-'));
      try {
        cpSync(MIGRATIONS_DIR, dir, { recursive: true });
        writeFileSync(
          path.join(dir, '9000000000000_add-note.sql'),
          '-- Up Migration\nALTER TABLE orders ADD COLUMN note text;\n',
        );
        writeFileSync(
          path.join(dir, '9000000000001_broken.sql'),
          '-- Up Migration\nALTER TABLE no_such_table ADD COLUMN x int;\n',
        );
        await expect(migrateUp(pg.url, pino({ level: 'silent' }), dir)).rejects.toThrow(
          /no_such_table/,
        );
        const columns = await pg.query(
          `SELECT 1 FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'note'`,
        );
        expect(columns).toEqual([]);
        const ran = await pg.query<{ name: string }>('SELECT name FROM pgmigrations');
        expect(ran.map((r) => r.name)).toEqual(['1796170090289_create-orders']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('fail with exit 1 and a message when the database is unreachable or unset', () => {
      const down = migrate({
        DATABASE_URL: `postgres://berth_test:${pg.password}@127.0.0.1:1/berth_test`,
      });
      expect(down.code).toBe(1);
      expect(down.output).toContain('migrations failed');
      expect(down.output).not.toContain(pg.password);
      const unset = migrate({});
      expect(unset.code).toBe(1);
      expect(unset.output).toContain('DATABASE_URL must be set to run migrations');
    });
  });

  describe('the API', () => {
    beforeAll(async () => {
      // Already done by the migrations tests above; again here so `-t` can pick any test.
      await migrateUp(pg.url, pino({ level: 'silent' }));
      made = testApp({ DATABASE_URL: pg.url });
      cleanups.push(made.close);
    });

    it('creates an order with a generated id, then finds it', async () => {
      const res = await request(app()).post('/orders').send({ amount: '12.50' }).expect(201);
      expect(res.body).toEqual({
        id: expect.stringMatching(UUID),
        amount: '12.50',
        created_at: expect.any(String),
      });
      expect(res.headers.location).toBe(`/orders/${res.body.id}`);
      expect(new Date(res.body.created_at).toISOString()).toBe(res.body.created_at);
      await request(app()).get(`/orders/${res.body.id}`).expect(200, res.body);
    });

    it('is idempotent for the same id and body, and refuses another body with 409', async () => {
      const first = await request(app())
        .post('/orders')
        .send({ id: 'idem-1', amount: 10.5 })
        .expect(201);
      expect(first.body.amount).toBe('10.50');
      // The same amount written another way is the same body.
      for (const amount of [10.5, '10.50', '10.5', 10.5]) {
        const again = await request(app())
          .post('/orders')
          .send({ id: 'idem-1', amount })
          .expect(200);
        expect(again.body).toEqual(first.body);
      }
      const other = await request(app())
        .post('/orders')
        .send({ id: 'idem-1', amount: '10.51' })
        .expect(409);
      expect(other.body).toEqual({
        error: 'an order with this id already exists with another amount',
        id: 'idem-1',
        amount: '10.50',
      });
      expect((await pg.query('SELECT * FROM orders WHERE id = $1', ['idem-1'])).length).toBe(1);
    });

    it('makes exactly one order from 50 parallel creates with the same id', async () => {
      const results = await Promise.all(
        Array.from({ length: 50 }, () =>
          request(app()).post('/orders').send({ id: 'race-1', amount: '3.00' }),
        ),
      );
      const statuses = results.map((r) => r.status).sort();
      expect(statuses.filter((s) => s === 201)).toHaveLength(1);
      expect(statuses.filter((s) => s === 200)).toHaveLength(49);
      expect(new Set(results.map((r) => JSON.stringify(r.body))).size).toBe(1);
      expect(
        await pg.query('SELECT id, amount::text FROM orders WHERE id = $1', ['race-1']),
      ).toEqual([{ id: 'race-1', amount: '3.00' }]);
    });

    it('gives one 201 and only 409s to the other bodies when parallel creates disagree', async () => {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          request(app())
            .post('/orders')
            .send({ id: 'race-2', amount: `${i + 1}.00` }),
        ),
      );
      expect(results.filter((r) => r.status === 201)).toHaveLength(1);
      const winner = results.find((r) => r.status === 201)?.body.amount;
      for (const r of results.filter((x) => x.status !== 201)) {
        expect(r.status).toBe(409);
        expect(r.body.amount).toBe(winner);
      }
    });

    it('keeps amounts exact: 0.1 + 0.2 is 0.30, and 17 digits survive', async () => {
      const json = (id: string, amount: string) => `{"id":"${id}","amount":${amount}}`;
      const post = (body: string) =>
        request(app()).post('/orders').set('content-type', 'application/json').send(body);
      await post(json('exact-a', '0.1')).expect(201);
      await post(json('exact-b', '0.2')).expect(201);
      const [sum] = await pg.query<{ sum: string; equal: boolean }>(
        `SELECT sum(amount)::text AS sum, sum(amount) = 0.3 AS equal FROM orders WHERE id IN ('exact-a', 'exact-b')`,
      );
      expect(sum).toEqual({ sum: '0.30', equal: true });
      // 999999999999999.99 as a binary float is 1000000000000000: a float anywhere would show.
      const big = await post(json('exact-big', '999999999999999.99')).expect(201);
      expect(big.body.amount).toBe('999999999999999.99');
      expect((await request(app()).get('/orders/exact-big').expect(200)).body.amount).toBe(
        '999999999999999.99',
      );
      const [stored] = await pg.query<{ amount: string }>(
        `SELECT amount::text FROM orders WHERE id = 'exact-big'`,
      );
      expect(stored?.amount).toBe('999999999999999.99');
      // What a client computing 0.1 + 0.2 in floats sends is refused, not rounded.
      const float = await post(json('exact-float', '0.30000000000000004')).expect(422);
      expect(float.body.detail[0]).toMatchObject({
        type: 'decimal_max_places',
        loc: ['body', 'amount'],
      });
    });

    it.each([
      ['a missing amount', { id: 'v-1' }, 'missing', ['body', 'amount']],
      ['a zero amount', { amount: 0 }, 'greater_than', ['body', 'amount']],
      ['a negative amount', { amount: '-5' }, 'greater_than', ['body', 'amount']],
      ['three decimals', { amount: '1.005' }, 'decimal_max_places', ['body', 'amount']],
      [
        'an amount over the bound',
        { amount: '1000000000000000' },
        'less_than_equal',
        ['body', 'amount'],
      ],
      ['an amount as a boolean', { amount: true }, 'decimal_type', ['body', 'amount']],
      ['an id with a slash', { id: 'a/b', amount: '1' }, 'string_pattern_mismatch', ['body', 'id']],
      ['an id as a number', { id: 7, amount: '1' }, 'string_type', ['body', 'id']],
      ['an empty id', { id: '', amount: '1' }, 'string_pattern_mismatch', ['body', 'id']],
      ['an unknown field', { amount: '1', note: 'x' }, 'extra_forbidden', ['body', 'note']],
      ['an array body', [1, 2], 'model_attributes_type', ['body']],
    ])("refuses %s with a 422 in the service's shape", async (_what, body, type, loc) => {
      const res = await request(app())
        .post('/orders')
        .send(body as object)
        .expect(422)
        .expect('content-type', /json/);
      expect(res.body.detail).toContainEqual(
        expect.objectContaining({ type, loc, msg: expect.any(String) }),
      );
    });

    it('reports every problem of a body at once', async () => {
      const res = await request(app())
        .post('/orders')
        .send({ id: '<x>', amount: 'ten', extra: 1 })
        .expect(422);
      expect(
        (res.body as { detail: { loc: string[] }[] }).detail.map((d) => d.loc.join('.')).sort(),
      ).toEqual(['body.amount', 'body.extra', 'body.id']);
    });

    it('never answers 500, whatever the body', async () => {
      const bodies: [string, string][] = [
        ['application/json', '{"amount":' + '9'.repeat(15_000) + '}'],
        ['application/json', '{"amount":"' + '9'.repeat(15_000) + '"}'],
        ['application/json', '{"amount":1e999999}'],
        ['application/json', '{"amount":-0}'],
        ['application/json', '{"amount":"NaN"}'],
        ['application/json', '{"amount":"1.00","id":"' + 'a'.repeat(65) + '"}'],
        ['application/json', '{"amount":"1.00","id":"\\u0000"}'],
        ['application/json', '{"amount":"\\ud800"}'],
        ['application/json', '{"__proto__":{"amount":"1"},"constructor":{"prototype":{}}}'],
        ['application/json', '{"amount":{"$gt":0}}'],
        ['application/json', '{"amount":["1"]}'],
        ['application/json', '['.repeat(15_000)],
        ['application/json', '{"a":'.repeat(2_000) + '1' + '}'.repeat(2_000)],
        ['application/json', 'null'],
        ['application/json', '"1.00"'],
        ['application/json', '{"amount":"1.00"'],
        ['application/json', '\xff\xfe{}'],
        ['application/json', '{"amount":"1.00","amount":"2.00"}'],
        ['application/json', JSON.stringify({ pad: 'x'.repeat(20_000) })],
        ['application/json; charset=latin9', '{"amount":"1.00"}'],
        ['text/plain', '{"amount":"1.00"}'],
        ['application/x-www-form-urlencoded', 'amount=1.00'],
        ['application/xml', '<order amount="1"/>'],
      ];
      for (const [type, body] of bodies) {
        const res = await request(app()).post('/orders').set('content-type', type).send(body);
        expect(res.status, `${type} ${body.slice(0, 60)}`).toBeGreaterThanOrEqual(400);
        expect(res.status, `${type} ${body.slice(0, 60)}`).toBeLessThan(500);
        expect(res.headers['content-type']).toMatch(/^application\/json/);
      }
      // And random bodies: every one a clean 4xx (or a created order), never a 5xx.
      let seed = 17;
      const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
      const pieces = [
        '{',
        '}',
        '[',
        ']',
        '"amount"',
        '"id"',
        ':',
        ',',
        '"1.00"',
        '0.1',
        '1e5',
        '-',
        'null',
        'true',
        '"x"',
        '"\\u00e9"',
        ' ',
        '9999999999999999999',
      ];
      for (let i = 0; i < 300; i++) {
        const body = Array.from(
          { length: 1 + Math.floor(random() * 12) },
          () => pieces[Math.floor(random() * pieces.length)],
        ).join('');
        const res = await request(app())
          .post('/orders')
          .set('content-type', 'application/json')
          .send(body);
        expect(res.status, body).toBeLessThan(500);
      }
    });

    it('never answers 500 for odd ids and queries on GET', async () => {
      for (const p of [
        '/orders/' + 'x'.repeat(5_000),
        '/orders/%00',
        '/orders/..%2F..',
        '/orders/%E2%80%AE',
        '/orders/a%20b',
        '/orders/%',
        '/orders?limit=0',
        '/orders?limit=101',
        '/orders?limit=-1',
        '/orders?limit=1e2',
        '/orders?limit=1&limit=2',
        '/orders?cursor=',
        '/orders?cursor=%00',
        '/orders?cursor=' + 'A'.repeat(5_000),
        '/orders?cursor=bzE6OTIyMzM3MjAzNjg1NDc3NTgwOA',
      ]) {
        const res = await request(app()).get(p);
        expect(res.status, p).toBeGreaterThanOrEqual(400);
        expect(res.status, p).toBeLessThan(500);
      }
      // Not a parameter this API reads (Express's simple query parser keeps the brackets).
      await request(app()).get('/orders?cursor[a]=1').expect(200);
      await request(app())
        .get('/orders/no-such-order')
        .expect(404, { error: 'order not found', id: 'no-such-order' });
    });

    it('lists newest first, page by page, and inserts between pages shift nothing', async () => {
      await pg.query('TRUNCATE orders');
      for (let i = 1; i <= 7; i++)
        await request(app())
          .post('/orders')
          .send({ id: `p-${i}`, amount: `${i}.00` })
          .expect(201);
      const page1 = await request(app()).get('/orders?limit=3').expect(200);
      expect(orderIds(page1.body)).toEqual(['p-7', 'p-6', 'p-5']);
      expect(page1.body.next_cursor).toEqual(expect.any(String));
      // New orders arrive while a client pages through: they belong before page 1, not in page 2.
      await request(app()).post('/orders').send({ id: 'p-8', amount: '8.00' }).expect(201);
      await request(app()).post('/orders').send({ id: 'p-9', amount: '9.00' }).expect(201);
      const page2 = await request(app())
        .get(`/orders?limit=3&cursor=${page1.body.next_cursor}`)
        .expect(200);
      expect(orderIds(page2.body)).toEqual(['p-4', 'p-3', 'p-2']);
      const page3 = await request(app())
        .get(`/orders?limit=3&cursor=${page2.body.next_cursor}`)
        .expect(200);
      expect(page3.body).toEqual({
        orders: [expect.objectContaining({ id: 'p-1', amount: '1.00' })],
        next_cursor: null,
      });
      const all = await request(app()).get('/orders').expect(200);
      expect(orderIds(all.body)).toEqual([
        'p-9',
        'p-8',
        'p-7',
        'p-6',
        'p-5',
        'p-4',
        'p-3',
        'p-2',
        'p-1',
      ]);
      expect(all.body.next_cursor).toBeNull();
      // A page that ends exactly at the last order says there is no next one.
      const exact = await request(app()).get('/orders?limit=9').expect(200);
      expect(exact.body.next_cursor).toBeNull();
    });

    it('prepares the statements by id once per connection, and they survive an added column', async () => {
      // One connection, so the statements prepared by the first requests are the ones reused.
      const one = testApp({ DATABASE_URL: pg.url, DATABASE_POOL_MAX: '1' });
      cleanups.push(one.close);
      const created = await request(one.app).post('/orders').send({ amount: '3.10' }).expect(201);
      await request(one.app).get(`/orders/${created.body.id}`).expect(200, created.body);
      const prepared = async () =>
        (
          await one.db!.query<{ name: string }>(
            'test_prepared',
            'SELECT name FROM pg_prepared_statements ORDER BY name',
          )
        ).rows.map((r) => r.name);
      expect(await prepared()).toEqual(['order_get', 'order_insert']);
      // An expand migration while this version serves: its prepared statements list their
      // columns, so their result shape is unchanged and PostgreSQL re-plans them silently.
      await pg.query('ALTER TABLE orders ADD COLUMN note text');
      try {
        const again = await request(one.app).post('/orders').send({ amount: '3.20' }).expect(201);
        await request(one.app).get(`/orders/${again.body.id}`).expect(200, again.body);
        await request(one.app)
          .post('/orders')
          .send({ id: again.body.id, amount: '3.20' })
          .expect(200, again.body);
        expect(await prepared()).toEqual(['order_get', 'order_get_for_create', 'order_insert']);
      } finally {
        await pg.query('ALTER TABLE orders DROP COLUMN note');
      }
    });

    it('refuses a bad limit or cursor with a 422 naming it', async () => {
      const limit = await request(app()).get('/orders?limit=500').expect(422);
      expect(limit.body.detail[0]).toMatchObject({ loc: ['query', 'limit'], type: 'int_range' });
      const cursor = await request(app()).get('/orders?cursor=not-a-cursor').expect(422);
      expect(cursor.body.detail[0]).toMatchObject({ loc: ['query', 'cursor'] });
    });

    it('times its queries and shows the pool in /metrics, and the routes in the RED metrics', async () => {
      const text = (await request(app()).get('/metrics')).text;
      expect(
        sample(text, 'db_query_duration_seconds_count', { query: 'order_insert', outcome: 'ok' }),
      ).toBeGreaterThan(50);
      expect(
        sample(text, 'db_query_duration_seconds_count', { query: 'order_list', outcome: 'ok' }),
      ).toBeGreaterThan(0);
      expect(
        sample(text, 'db_query_duration_seconds_bucket', {
          le: '0.0005',
          query: 'order_get',
          outcome: 'ok',
        }),
      ).toEqual(expect.any(Number));
      expect(sample(text, 'db_pool_connections', { state: 'idle' })).toBeGreaterThan(0);
      expect(sample(text, 'db_pool_connections', { state: 'in_use' })).toBe(0);
      expect(text).toMatch(/^db_pool_max_connections 10$/m);
      expect(text).toMatch(/^db_pool_waiting_requests 0$/m);
      expect(
        sample(text, 'http_requests_total', { method: 'POST', route: '/orders', status: '201' }),
      ).toBeGreaterThan(10);
      expect(
        sample(text, 'http_requests_total', { method: 'POST', route: '/orders', status: '409' }),
      ).toBeGreaterThan(0);
      expect(
        sample(text, 'http_requests_total', { method: 'GET', route: '/orders/:id', status: '404' }),
      ).toBeGreaterThan(0);
      expect(
        sample(text, 'http_requests_total', { method: 'GET', route: '/orders', status: '200' }),
      ).toBeGreaterThan(0);
      expect(text).not.toMatch(/route="\/orders\/(p-|exact|idem)/);
      expect(text).not.toMatch(/^http_errors_total\{[^}]*route="\/orders/m);
    });

    it('never writes the password to the log', () => {
      expect(JSON.stringify(made.logLines)).not.toContain(pg.password);
    });
  });

  describe('the page', () => {
    it('lists orders, adds one with POST-redirect-GET, and escapes what it echoes', async () => {
      const ui = testApp({ DATABASE_URL: pg.url, BASE_PATH: '/api' });
      cleanups.push(ui.close);
      const created = await request(ui.app)
        .post('/api/ui/orders')
        .type('form')
        .send({ amount: '42.10', id: 'from-form' })
        .expect(303);
      expect(created.headers.location).toBe('/api/ui/orders');
      const generated = await request(ui.app)
        .post('/api/ui/orders')
        .type('form')
        .send({ amount: '1.5', id: '' })
        .expect(303);
      expect(generated.headers.location).toBe('/api/ui/orders');
      const page = await request(ui.app)
        .get('/api/ui/orders')
        .expect(200)
        .expect('content-type', 'text/html; charset=utf-8');
      expect(page.text).toContain('<td>from-form</td><td class="amount">42.10</td>');
      expect(page.text).toContain('<td class="amount">1.50</td>');
      expect(page.text).toContain('<form method="post" action="/api/ui/orders">');
      expect(page.text).not.toContain('<script');
      // The page keeps the service's security headers, CSP included (no inline script needed).
      expect(page.headers['content-security-policy']).toContain("script-src 'self'");
      expect(page.headers['cache-control']).toBe('no-store');

      const evil = '<script>alert(1)</script>';
      const refused = await request(ui.app)
        .post('/api/ui/orders')
        .type('form')
        .send({ amount: evil, id: `"><img src=x onerror=alert(1)>` })
        .expect(422);
      expect(refused.text).not.toContain('<script>alert(1)');
      expect(refused.text).not.toContain('<img src=x');
      expect(refused.text).toContain('value="&lt;script&gt;alert(1)&lt;/script&gt;"');
      expect(refused.text).toContain('amount: Input should be a plain decimal number');

      const conflict = await request(ui.app)
        .post('/api/ui/orders')
        .type('form')
        .send({ amount: '1.00', id: 'from-form' })
        .expect(409);
      expect(conflict.text).toContain('already exists with amount 42.10');
    });

    it('escapes a <script> stored in the table by other means', async () => {
      // The id CHECK keeps markup out of ids; amounts are numbers: only a hand-made row could
      // carry markup, so the page must not trust the table either.
      await pg.query(`ALTER TABLE orders DROP CONSTRAINT orders_id_check`);
      try {
        await pg.query(`INSERT INTO orders (id, amount) VALUES ('<script>alert(1)</script>', 1)`);
        const ui = testApp({ DATABASE_URL: pg.url });
        cleanups.push(ui.close);
        const page = await request(ui.app).get('/ui/orders').expect(200);
        expect(page.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
        expect(page.text).not.toContain('<script>');
      } finally {
        await pg.query(`DELETE FROM orders WHERE id = '<script>alert(1)</script>'`);
        await pg.query(
          `ALTER TABLE orders ADD CONSTRAINT orders_id_check CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$')`,
        );
      }
    });

    it('pages to older orders with the same cursor', async () => {
      await pg.query('TRUNCATE orders');
      await pg.query(
        `INSERT INTO orders (id, amount) SELECT 'bulk-' || n, n FROM generate_series(1, 55) AS n`,
      );
      const ui = testApp({ DATABASE_URL: pg.url });
      cleanups.push(ui.close);
      const first = await request(ui.app).get('/ui/orders').expect(200);
      expect(first.text).toContain('<td>bulk-55</td>');
      const older = /href="(\/ui\/orders\?cursor=[A-Za-z0-9_-]+)"/.exec(first.text)?.[1];
      expect(older).toBeDefined();
      const second = await request(ui.app)
        .get(older ?? '')
        .expect(200);
      expect(second.text).toContain('<td>bulk-5</td>');
      expect(second.text).not.toContain('<td>bulk-55</td>');
    });
  });

  describe('readiness across database outages', () => {
    it('stays ready through a short restart, order routes answer 503 meanwhile, then work again', async () => {
      const probe = testApp({
        DATABASE_URL: pg.url,
        DATABASE_READY_GRACE_S: '5',
        DATABASE_TIMEOUT_MS: '1000',
      });
      cleanups.push(probe.close);
      await request(probe.app).get('/ready').expect(200, { status: 'ready', database: 'ok' });

      const seen: number[] = [];
      let polling = true;
      const poller = (async () => {
        while (polling) {
          seen.push((await request(probe.app).get('/ready')).status);
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      await new Promise((r) => setTimeout(r, 300));
      pg.stop();
      try {
        const during = await request(probe.app).post('/orders').send({ amount: '1.00' });
        expect(during.status).toBe(503);
        expect(during.body).toEqual({ error: 'database unavailable' });
        const failing = await request(probe.app).get('/ready').expect(200);
        expect(failing.body).toMatchObject({ status: 'ready', database: 'failing' });
        await request(probe.app).get('/health').expect(200);
        await new Promise((r) => setTimeout(r, 1_000));
      } finally {
        pg.start();
      }
      await new Promise((r) => setTimeout(r, 1_500));
      polling = false;
      await poller;

      expect(seen.length).toBeGreaterThan(10);
      expect(seen.every((s) => s === 200)).toBe(true);
      // The pool drops the connections the restart killed and opens new ones.
      await request(probe.app).post('/orders').send({ amount: '2.00' }).expect(201);
      await request(probe.app).get('/ready').expect(200, { status: 'ready', database: 'ok' });
      expect(JSON.stringify(probe.logLines)).not.toContain(pg.password);
    });

    it('turns /ready to 503 only after the grace period, and back once the database returns', async () => {
      const probe = testApp({
        DATABASE_URL: pg.url,
        DATABASE_READY_GRACE_S: '2',
        DATABASE_TIMEOUT_MS: '1000',
      });
      cleanups.push(probe.close);
      await request(probe.app).get('/ready').expect(200);
      pg.stop();
      const stoppedAt = Date.now();
      try {
        let res = await request(probe.app).get('/ready');
        while (res.status === 200 && Date.now() - stoppedAt < 10_000) {
          await new Promise((r) => setTimeout(r, 200));
          res = await request(probe.app).get('/ready');
        }
        expect(res.status).toBe(503);
        expect(res.body).toMatchObject({ status: 'database_unreachable', database: 'unreachable' });
        expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(2_000);
        await request(probe.app).get('/health').expect(200);
      } finally {
        pg.start();
      }
      await new Promise((r) => setTimeout(r, 1_100));
      await request(probe.app).get('/ready').expect(200, { status: 'ready', database: 'ok' });
    });
  });

  describe('the server process', () => {
    it('serves orders, exits 0 on SIGTERM leaving no connection behind, and answers a wrong password with 503 not 500', async () => {
      const port = await freePort();
      const entry = path.join(repoRoot, 'src', 'service', 'server.ts');
      const child = spawn(process.execPath, ['--import', tsxLoader, entry], {
        cwd: repoRoot,
        env: {
          PATH: process.env.PATH ?? '',
          PORT: String(port),
          HOST: '127.0.0.1',
          DATABASE_URL: pg.url,
          SHUTDOWN_DELAY_MS: '0',
          BASE_PATH: '',
          LOG_LEVEL: 'info',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      // Other tests' pools are still open with the same application_name: count the difference.
      const connections = async () =>
        Number(
          (
            await pg.query<{ n: string }>(
              `SELECT count(*)::text AS n FROM pg_stat_activity WHERE application_name = 'berth'`,
            )
          )[0]?.n,
        );
      const before = await connections();
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const exited = new Promise<number | null>((resolve) =>
        child.on('exit', (code) => resolve(code)),
      );
      try {
        for (let i = 0; i < 100 && !output.includes('"msg":"listening"'); i++)
          await new Promise((r) => setTimeout(r, 100));
        const base = `http://127.0.0.1:${port}`;
        const created = await fetch(`${base}/orders`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"amount":0.10}',
        });
        expect(created.status).toBe(201);
        expect(((await created.json()) as { amount: string }).amount).toBe('0.10');
        expect(await connections()).toBeGreaterThan(before);
        child.kill('SIGTERM');
        expect(await exited).toBe(0);
        // The server ends a backend a moment after its client said goodbye.
        for (let i = 0; i < 20 && (await connections()) > before; i++)
          await new Promise((r) => setTimeout(r, 50));
        expect(await connections()).toBe(before);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      expect(output).toContain('database configured');
      expect(output).not.toContain(pg.password);

      const wrong = testApp({ DATABASE_URL: pg.url.replace(pg.password, 'not-the-password') });
      cleanups.push(wrong.close);
      const res = await request(wrong.app).get('/orders').expect(503);
      expect(res.body).toEqual({ error: 'database unavailable' });
      expect(JSON.stringify(wrong.logLines)).not.toContain('not-the-password');
    });
  });
});
