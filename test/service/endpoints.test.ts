import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { testApp } from './helpers.js';

describe('GET /', () => {
  it('welcomes with the version', async () => {
    const res = await request(testApp().app).get('/').expect(200);
    expect(res.body).toEqual({ message: 'Welcome to the Berth API', version: '1.2.3' });
  });
});

describe.each(['/health', '/healthz'])('GET %s', (path) => {
  it('reports status, version, commit and uptime', async () => {
    const res = await request(testApp().app).get(path).expect(200).expect('content-type', /json/);
    expect(res.body).toEqual({
      status: 'ok',
      version: '1.2.3',
      commit: 'abc1234',
      uptime_seconds: expect.any(Number),
    });
    expect(res.body.uptime_seconds).toBeGreaterThanOrEqual(0);
  });
});

describe('GET /ready', () => {
  it('is 200 while serving and 503 once shutdown began', async () => {
    const { app, readiness } = testApp();
    await request(app).get('/ready').expect(200, { status: 'ready' });
    readiness.ready = false;
    await request(app).get('/ready').expect(503, { status: 'shutting_down' });
    // Liveness stays green while draining: the process is healthy, just leaving.
    await request(app).get('/health').expect(200);
  });
});

describe('GET /items/:item_id', () => {
  it('echoes the id and the query', async () => {
    const { app } = testApp();
    await request(app).get('/items/5?q=somequery').expect(200, { item_id: 5, q: 'somequery' });
    await request(app).get('/items/5').expect(200, { item_id: 5, q: null });
    await request(app).get('/items/-7').expect(200, { item_id: -7, q: null });
    await request(app)
      .get(`/items/${Number.MAX_SAFE_INTEGER}`)
      .expect(200, { item_id: Number.MAX_SAFE_INTEGER, q: null });
  });

  it.each([
    ['abc', 'int_parsing'],
    ['%2B5', 'int_parsing'],
    ['5.0', 'int_parsing'],
    ['1e3', 'int_parsing'],
    ['0x10', 'int_parsing'],
    ['%20', 'int_parsing'],
    ['9007199254740992', 'int_out_of_range'],
    ['-99999999999999999999', 'int_out_of_range'],
  ])('rejects %s with a 422 naming the field (%s)', async (id, type) => {
    const res = await request(testApp().app)
      .get(`/items/${id}`)
      .expect(422)
      .expect('content-type', /json/);
    expect(res.body.detail).toHaveLength(1);
    expect(res.body.detail[0]).toMatchObject({
      loc: ['path', 'item_id'],
      type,
      msg: expect.any(String),
    });
  });

  it('rejects an empty id with a 422', async () => {
    const res = await request(testApp().app).get('/items/').expect(422);
    expect(res.body.detail[0]).toMatchObject({ loc: ['path', 'item_id'], type: 'missing' });
  });

  it('rejects a repeated q', async () => {
    const res = await request(testApp().app).get('/items/1?q=a&q=b').expect(422);
    expect(res.body.detail[0]).toMatchObject({ loc: ['query', 'q'] });
  });
});

describe('GET /work', () => {
  it('does bounded work and reports its duration', async () => {
    const res = await request(testApp().app).get('/work').expect(200);
    expect(res.body).toEqual({ status: 'ok', duration_ms: expect.any(Number) });
    expect(res.body.duration_ms).toBeGreaterThan(0);
    expect(res.body.duration_ms).toBeLessThan(1_000);
  });

  it('fails on purpose with fail=true', async () => {
    await request(testApp().app).get('/work?fail=true').expect(500, { error: 'simulated failure' });
    await request(testApp().app).get('/work?fail=false').expect(200);
  });

  it.each(['yes', '1', 'TRUE', ''])('rejects fail=%s with a 422', async (value) => {
    const res = await request(testApp().app).get(`/work?fail=${value}`).expect(422);
    expect(res.body.detail[0]).toMatchObject({ loc: ['query', 'fail'] });
  });

  it('waits delay_ms and rejects out-of-range delays', async () => {
    const res = await request(testApp().app).get('/work?delay_ms=50').expect(200);
    expect(res.body.duration_ms).toBeGreaterThanOrEqual(50);
    await request(testApp().app).get('/work?delay_ms=5001').expect(422);
    await request(testApp().app).get('/work?delay_ms=-1').expect(422);
  });
});

