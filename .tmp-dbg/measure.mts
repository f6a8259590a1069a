import { spawn } from 'node:child_process';
import autocannon from 'autocannon';
import pg from 'pg';
import { startPostgres } from '../test/helpers/postgres.ts';
import { freePort } from '../test/helpers/net.ts';
const cluster = await startPostgres();
const port = await freePort();
try {
  const { execFileSync } = await import('node:child_process');
  execFileSync('node', ['dist/service/db/migrate.js'], { env: { PATH: process.env.PATH, DATABASE_URL: cluster.url, LOG_LEVEL: 'warn' } });
  const server = spawn('node', ['dist/service/server.js'], { env: { PATH: process.env.PATH, DATABASE_URL: cluster.url, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' }, stdio: 'inherit' });
  await new Promise((r) => setTimeout(r, 1500));
  const url = `http://127.0.0.1:${port}`;
  // sequential single-request latency
  const lat: number[] = [];
  for (let i = 0; i < 300; i++) {
    const t = performance.now();
    const res = await fetch(`${url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"amount":"12.34"}` });
    await res.text();
    if (res.status !== 201) throw new Error(String(res.status));
    lat.push(performance.now() - t);
  }
  lat.sort((a, b) => a - b);
  console.log('sequential POST /orders ms p50', lat[150]!.toFixed(2), 'p99', lat[297]!.toFixed(2));
  for (const path of ['/health', '/orders?limit=1']) {
    const l: number[] = [];
    for (let i = 0; i < 300; i++) { const t = performance.now(); const r = await fetch(url + path); await r.text(); l.push(performance.now() - t); }
    l.sort((a, b) => a - b);
    console.log('sequential GET', path, 'p50', l[150]!.toFixed(2), 'p99', l[297]!.toFixed(2));
  }
  const l2: number[] = [];
  for (let i = 0; i < 300; i++) {
    const t = performance.now();
    const res = await fetch(`${url}/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"amount":"12.34"}` });
    await res.text(); l2.push(performance.now() - t);
  }
  l2.sort((a, b) => a - b);
  console.log('sequential POST /orders (warm) ms p50', l2[150]!.toFixed(2), 'p99', l2[297]!.toFixed(2));
  const run = (opts: autocannon.Options) => new Promise<autocannon.Result>((resolve, reject) => autocannon(opts, (e, r) => (e ? reject(e) : resolve(r))));
  const post0 = await run({ url: `${url}/health`, connections: 10, duration: 3 }); console.log('health c=10', post0.requests.average);
  const post = await run({ url: `${url}/orders`, method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"amount":"12.34"}', connections: 10, duration: 5 });
  console.log('POST /orders c=10', post.requests.average, 'req/s p50', post.latency.p50, 'p99', post.latency.p99, 'non2xx', post.non2xx, 'errors', post.errors);
  const id = (await (await fetch(`${url}/orders?limit=1`)).json()).orders[0].id;
  const get = await run({ url: `${url}/orders/${id}`, connections: 10, duration: 5 });
  console.log('GET /orders/:id c=10', get.requests.average, 'req/s p50', get.latency.p50, 'p99', get.latency.p99, 'non2xx', get.non2xx);
  // raw pg insert rate, same queries, pool of 10
  const pool = new pg.Pool({ connectionString: cluster.url, max: 10 });
  let n = 0; const end = Date.now() + 5000;
  await Promise.all(Array.from({ length: 10 }, async () => { while (Date.now() < end) { await pool.query('INSERT INTO orders (id, amount) VALUES ($1, $2::numeric) ON CONFLICT (id) DO NOTHING RETURNING id, amount::text AS amount, created_at, seq::text AS seq', [crypto.randomUUID(), '12.34']); n++; } }));
  console.log('raw pg INSERT c=10', (n / 5).toFixed(0), 'q/s');
  await pool.end();
  server.kill('SIGTERM');
  await new Promise((r) => server.on('exit', r));
} finally { cluster.destroy(); }
