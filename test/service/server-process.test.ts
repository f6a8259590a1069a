// The real entry point in a real process: configuration errors, signals and draining.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/net.js';

const root = path.resolve(import.meta.dirname, '..', '..');
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

// Every service variable is passed, empty meaning "default", so a developer's own .env (which
// dotenv never lets override a variable that is present) cannot change what these tests see.
const SERVICE_VARS = [
  'PORT',
  'HOST',
  'LOG_LEVEL',
  'BASE_PATH',
  'APP_VERSION',
  'GIT_COMMIT',
  'SHUTDOWN_TIMEOUT_MS',
  'SHUTDOWN_DELAY_MS',
  'DATABASE_URL',
  'DATABASE_POOL_MAX',
  'DATABASE_TIMEOUT_MS',
  'DATABASE_READY_GRACE_S',
];
const tsxLoader = path.join(root, 'node_modules', 'tsx', 'dist', 'loader.mjs');
const serverEntry = path.join(root, 'src', 'service', 'server.ts');

function startServer(env: Record<string, string>, cwd = root, nodeArgs: string[] = []) {
  const child = spawn(
    process.execPath,
    [...nodeArgs, '--import', pathToFileURL(tsxLoader).href, serverEntry],
    {
      cwd,
      env: {
        PATH: process.env.PATH ?? '',
        ...Object.fromEntries(SERVICE_VARS.map((name) => [name, ''])),
        SHUTDOWN_DELAY_MS: '0',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>(
    (resolve) => child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  // Lazy, so a test that expects an early exit does not leave a rejected promise behind.
  const listening = () =>
    new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (stdout.includes('"msg":"listening"')) {
          clearInterval(timer);
          resolve();
        } else if (child.exitCode !== null) {
          clearInterval(timer);
          reject(new Error(`server exited early: ${stderr}`));
        }
      }, 25);
    });
  return { child, exited, listening, output: () => ({ stdout, stderr }) };
}

function get(
  port: number,
  pathname: string,
  agent?: http.Agent,
  headers: Record<string, string> = {},
) {
  return new Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }>(
    (resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: pathname, agent, headers }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
        })
        .on('error', reject);
    },
  );
}

