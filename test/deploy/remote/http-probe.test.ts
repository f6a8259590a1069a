// remote/http-probe.sh as the proxy side runs it: a real sh and a real wget (the machine's; on the
// VM it is busybox's in the proxy image, which the deploy e2e tests use) against a real HTTP
// server that answers as told. The final lines are the contract src/deploy/health.ts reads.
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { program } from '../../../src/deploy/remote/programs.js';
import { requireTool } from '../../helpers/real-tools.js';

const hasWget = requireTool('wget', 'apt-get install wget');

/** Status codes the server answers with, in order; the last one repeats. */
let answers: number[] = [];
let seen: { url: string; id: string | undefined; at: number }[] = [];
let server: Server;
let base = '';

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({
      url: req.url ?? '',
      id: req.headers['x-request-id'] as string | undefined,
      at: performance.now(),
    });
    const status = answers.length > 1 ? (answers.shift() ?? 200) : (answers[0] ?? 200);
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(status === 204 ? undefined : JSON.stringify({ status, version: '9.9.9' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => {
  answers = [200];
  seen = [];
});

/** `sh -s ARGS` with the program on stdin, as proxy.sh hands it over; async, so the server answers. */
function probe(args: string[], env: NodeJS.ProcessEnv = process.env) {
  return new Promise<{ code: number | null; stdout: string; stderr: string; ms: number }>(
    (resolve) => {
      const started = Date.now();
      const child = spawn('/bin/sh', ['-s', ...args], { env });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started }));
      child.stdin.end(program('http-probe.sh'));
    },
  );
}

describe.skipIf(!hasWget)('the HTTP probe in a real shell', () => {
  it('health: passes after NEED 2xx answers in a row; a failure in between starts the count again', async () => {
    answers = [500, 200, 503, 200, 200];
    const r = await probe(['health', `${base}/health`, '10', '0.1', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('healthy: 2 answers in a row, last HTTP 200\n');
    expect(seen.map((s) => s.url)).toEqual(Array(5).fill('/health'));
  });

  it('health: asks every FIRST_S until the first 2xx, then INTERVAL_S apart', async () => {
    answers = [503, 503, 503, 200, 200];
    const r = await probe(['health', `${base}/health`, '20', '2', '2', '0.1']);
    expect(r.code, r.stderr).toBe(0);
    expect(seen).toHaveLength(5);
    // Three 503s and the first 200 FIRST_S apart, then INTERVAL_S before the second 200: the
    // pause before the last request is the long one (compared, as a busy machine stretches all).
    const gaps = seen.slice(1).map((s, i) => s.at - seen[i]!.at);
    expect(gaps.at(-1)).toBeGreaterThanOrEqual(1900);
    for (const gap of gaps.slice(0, -1)) expect(gap).toBeLessThan(gaps.at(-1)! / 2);
  });

  it('health: not in time says what the app last answered, after the timeout and not much later', async () => {
    answers = [500];
    const r = await probe(['health', `${base}/health`, '2', '0.2', '3']);
    expect(r.code).toBe(1);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('unhealthy: last answer HTTP 500');
    expect(r.ms).toBeGreaterThanOrEqual(2000);
    expect(r.ms).toBeLessThan(6000);
    expect(seen.length).toBeGreaterThanOrEqual(2);
  });

  it('health: nothing listening is not an answer', async () => {
    const r = await probe(['health', 'http://127.0.0.1:9/health', '1', '0.2', '1']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^unhealthy: last answer (?!HTTP)\S/m);
  });

  it('get: the status, then the body; the request id reaches the app', async () => {
    const r = await probe(['get', `${base}/health`, 'berth-check-1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('200 {"status":200,"version":"9.9.9"}\n');
    expect(seen.map(({ url, id }) => ({ url, id }))).toEqual([
      { url: '/health', id: 'berth-check-1' },
    ]);
    answers = [204];
    expect((await probe(['get', `${base}/health`])).stdout).toBe('204 \n');
    answers = [500];
    expect((await probe(['get', `${base}/health`])).stdout).toMatch(/^500 /);
  });

  it('get: no answer prints 0 and exits 1', async () => {
    const r = await probe(['get', 'http://127.0.0.1:9/']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^0 \S/);
  });

  it('says in one line that the image it runs in has no wget (exit 127)', async () => {
    const r = await probe(['health', `${base}/health`, '1', '1', '1'], { PATH: '/nonexistent' });
    expect(r.code).toBe(127);
    expect(r.stderr).toBe('http-probe: no wget in the proxy image\n');
  });
});
