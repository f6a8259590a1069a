// The real entry point in a real process: configuration errors, signals and draining.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..', '..');
const children: ChildProcess[] = [];

afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function startServer(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/service/server.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  // Lazy, so a test that expects an early exit does not leave a rejected promise behind.
  const listening = () => new Promise<void>((resolve, reject) => {
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

function get(port: number, pathname: string, agent?: http.Agent) {
  return new Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: pathname, agent }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      })
      .on('error', reject);
  });
}

describe('server process', () => {
  it('refuses a bad configuration with exit 1 and a message naming the variable', async () => {
    const server = startServer({ PORT: 'eighty' });
    const { code } = await server.exited;
    expect(code).toBe(1);
    expect(server.output().stderr).toMatch(/PORT must be a whole number between 1 and 65535 \(got "eighty"\)/);
  });

  it.each(['SIGTERM', 'SIGINT'] as const)(
    'on %s finishes the request in flight, closes keep-alive connections and exits 0',
    async (signal) => {
      const port = await freePort();
      const server = startServer({ PORT: String(port), HOST: '127.0.0.1', SHUTDOWN_TIMEOUT_MS: '5000' });
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

  it('gives up on a request that outlives SHUTDOWN_TIMEOUT_MS and still exits in time', async () => {
    const port = await freePort();
    const server = startServer({ PORT: String(port), HOST: '127.0.0.1', SHUTDOWN_TIMEOUT_MS: '500' });
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