describe('server process', () => {
  it('refuses a bad configuration with exit 1 and a message naming the variable', async () => {
    const server = startServer({ PORT: 'eighty' });
    const { code } = await server.exited;
    expect(code).toBe(1);
    expect(server.output().stderr).toMatch(
      /PORT must be a whole number between 1 and 65535 \(got "eighty"\)/,
    );
  });

  it.each(['SIGTERM', 'SIGINT'] as const)(
    'on %s finishes the request in flight, closes keep-alive connections and exits 0',
    async (signal) => {
      const port = await freePort();
      const server = startServer({
        PORT: String(port),
        HOST: '127.0.0.1',
        SHUTDOWN_TIMEOUT_MS: '5000',
      });
      await server.listening();

      // An idle keep-alive connection must not hold the process open.
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      expect((await get(port, '/health', agent)).status).toBe(200);

      const inFlight = get(port, '/work?delay_ms=1500');
      await new Promise((r) => setTimeout(r, 300));
      const signalledAt = Date.now();
      server.child.kill(signal);

      const response = await inFlight;
      expect(response.status).toBe(200);
      expect(JSON.parse(response.body).status).toBe('ok');
      expect(response.headers.connection).toBe('close');

      const { code, at } = await server.exited;
      expect(code).toBe(0);
      expect(at - signalledAt).toBeLessThan(5_000);
      expect(server.output().stdout).toContain('shutting down');
      agent.destroy();
      await expect(get(port, '/health')).rejects.toThrow(/ECONNREFUSED/);
    },
  );

  it('keeps serving with /ready at 503 for SHUTDOWN_DELAY_MS after SIGTERM, then stops', async () => {
    const port = await freePort();
    const server = startServer({
      PORT: String(port),
      HOST: '127.0.0.1',
      SHUTDOWN_TIMEOUT_MS: '5000',
      SHUTDOWN_DELAY_MS: '1500',
    });
    await server.listening();
    expect((await get(port, '/ready')).status).toBe(200);
    const signalledAt = Date.now();
    server.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));

    // A new connection, as a load balancer's probe makes: answered, and told to go away.
    const ready = await get(port, '/ready');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body)).toEqual({ status: 'shutting_down' });
    expect(ready.headers.connection).toBe('close');
    for (let i = 0; i < 20; i++)
      expect(
        (await get(port, '/items/1', undefined, { 'X-Request-Id': `drain-${i}` })).status,
      ).toBe(200);

    const { code, at } = await server.exited;
    expect(code).toBe(0);
    expect(at - signalledAt).toBeGreaterThanOrEqual(1_500);
    expect(at - signalledAt).toBeLessThan(5_000);
    // Nothing the process logged is lost at exit: an access line for every request answered
    // while draining, and the last line says it stopped. ('exit' can come before the pipe's end.)
    const out = server.child.stdout;
    if (out !== null && !out.readableEnded) await new Promise((r) => out.once('end', r));
    const lines = server
      .output()
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg?: string; requestId?: string });
    for (let i = 0; i < 20; i++)
      expect(lines.filter((l) => l.requestId === `drain-${i}`)).toHaveLength(1);
    expect(lines.at(-1)).toMatchObject({ msg: 'stopped' });
  });

  it("writes a request's log line at once, not when a later line pushes it out", async () => {
    const port = await freePort();
    const server = startServer({ PORT: String(port), HOST: '127.0.0.1' });
    await server.listening();
    const answered = await get(port, '/items/7', undefined, { 'X-Request-Id': 'flush-check' });
    expect(answered.status).toBe(200);
    const answeredAt = Date.now();
    const line = () =>
      server
        .output()
        .stdout.split('\n')
        .find((l) => l.includes('"requestId":"flush-check"'));
    while (line() === undefined && Date.now() - answeredAt < 5_000)
      await new Promise((r) => setTimeout(r, 25));
    expect(Date.now() - answeredAt).toBeLessThan(1_000);
    const entry = JSON.parse(line() ?? '{}') as { time?: string };
    expect(entry).toMatchObject({ msg: 'request', route: '/items/:item_id', status: 200 });
    expect(entry.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(Math.abs(Date.parse(entry.time ?? '') - answeredAt)).toBeLessThan(1_000);
  });

  it('logs an uncaught error as a fatal JSON line after the lines before it, and exits 1', async () => {
    const port = await freePort();
    // A fault the service itself cannot be asked for: a throw from a signal handler is uncaught.
    const fault = `data:text/javascript,process.on('SIGUSR2', () => { throw new Error('injected fault'); });`;
    const server = startServer({ PORT: String(port), HOST: '127.0.0.1' }, root, [
      '--import',
      fault,
    ]);
    await server.listening();
    expect((await get(port, '/health', undefined, { 'X-Request-Id': 'before-crash' })).status).toBe(
      200,
    );
    // The access line is written once the answer has left, which on a busy machine can be after
    // the client has it: crash only once it is out, so "the lines before it" are really before.
    for (let i = 0; i < 100 && !server.output().stdout.includes('before-crash'); i++)
      await new Promise((r) => setTimeout(r, 50));
    server.child.kill('SIGUSR2');
    const { code } = await server.exited;
    expect(code).toBe(1);
    const lines = server
      .output()
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.some((l) => l.requestId === 'before-crash')).toBe(true);
    expect(lines.at(-1)).toMatchObject({
      level: 60,
      msg: 'crashed: uncaught error',
      err: { message: 'injected fault' },
    });
  });

  it('reads .env from its working directory', async () => {
    const port = await freePort();
    const dir = mkdtempSync(path.join(tmpdir(), 'berth-dotenv-'));
    writeFileSync(path.join(dir, '.env'), `PORT=${port}\nAPP_VERSION=from-dotenv\n`);
    const {
      PORT: _port,
      APP_VERSION: _version,
      ...rest
    } = Object.fromEntries(SERVICE_VARS.map((n) => [n, '']));
    const server = spawn(
      process.execPath,
      ['--import', pathToFileURL(tsxLoader).href, serverEntry],
      {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '', ...rest, HOST: '127.0.0.1', SHUTDOWN_DELAY_MS: '0' },
        stdio: 'ignore',
      },
    );
    children.push(server);
    let health: { status: number; body: string } | undefined;
    for (let i = 0; i < 100 && health === undefined; i++) {
      health = await get(port, '/health').catch(() => undefined);
      if (health === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(health?.status).toBe(200);
    expect(JSON.parse(health?.body ?? '{}').version).toBe('from-dotenv');
  });

  it('gives up on a request that outlives SHUTDOWN_TIMEOUT_MS and still exits in time', async () => {
    const port = await freePort();
    const server = startServer({
      PORT: String(port),
      HOST: '127.0.0.1',
      SHUTDOWN_TIMEOUT_MS: '500',
    });
    await server.listening();
    const slow = get(port, '/work?delay_ms=5000').catch((err: Error) => err);
    await new Promise((r) => setTimeout(r, 200));
    const signalledAt = Date.now();
    server.child.kill('SIGTERM');
    const { code, at } = await server.exited;
    expect(code).toBe(0);
    expect(at - signalledAt).toBeLessThan(1_500);
    expect(await slow).toBeInstanceOf(Error);
  });
});
