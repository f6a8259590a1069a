// The image's HEALTHCHECK script against real local HTTP servers: 200 is healthy; anything else,
// a refused connection or silence is not.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { healthUrl, probe } from '../../src/service/healthcheck.js';

describe('healthUrl', () => {
  it.each([
    [{}, 'http://127.0.0.1:8000/health'],
    [{ PORT: '9000', HOST: '0.0.0.0' }, 'http://127.0.0.1:9000/health'],
    [{ HOST: '::', BASE_PATH: '/api' }, 'http://127.0.0.1:8000/api/health'],
    [{ HOST: '10.0.0.5', PORT: '8080' }, 'http://10.0.0.5:8080/health'],
    [{ HOST: '::1' }, 'http://[::1]:8000/health'],
    [{ PORT: '' }, 'http://127.0.0.1:8000/health'],
  ])('%j -> %s', (env, url) => {
    expect(healthUrl(env)).toBe(url);
  });
});

describe('probe', () => {
  let server: http.Server | undefined;
  afterEach(
    () => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())),
  );

  const serve = (handler: http.RequestListener): Promise<string> =>
    new Promise((resolve) => {
      server = http.createServer(handler).listen(0, '127.0.0.1', () => {
        resolve(`http://127.0.0.1:${(server!.address() as AddressInfo).port}/health`);
      });
    });

  it('is healthy on 200', async () => {
    const url = await serve((_req, res) => res.end('{"status":"ok"}'));
    expect(await probe(url)).toEqual({ ok: true, message: `${url} -> 200` });
  });

  it('is unhealthy on 503', async () => {
    const url = await serve((_req, res) => {
      res.statusCode = 503;
      res.end();
    });
    expect(await probe(url)).toEqual({ ok: false, message: `${url} -> 503` });
  });

  it('is unhealthy when nothing listens', async () => {
    const url = await serve(() => undefined);
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
    const result = await probe(url);
    expect(result.ok).toBe(false);
    expect(result.message).toContain('ECONNREFUSED');
  });

  it('is unhealthy when the service does not answer in time', async () => {
    const url = await serve(() => undefined); // accepts, never responds
    const result = await probe(url, 200);
    expect(result).toEqual({ ok: false, message: `${url} -> no answer within 200 ms` });
    server!.closeAllConnections();
  });
});
