// The Orders API's parts that need no database: money and cursor parsing, the lossless JSON body,
// escaping, and how the service behaves with no database or an unreachable one.
import express from 'express';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { JsonNumber, jsonBody } from '../../src/service/json-body.js';
import { parseAmount } from '../../src/service/money.js';
import { decodeCursor, encodeCursor } from '../../src/service/routes/orders.js';
import { escapeHtml } from '../../src/service/routes/ui.js';
import { freePort } from '../helpers/net.js';
import { sample, testApp } from './helpers.js';

describe('parseAmount', () => {
  it.each([
    ['10', '10'],
    ['10.5', '10.5'],
    ['10.50', '10.50'],
    ['0.01', '0.01'],
    ['007.25', '7.25'],
    ['999999999999999.99', '999999999999999.99'],
  ])('accepts %s as a string and as a JSON number', (text, amount) => {
    expect(parseAmount(text, ['body', 'amount'])).toEqual({ amount });
    expect(parseAmount(new JsonNumber(text), ['body', 'amount'])).toEqual({ amount });
  });

  it.each([
    ['0', 'greater_than'],
    ['0.00', 'greater_than'],
    ['-1', 'greater_than'],
    ['0.001', 'decimal_max_places'],
    ['0.30000000000000004', 'decimal_max_places'],
    ['1000000000000000', 'less_than_equal'],
    ['1e2', 'decimal_parsing'],
    ['1.', 'decimal_parsing'],
    ['.5', 'decimal_parsing'],
    [' 1', 'decimal_parsing'],
    ['1,5', 'decimal_parsing'],
    ['NaN', 'decimal_parsing'],
    ['Infinity', 'decimal_parsing'],
    ['', 'decimal_parsing'],
    ['1'.repeat(10_000), 'less_than_equal'],
  ])('rejects %s (%s)', (text, type) => {
    const result = parseAmount(text, ['body', 'amount']);
    expect(result).toMatchObject({ error: { type, loc: ['body', 'amount'] } });
  });

  it.each([[true], [null], [{}], [[]], [12.5]])('rejects %j as the wrong type', (value) => {
    expect(parseAmount(value, ['body', 'amount'])).toMatchObject({
      error: { type: 'decimal_type' },
    });
  });

  it('says a missing amount is required', () => {
    expect(parseAmount(undefined, ['body', 'amount'])).toMatchObject({
      error: { type: 'missing', msg: 'Field required' },
    });
  });
});

describe('cursors', () => {
  it('round-trip and are opaque', () => {
    const cursor = encodeCursor('12345');
    expect(cursor).not.toContain('12345');
    expect(decodeCursor(cursor)).toBe('12345');
  });

  it.each([
    '',
    'abc',
    '!!!',
    Buffer.from('o1:-1').toString('base64url'),
    Buffer.from('o1:99999999999999999999').toString('base64url'),
    'x'.repeat(100),
  ])('refuses %s', (raw) => {
    expect(decodeCursor(raw)).toBeUndefined();
  });
});

