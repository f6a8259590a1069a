import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { sample, testApp } from './helpers.js';

describe('GET /metrics', () => {
  it('serves Prometheus text with default process metrics and app_info', async () => {
    const res = await request(testApp().app).get('/metrics').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.text).toMatch(/^process_cpu_seconds_total /m);
    expect(res.text).toMatch(/^process_resident_memory_bytes /m);
    expect(res.text).toMatch(/^nodejs_eventloop_lag_seconds /m);
    expect(sample(res.text, 'app_info', { version: '1.2.3', commit: 'abc1234' })).toBe(1);
  });

  it('counts requests by method, route template and status', async () => {
    const { app } = testApp();
    await request(app).get('/items/1');
    await request(app).get('/items/2?q=x');
    await request(app).get('/items/nope');
    await request(app).get('/health');
    const text = (await request(app).get('/metrics')).text;
    expect(
      sample(text, 'http_requests_total', {
        method: 'GET',
        route: '/items/:item_id',
        status: '200',
      }),
    ).toBe(2);
    expect(
      sample(text, 'http_requests_total', {
        method: 'GET',
        route: '/items/:item_id',
        status: '422',
      }),
    ).toBe(1);
    expect(
      sample(text, 'http_requests_total', { method: 'GET', route: '/health', status: '200' }),
    ).toBe(1);
    expect(text).not.toContain('route="/items/1"');
    expect(
      sample(text, 'http_request_duration_seconds_count', {
        method: 'GET',
        route: '/items/:item_id',
        status: '200',
      }),
    ).toBe(2);
    expect(
      sample(text, 'http_request_duration_seconds_bucket', {
        le: '+Inf',
        method: 'GET',
        route: '/health',
        status: '200',
      }),
    ).toBe(1);
  });

  it('counts 5xx in http_errors_total and nothing else there', async () => {
    const { app } = testApp();
    await request(app).get('/work?fail=true');
    await request(app).get('/work?fail=true');
    await request(app).get('/work');
    await request(app).get('/items/x');
    const text = (await request(app).get('/metrics')).text;
    expect(
      sample(text, 'http_errors_total', { method: 'GET', route: '/work', status: '500' }),
    ).toBe(2);
    expect(text).not.toMatch(/^http_errors_total\{[^}]*status="(200|422)"/m);
  });

  it('labels the empty-id 422 with its own route, not as unmatched', async () => {
    const { app } = testApp();
    await request(app).get('/items/').expect(422);
    await request(app).get('/items').expect(422);
    const text = (await request(app).get('/metrics')).text;
    expect(
      sample(text, 'http_requests_total', { method: 'GET', route: '/items', status: '422' }),
    ).toBe(2);
  });

  it('counts a request the client abandoned as 499', async () => {
    const { app, logLines } = testApp();
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const { port } = server.address() as AddressInfo;
    const aborted = new AbortController();
    const pending = fetch(`http://127.0.0.1:${port}/work?delay_ms=400`, {
      signal: aborted.signal,
    }).catch(() => 'aborted');
    await new Promise((r) => setTimeout(r, 100));
    aborted.abort();
    expect(await pending).toBe('aborted');
    await new Promise((r) => setTimeout(r, 100));
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    server.close();
    server.closeAllConnections();
    expect(
      sample(text, 'http_requests_total', { method: 'GET', route: '/work', status: '499' }),
    ).toBe(1);
    expect(logLines.find((l) => l.status === 499)).toMatchObject({ route: '/work', method: 'GET' });
  });

  it('puts every unknown path under one label value', async () => {
    const { app } = testApp();
    for (let i = 0; i < 20; i++) await request(app).get(`/random-${i}/${i * 7}`);
    const text = (await request(app).get('/metrics')).text;
    expect(
      sample(text, 'http_requests_total', { method: 'GET', route: 'unmatched', status: '404' }),
    ).toBe(20);
    expect(text).not.toContain('random-');
  });

  it('does not count /metrics itself, however it is spelled', async () => {
    const { app } = testApp();
    await request(app).get('/metrics');
    await request(app).get('/metrics/');
    await request(app).get('/Metrics?x=1');
    const text = (await request(app).get('/metrics')).text;
    expect(text).not.toContain('route="/metrics"');
  });

  it('keeps the route template under BASE_PATH', async () => {
    const { app } = testApp({ BASE_PATH: '/api' });
    await request(app).get('/api/items/4');
    await request(app).get('/api/metrics');
    const text = (await request(app).get('/api/metrics')).text;
    expect(
      sample(text, 'http_requests_total', {
        method: 'GET',
        route: '/items/:item_id',
        status: '200',
      }),
    ).toBe(1);
    expect(text).not.toContain('route="/metrics"');
  });

  it('uses histogram buckets suited to a web API', async () => {
    const { app } = testApp();
    await request(app).get('/health');
    const text = (await request(app).get('/metrics')).text;
    const buckets = [
      ...text.matchAll(
        /^http_request_duration_seconds_bucket\{le="([^"]+)",[^}]*route="\/health"/gm,
      ),
    ].map((m) => m[1]);
    expect(buckets).toEqual([
      '0.005',
      '0.01',
      '0.025',
      '0.05',
      '0.1',
      '0.25',
      '0.5',
      '1',
      '2.5',
      '5',
      '10',
      '+Inf',
    ]);
  });
});