describe('errors', () => {
  it('answers unknown paths with a JSON 404', async () => {
    const res = await request(testApp().app)
      .get('/no/such/path')
      .expect(404)
      .expect('content-type', /json/);
    expect(res.body).toEqual({ error: 'not found', path: '/no/such/path' });
  });

  it('answers a wrong method with a JSON 405 and Allow', async () => {
    const res = await request(testApp().app).post('/health').expect(405);
    expect(res.headers.allow).toBe('GET, HEAD');
    expect(res.body).toEqual({ error: 'method not allowed', method: 'POST' });
  });

  it('answers a malformed JSON body with a 400 and no stack trace', async () => {
    const res = await request(testApp().app)
      .post('/items/1')
      .set('content-type', 'application/json')
      .send('{"broken":')
      .expect(400);
    expect(res.body).toEqual({ error: 'malformed JSON body' });
    expect(res.text).not.toMatch(/at .*\.js|SyntaxError/);
  });

  it('answers a path that cannot be percent-decoded with a 400', async () => {
    const res = await request(testApp().app).get('/items/%E0%A4%A').expect(400);
    expect(res.body).toEqual({ error: 'bad request' });
  });

  it.each([
    ['charset', 'application/json; charset=latin9', undefined, 'unsupported charset'],
    ['encoding', 'application/json', 'br2', 'unsupported content encoding'],
  ])('answers an unsupported %s with a 415', async (_what, type, encoding, error) => {
    const req = request(testApp().app).post('/items/1').set('content-type', type);
    if (encoding) req.set('content-encoding', encoding);
    const res = await req.send('{}').expect(415);
    expect(res.body).toEqual({ error });
  });

  it('answers a body over the limit with a 413', async () => {
    const res = await request(testApp().app)
      .post('/items/1')
      .set('content-type', 'application/json')
      .send(JSON.stringify({ pad: 'x'.repeat(20_000) }))
      .expect(413);
    expect(res.body).toEqual({ error: 'request body too large' });
  });
});

describe('headers', () => {
  it('sets every header helmet sets, on every answer, and hides x-powered-by', async () => {
    const { default: express } = await import('express');
    const { default: helmet } = await import('helmet');
    const reference = express()
      .use(helmet())
      .get('/', (_req, res) => void res.json({}));
    const expected = (await request(reference).get('/')).headers;
    for (const path of ['/health', '/nope', '/items/x']) {
      const got = (await request(testApp().app).get(path)).headers;
      for (const name of [
        'content-security-policy',
        'strict-transport-security',
        'x-frame-options',
        'referrer-policy',
        'cross-origin-opener-policy',
        'x-content-type-options',
        'x-dns-prefetch-control',
        'x-download-options',
        'x-permitted-cross-domain-policies',
        'x-xss-protection',
        'origin-agent-cluster',
        'cross-origin-resource-policy',
      ]) {
        expect(got[name], `${name} on ${path}`).toBe(expected[name]);
      }
    }
    const res = await request(testApp().app).get('/health');
    expect(res.headers['x-powered-by']).toBeUndefined();
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toBeDefined();
    expect(res.headers['strict-transport-security']).toBeDefined();
  });

  it('writes JSON byte for byte as res.json would, and answers HEAD with the same headers', async () => {
    const { default: express } = await import('express');
    const q = 'größe ☃ "quoted"';
    const reference = express().get('/', (_req, res) => void res.json({ item_id: 3, q }));
    const expected = await request(reference).get('/');
    const got = await request(testApp().app)
      .get(`/items/3?q=${encodeURIComponent(q)}`)
      .expect(200);
    expect(got.text).toBe(expected.text);
    expect(got.headers['content-type']).toBe(expected.headers['content-type']);
    expect(got.headers['content-length']).toBe(expected.headers['content-length']);

    const error = await request(testApp().app).get('/items/x').expect(422);
    expect(error.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(Number(error.headers['content-length'])).toBe(Buffer.byteLength(error.text));

    const head = await request(testApp().app).head('/items/3?q=x').expect(200);
    const get = await request(testApp().app).get('/items/3?q=x');
    expect(head.headers['content-length']).toBe(get.headers['content-length']);
    expect(head.headers['content-type']).toBe(get.headers['content-type']);
  });

  it('honours a sane X-Request-Id and replaces an unsafe one', async () => {
    const ok = await request(testApp().app).get('/health').set('X-Request-Id', 'req-42.a:b');
    expect(ok.headers['x-request-id']).toBe('req-42.a:b');
    const bad = await request(testApp().app)
      .get('/health')
      .set('X-Request-Id', 'evil "value" {injected}');
    expect(bad.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const none = await request(testApp().app).get('/health');
    expect(none.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('logs one JSON line per request with method, route, status, duration and request id', async () => {
    const { app, logLines } = testApp();
    await request(app).get('/items/9').set('X-Request-Id', 'trace-1');
    const line = logLines.find((l) => l.msg === 'request');
    expect(line).toMatchObject({
      method: 'GET',
      route: '/items/:item_id',
      status: 200,
      requestId: 'trace-1',
    });
    expect(line?.durationMs).toEqual(expect.any(Number));
  });
});

describe('BASE_PATH', () => {
  it('mounts every route under the prefix and nothing at the root', async () => {
    const { app } = testApp({ BASE_PATH: '/api' });
    await request(app).get('/api/health').expect(200);
    await request(app).get('/api/items/3').expect(200, { item_id: 3, q: null });
    await request(app).get('/api/metrics').expect(200);
    await request(app).get('/api').expect(200);
    await request(app).get('/health').expect(404);
  });
});

describe('errorHandler', () => {
  it('turns an unexpected exception into a generic 500 and logs the stack instead', async () => {
    const { default: express } = await import('express');
    const { pino } = await import('pino');
    const { errorHandler } = await import('../../src/service/errors.js');
    const lines: Record<string, unknown>[] = [];
    const logger = pino({}, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const app = express();
    app.get('/boom', () => {
      throw new Error('database password is hunter2');
    });
    app.use(errorHandler(logger));
    const res = await request(app).get('/boom').expect(500);
    expect(res.body).toEqual({ error: 'internal server error' });
    expect(res.text).not.toContain('hunter2');
    expect(JSON.stringify(lines)).toContain('hunter2');
  });
});