describe('jsonBody', () => {
  const app = express();
  app.post('/echo', jsonBody('16kb'), (req, res) => {
    const mark = (v: unknown): unknown =>
      v instanceof JsonNumber
        ? `#${v.text}`
        : Array.isArray(v)
          ? v.map(mark)
          : typeof v === 'object' && v !== null
            ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, mark(x)]))
            : v;
    res.json({ body: req.body, numbers: JSON.stringify(mark(req.body)) });
  });
  app.use(((err, _req, res, _next) => {
    res.status(err.status ?? 500).json({ type: err.type });
  }) as express.ErrorRequestHandler);

  it('keeps every JSON number as its exact source text', async () => {
    const text = '{"a": 0.1, "b": 999999999999999.99, "c": [1e400, -0.0, 12345678901234567890]}';
    const res = await request(app)
      .post('/echo')
      .set('content-type', 'application/json')
      .send(text)
      .expect(200);
    expect(res.body.numbers).toBe(
      '{"a":"#0.1","b":"#999999999999999.99","c":["#1e400","#-0.0","#12345678901234567890"]}',
    );
  });

  it.each([
    ['malformed', '{"a":', 400, 'entity.parse.failed'],
    ['a bare string (strict, as body-parser)', '"x"', 400, 'entity.parse.failed'],
    ['a duplicate key', '{"a":1,"a":2}', 400, 'entity.parse.failed'],
    ['nesting deep enough to exhaust the stack', '['.repeat(15_000), 400, 'entity.parse.failed'],
  ])('answers %s with its client error', async (_what, text, status, type) => {
    const res = await request(app)
      .post('/echo')
      .set('content-type', 'application/json')
      .send(text)
      .expect(status);
    expect(res.body).toEqual({ type });
  });

  it('refuses a non-UTF charset with 415, as body-parser does', async () => {
    await request(app)
      .post('/echo')
      .set('content-type', 'application/json; charset=latin1')
      .send('{}')
      .expect(415);
  });

  it('leaves other content types alone and reads an empty body as {}', async () => {
    const res = await request(app)
      .post('/echo')
      .set('content-type', 'text/plain')
      .send('{"a":1}')
      .expect(200);
    expect(res.body.body).toBeUndefined();
    const empty = await request(app)
      .post('/echo')
      .set('content-type', 'application/json')
      .set('content-length', '0')
      .expect(200);
    expect(empty.body.body).toEqual({});
  });

  it('keeps __proto__ as a plain key without touching prototypes', async () => {
    await request(app)
      .post('/echo')
      .set('content-type', 'application/json')
      .send('{"__proto__":{"polluted":1}}')
      .expect(200);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('escapeHtml', () => {
  it('escapes what could open a tag or leave an attribute', () => {
    expect(escapeHtml(`<script>alert("x") & 'y'</script>`)).toBe(
      '&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;',
    );
  });
});

describe('without DATABASE_URL', () => {
  it('answers every order route with a JSON 503 and serves the rest', async () => {
    const { app } = testApp();
    for (const res of [
      await request(app).get('/orders'),
      await request(app).get('/orders/abc'),
      await request(app).post('/orders').send({ amount: '1.00' }),
      await request(app).post('/orders').send({ nonsense: true }),
    ]) {
      expect(res.status).toBe(503);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body).toEqual({ error: 'database not configured' });
    }
    await request(app).get('/health').expect(200);
    await request(app).get('/ready').expect(200, { status: 'ready' });
    await request(app).get('/items/1').expect(200);
  });

  it('shows the page with a 503 saying so', async () => {
    const { app } = testApp();
    const res = await request(app)
      .get('/ui/orders')
      .expect(503)
      .expect('content-type', /^text\/html/);
    expect(res.text).toContain('not configured');
    await request(app).post('/ui/orders').type('form').send({ amount: '1' }).expect(503);
  });

  it('counts the order routes in the RED metrics by their templates', async () => {
    const { app } = testApp();
    await request(app).get('/orders/one');
    await request(app).get('/orders/two');
    await request(app).post('/orders').send({ amount: '1' });
    const text = (await request(app).get('/metrics')).text;
    expect(
      sample(text, 'http_requests_total', { method: 'GET', route: '/orders/:id', status: '503' }),
    ).toBe(2);
    expect(
      sample(text, 'http_requests_total', { method: 'POST', route: '/orders', status: '503' }),
    ).toBe(1);
    expect(
      sample(text, 'http_errors_total', { method: 'POST', route: '/orders', status: '503' }),
    ).toBe(1);
    expect(text).toMatch(/^db_pool_max_connections 0$/m);
  });

  it('allows only the methods each route has', async () => {
    const { app } = testApp();
    const res = await request(app).delete('/orders/x').expect(405);
    expect(res.headers.allow).toBe('GET, HEAD');
    expect((await request(app).put('/orders').expect(405)).headers.allow).toBe('GET, HEAD, POST');
  });
});

describe('with a database that cannot be reached', () => {
  const apps: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    for (const a of apps.splice(0)) await a.close();
  });

  async function unreachable(env: Record<string, string> = {}) {
    // A loopback port nobody listens on: connections are refused at once.
    const url = `postgres://berth:hunter2-secret@127.0.0.1:${await freePort()}/berth`;
    const made = testApp({ DATABASE_URL: url, DATABASE_TIMEOUT_MS: '500', ...env });
    apps.push(made);
    return made;
  }

  it('answers the order routes with 503 and Retry-After, never 500', async () => {
    const { app } = await unreachable();
    for (const res of [
      await request(app).get('/orders'),
      await request(app).get('/orders/abc'),
      await request(app).post('/orders').send({ amount: '1.00' }),
    ]) {
      expect(res.status).toBe(503);
      expect(res.body).toEqual({ error: 'database unavailable' });
      expect(res.headers['retry-after']).toBe('1');
    }
    // Input is still checked first: a bad body is a 422 whatever the database does.
    await request(app).post('/orders').send({ amount: 'ten' }).expect(422);
  });

  it('keeps /ready at 200 within the grace period and /health always', async () => {
    const { app } = await unreachable({ DATABASE_READY_GRACE_S: '30' });
    const res = await request(app).get('/ready').expect(200);
    expect(res.body).toEqual({ status: 'ready', database: 'failing', database_failing_seconds: 0 });
    await request(app).get('/health').expect(200);
  });

  it('turns /ready to 503 once the grace period is over', async () => {
    const { app } = await unreachable({ DATABASE_READY_GRACE_S: '0' });
    const res = await request(app).get('/ready').expect(503);
    expect(res.body).toMatchObject({ status: 'database_unreachable', database: 'unreachable' });
    await request(app).get('/health').expect(200);
  });

  it('never writes the password to the log', async () => {
    const { app, logLines } = await unreachable();
    await request(app).post('/orders').send({ amount: '1.00' });
    await request(app).get('/ready');
    expect(logLines.length).toBeGreaterThan(0);
    expect(JSON.stringify(logLines)).not.toContain('hunter2-secret');
    expect(JSON.stringify(logLines)).toContain('postgres://berth:***@127.0.0.1');
  });
});
