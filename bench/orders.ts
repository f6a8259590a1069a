// npm run bench:orders [-- --trials 3 --duration 5 --warmup 2 --connections 10 --pin]
// The Orders API against a real PostgreSQL (a throwaway cluster, as the tests start it: Debian's
// postgresql, scripts/test-env/postgres.sh), beside the same SQL sent straight through `pg` in the
// same run: POST /orders vs the INSERT it makes, GET /orders/:id vs its SELECT. Prints
// requests/s (queries/s for raw), p50/p99 and the ratio API/raw; target: at least 0.5. A third
// side, bench/bare-orders.mjs, sends the same queries from Node's bare HTTP server (no Express,
// no validation, logging or metrics): the most any Node HTTP service can keep of raw here.
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import pg from 'pg';
import { freePort } from '../test/helpers/net.js';
import { allowedCpus, cpuSeconds, median, root, startCompiled } from './service-process.js';
import { startPostgres } from '../test/helpers/postgres.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    // As many callers as the pool has connections: more only queue, on both sides alike, and
    // make autocannon take CPU the service and PostgreSQL need.
    connections: { type: 'string', default: '10' },
    // The service's first seconds of POSTs cost about three times the CPU of later ones (JIT,
    // the pool's SCRAM logins): the first trial is preceded by this much of every operation.
    warmup: { type: 'string', default: '5' },
    trials: { type: 'string', default: '3' },
    // Pinning (as bench:http does) steadies the figures on a quiet machine; on a shared, busy
    // one the pinned service waits for its one core while the other is idle, and measured a
    // tenth of its unpinned rate.
    pin: { type: 'boolean', default: false },
  },
});
const duration = Number(values.duration);
const connections = Number(values.connections);
const warmup = Number(values.warmup);
const trials = Number(values.trials);
const TARGET_RATIO = 0.5;
const SIDES = ['api', 'bare', 'raw'] as const;
// The service's default DATABASE_POOL_MAX; the raw side gets the same pool, so both queue the
// same number of concurrent callers on the same number of connections.
const POOL_MAX = 10;

// As bench:http: the service on one CPU, the load (autocannon, or the raw pg loop, which is this
// process) on the other; PostgreSQL is not pinned and takes what is left on both.
const [serverCpu, loadCpu] = allowedCpus();
const pinned =
  values.pin === true && loadCpu !== undefined && spawnSync('taskset', ['-V']).status === 0;

type Run = { rps: number; p50: number; p99: number; errors: number; cpuUsPerReq: number };

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}
const startService = (
  databaseUrl: string,
  port: number,
  entry = 'dist/service/server.js',
): Promise<ChildProcess> =>
  startCompiled(entry, port, {
    cpu: pinned ? serverCpu : undefined,
    env: { DATABASE_URL: databaseUrl, DATABASE_POOL_MAX: String(POOL_MAX) },
    ready: async (p) => {
      const r = await fetch(`http://127.0.0.1:${p}/ready`);
      return r.ok && ((await r.json()) as { database?: string }).database === 'ok';
    },
    waitsFor: 'report its database ready',
  });

async function api(
  url: string,
  seconds: number,
  opts: { method: 'POST' | 'GET'; ids: string[]; pid: number },
): Promise<Run> {
  const cpuBefore = cpuSeconds(opts.pid);
  const r = await autocannon({
    url,
    connections,
    duration: seconds,
    method: opts.method,
    headers: { 'content-type': 'application/json' },
    // POST without an id: the service makes a UUID, so every request creates an order.
    body: opts.method === 'POST' ? '{"amount":"12.50"}' : undefined,
    requests:
      opts.method === 'GET'
        ? [
            {
              setupRequest: (req) => ({
                ...req,
                path: `/orders/${opts.ids[Math.floor(Math.random() * opts.ids.length)]}`,
              }),
            },
          ]
        : undefined,
  });
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.non2xx,
    // Requests/s depend on what the neighbours leave of the CPUs; the service's CPU time per
    // request does not.
    cpuUsPerReq: ((cpuSeconds(opts.pid) - cpuBefore) * 1e6) / r.requests.total,
  };
}

/** `connections` callers in a closed loop on a pool of POOL_MAX, as autocannon drives the API. */
async function raw(
  pool: pg.Pool,
  seconds: number,
  query: () => { name: string; text: string; values: unknown[] },
): Promise<Run> {
  const latencies: number[] = [];
  let errors = 0;
  const until = performance.now() + seconds * 1000;
  const caller = async () => {
    while (performance.now() < until) {
      const started = performance.now();
      try {
        await pool.query(query());
        latencies.push(performance.now() - started);
      } catch {
        errors++;
      }
    }
  };
  const begun = performance.now();
  const cpuBefore = process.cpuUsage();
  await Promise.all(Array.from({ length: connections }, caller));
  const elapsed = (performance.now() - begun) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  latencies.sort((a, b) => a - b);
  return {
    rps: latencies.length / elapsed,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    errors,
    cpuUsPerReq: (cpu.user + cpu.system) / latencies.length,
  };
}

// The statements src/service/db/orders.ts sends, with the same parameters and casts, and
// prepared under the same names as the service prepares them: an unprepared raw side would make
// PostgreSQL parse and plan every raw statement and not the API's, and the ratio would credit the
// API with database work it saves rather than measure what HTTP and the service cost.
const COLUMNS = 'id, amount::text AS amount, created_at, seq::text AS seq';
const insert = () => ({
  name: 'order_insert',
  text: `INSERT INTO orders (id, amount) VALUES ($1, $2::numeric) ON CONFLICT (id) DO NOTHING RETURNING ${COLUMNS}`,
  values: [randomUUID(), '12.50'],
});
const selectById = (ids: string[]) => () => ({
  name: 'order_get',
  text: `SELECT ${COLUMNS} FROM orders WHERE id = $1`,
  values: [ids[Math.floor(Math.random() * ids.length)]],
});

execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
const cluster = await startPostgres();
let service: ChildProcess | undefined;
let bare: ChildProcess | undefined;
const pool = new pg.Pool({ connectionString: cluster.url, max: POOL_MAX });
try {
  execFileSync(process.execPath, ['dist/service/db/migrate.js'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', DATABASE_URL: cluster.url, LOG_LEVEL: 'warn' },
    stdio: 'inherit',
  });
  const port = await freePort();
  service = await startService(cluster.url, port);
  const barePort = await freePort();
  bare = await startService(cluster.url, barePort, 'bench/bare-orders.mjs');
  if (pinned)
    execFileSync('taskset', ['-a', '-p', '-c', String(loadCpu), String(process.pid)], {
      stdio: 'ignore',
    });
  // GETs pick among orders that exist: made here, before any measurement.
  const ids = Array.from({ length: 2000 }, () => randomUUID());
  await pool.query(`INSERT INTO orders (id, amount) SELECT unnest($1::text[]), 12.50`, [ids]);
  const postgresVersion = (
    await pool.query<{ v: string }>("SELECT current_setting('server_version') AS v")
  ).rows[0]?.v;
  console.log(
    `PostgreSQL ${postgresVersion} on loopback (throwaway cluster, fsync off), pool of ${POOL_MAX} ` +
      `connections on both sides, ${connections} concurrent callers; ` +
      `${pinned ? `service on CPU ${serverCpu}, load and raw pg on CPU ${loadCpu}` : 'not pinned to CPUs (--pin to pin)'}; ` +
      `${warmup} s warm-up of each, then ${trials} trials of ${duration} s per side and operation, back to back; medians`,
  );

  const url = `http://127.0.0.1:${port}/orders`;
  const bareUrl = `http://127.0.0.1:${barePort}/orders`;
  const pid = service.pid ?? 0;
  const barePid = bare.pid ?? 0;
  const operations = [
    {
      name: 'POST /orders',
      sql: 'INSERT',
      api: (s: number) => api(url, s, { method: 'POST', ids, pid }),
      bare: (s: number) => api(bareUrl, s, { method: 'POST', ids, pid: barePid }),
      raw: (s: number) => raw(pool, s, insert),
    },
    {
      name: 'GET /orders/:id',
      sql: 'SELECT by id',
      api: (s: number) => api(url, s, { method: 'GET', ids, pid }),
      bare: (s: number) => api(bareUrl, s, { method: 'GET', ids, pid: barePid }),
      raw: (s: number) => raw(pool, s, selectById(ids)),
    },
  ];
  type Trial = Record<(typeof SIDES)[number], Run>;
  const results = new Map(operations.map((o) => [o.name, [] as Trial[]]));
  for (const op of operations) for (const side of SIDES) await op[side](warmup);
  for (let t = 0; t < trials; t++) {
    for (const op of operations) {
      // Rotate which side goes first, so none always meets the warmer database.
      const sides = SIDES.map((_, i) => SIDES[(i + t) % SIDES.length] ?? 'api');
      const trial: Partial<Trial> = {};
      for (const side of sides) trial[side] = await op[side](duration);
      results.get(op.name)?.push(trial as Trial);
    }
    process.stdout.write(`trial ${t + 1}/${trials} done\n`);
  }

  const fmt = (n: number, d = 0) => n.toFixed(d).padStart(9);
  console.log(
    '\noperation         side                       req/s   p50 ms   p99 ms  CPU µs/req   errors',
  );
  let ok = true;
  const summary: string[] = [];
  const floors: string[] = [];
  for (const op of operations) {
    const runs = results.get(op.name) ?? [];
    for (const side of SIDES) {
      const m = (f: (r: Run) => number) => median(runs.map((r) => f(r[side])));
      const label = {
        api: 'API (HTTP + pg)',
        bare: 'bare node:http + pg',
        raw: `raw pg (${op.sql})`,
      }[side];
      console.log(
        `${op.name.padEnd(17)} ${label.padEnd(24)} ${fmt(m((r) => r.rps))} ${fmt(
          m((r) => r.p50),
          1,
        )} ${fmt(
          m((r) => r.p99),
          1,
        )} ${fmt(m((r) => r.cpuUsPerReq)).padStart(11)} ${fmt(runs.reduce((n, r) => n + r[side].errors, 0))}`,
      );
    }
    const ratios = runs.map((r) => r.api.rps / r.raw.rps);
    const ratio = median(ratios);
    ok &&= ratio >= TARGET_RATIO;
    summary.push(
      `${op.name.padEnd(17)} ${ratio.toFixed(3).padStart(6)} ${ratio >= TARGET_RATIO ? 'ok ' : 'LOW'}   per trial: ${ratios.map((x) => x.toFixed(2)).join(' ')}`,
    );
    const floor = median(runs.map((r) => r.bare.rps / r.raw.rps));
    const kept = median(runs.map((r) => r.api.rps / r.bare.rps));
    floors.push(`${op.name.padEnd(17)} bare/raw ${floor.toFixed(3)}   API/bare ${kept.toFixed(3)}`);
  }
  console.log(`\nratio API/raw requests/s (median), target >= ${TARGET_RATIO}`);
  for (const line of summary) console.log(line);
  console.log(
    "\nthe floor: Node's bare HTTP server with the same queries (bare/raw is the most any Node service keeps here)",
  );
  for (const line of floors) console.log(line);
  process.exitCode = ok ? 0 : 1;
} finally {
  service?.kill('SIGTERM');
  bare?.kill('SIGTERM');
  await pool.end();
  cluster.destroy();
}
