// The load client the zero-downtime tests count failures with, against a real local HTTP server
// that closes a connection on a request without answering it, as nginx's old workers do to an
// idle keep-alive connection at a reload when a request reaches it at that instant.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { getOnce, StaleConnection, startPoller } from './poller.js';

let server: http.Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

/** A keep-alive server that drops (closes unanswered) the requests `drop` names: 1 = a connection's first. */
async function serve(drop: (nthOnConnection: number) => boolean): Promise<string> {
  const seen = new WeakMap<object, number>();
  server = http.createServer({ keepAliveTimeout: 10_000 }, (req, res) => {
    const n = (seen.get(req.socket) ?? 0) + 1;
    seen.set(req.socket, n);
    if (drop(n)) req.socket.destroy();
    else res.end(JSON.stringify({ version: '1.0.0' }));
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server?.address() as AddressInfo).port}/health`;
}

describe('the load poller', () => {
  it('counts a request dropped on a connection that had answered before as a race to send again, even when it waited in the agent queue for that connection', async () => {
    const url = await serve((n) => n === 2);
    // One socket: the second request waits in the agent's queue and is handed the socket the
    // first frees, the path where Node leaves `request.reusedSocket` false.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const [first, second] = await Promise.allSettled([
      getOnce(url, agent, {}),
      getOnce(url, agent, {}),
    ]);
    agent.destroy();
    expect(first).toMatchObject({ status: 'fulfilled', value: { status: 200 } });
    expect(second.status).toBe('rejected');
    expect((second as PromiseRejectedResult).reason).toBeInstanceOf(StaleConnection);
  });

  it('counts a request dropped on a new connection as failed, and says so', async () => {
    const url = await serve((n) => n === 1);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const failed = await getOnce(url, agent, {}).catch((err: unknown) => err);
    agent.destroy();
    expect(failed).not.toBeInstanceOf(StaleConnection);
    expect(String(failed)).toMatch(/\(new connection\)/);
  });

  it('sends a request dropped on a reused connection again on a new one: 0 failed', async () => {
    const url = await serve((n) => n % 3 === 0);
    const poller = startPoller(url, 4);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const result = await poller.stop();
    expect(result.failures).toEqual([]);
    expect(result.retriedOnStaleConnection).toBeGreaterThan(10);
    expect(result.served).toEqual(['1.0.0']);
  });

  it('fails every request a server drops on a new connection', async () => {
    const url = await serve(() => true);
    const poller = startPoller(url, 2);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const result = await poller.stop();
    expect(result.failed).toBe(result.sent);
    expect(result.failures[0]).toMatch(/socket hang up \(new connection\)/);
  });
});
