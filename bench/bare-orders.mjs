// The floor for bench:orders: the same two queries behind Node's own HTTP server, with nothing
// else (no Express, no validation, no logging, no metrics). What any Node service pays for HTTP
// alone; the Orders API can only be slower. Not a service: no error handling beyond a 500.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import pg from 'pg';

const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.DATABASE_POOL_MAX ?? 10),
});
const COLUMNS = 'id, amount::text AS amount, created_at, seq::text AS seq';

const send = (res, status, body) => {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
};

const server = http.createServer((req, res) => {
  const fail = () => send(res, 500, { error: 'failed' });
  if (req.method === 'GET' && req.url === '/ready') return send(res, 200, { database: 'ok' });
  if (req.method === 'GET' && req.url?.startsWith('/orders/')) {
    pool
      .query({
        name: 'order_get',
        text: `SELECT ${COLUMNS} FROM orders WHERE id = $1`,
        values: [req.url.slice(8)],
      })
      .then(
        (r) => (r.rows[0] ? send(res, 200, r.rows[0]) : send(res, 404, { error: 'not found' })),
        fail,
      );
    return;
  }
  if (req.method === 'POST' && req.url === '/orders') {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const { amount } = JSON.parse(body);
      pool
        .query({
          name: 'order_insert',
          text: `INSERT INTO orders (id, amount) VALUES ($1, $2::numeric) ON CONFLICT (id) DO NOTHING RETURNING ${COLUMNS}`,
          values: [randomUUID(), amount],
        })
        .then((r) => send(res, 201, r.rows[0]), fail);
    });
    return;
  }
  send(res, 404, { error: 'not found' });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => pool.end().then(() => process.exit(0))));
