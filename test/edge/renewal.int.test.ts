// Certificate renewal on a real Caddy against real ACME (pebble), under load: renewal is Caddy's
// own, so the test makes it come early (Caddy checks every second, and every certificate counts as
// due) and keeps clients busy across several renewals, then across renewals that fail because the
// CA has gone away. Nothing may fail either way.
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/net.js';
import {
  edgeToolsReady,
  httpsGet,
  startCa,
  startEdge,
  stopProc,
  upstream,
  waitFor,
  waitForCertificate,
  type Ca,
  type Edge,
  type Upstream,
} from './harness.js';

const ready = edgeToolsReady();

interface Load {
  stop: () => Promise<{ ok: number; failures: string[] }>;
}

/** Two clients on keep-alive connections (as browsers), trusting only pebble's root. */
function load(port: number, host: string, root: string): Load {
  let running = true;
  const agent = new https.Agent({ keepAlive: true, maxSockets: 2 });
  const result = { ok: 0, failures: [] as string[] };
  const loop = async () => {
    while (running) {
      try {
        const a = await httpsGet(port, host, root, '/', { agent });
        if (a.status === 200) result.ok += 1;
        else result.failures.push(`HTTP ${a.status}`);
      } catch (err) {
        result.failures.push((err as Error).message);
      }
    }
  };
  const loops = [loop(), loop()];
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return result;
    },
  };
}

describe.skipIf(!ready)('certificate renewal under load (real Caddy, real ACME)', () => {
  let ca: Ca;
  let edge: Edge;
  let app: Upstream;
  let root = '';
  let httpsPort = 0;
  const host = 'api.berth.test';
  /** The serial a new TLS connection is given now. */
  const serial = async () =>
    (await httpsGet(httpsPort, host, root, '/', { agent: new https.Agent({ keepAlive: false }) }))
      .cert?.serialNumber ?? '';
  const renewals = () => edge.proc.log().match(/certificate renewed successfully/g)?.length ?? 0;

  beforeAll(async () => {
    app = await upstream('v1');
    const httpPort = await freePort();
    httpsPort = await freePort();
    ca = await startCa(httpPort, httpsPort);
    edge = await startEdge(
      ca,
      { http: httpPort, https: httpsPort },
      [{ name: 'production', domain: host, upstream: `127.0.0.1:${app.port}` }],
      undefined,
      (config) => {
        const tls = (config.apps as { tls: { automation: Record<string, unknown> } }).tls;
        tls.automation.renew_interval = '1s';
        (tls.automation.policies as Record<string, unknown>[])[0]!.renewal_window_ratio = 1;
      },
    );
    root = await waitForCertificate(httpsPort, host, ca);
  });

  afterAll(async () => {
    await edge?.stop();
    await ca?.stop();
    await app?.close();
  });

  it('renews while clients keep sending requests: 0 failed, new connections get the new certificate', async () => {
    const first = await serial();
    const traffic = load(httpsPort, host, root);
    const started = Date.now();
    await waitFor('two renewals', () => Promise.resolve(renewals() >= 2), 60_000);
    const renewedIn = Date.now() - started;
    await waitFor(
      'a new certificate on a new connection',
      async () => (await serial()) !== first,
      10_000,
    );
    const result = await traffic.stop();
    console.log(
      `edge: ${renewals()} renewals in ${renewedIn} ms under load, ${result.ok} requests, ${result.failures.length} failed`,
    );
    expect(result.failures).toEqual([]);
    expect(result.ok).toBeGreaterThan(20);
  });

  it('with the CA gone at renewal: the current certificate keeps serving, 0 failed, and the log names the problem', async () => {
    const before = await serial();
    await stopProc(ca.pebble);
    const errorsBefore = edge.proc
      .log()
      .split('\n')
      .filter((l) => /"level":"error"/.test(l)).length;
    const traffic = load(httpsPort, host, root);
    await waitFor(
      'a failed renewal in the log',
      () =>
        Promise.resolve(
          edge.proc
            .log()
            .split('\n')
            .filter((l) => /"level":"error"/.test(l)).length > errorsBefore,
        ),
      60_000,
    );
    await new Promise((r) => setTimeout(r, 2000));
    const result = await traffic.stop();
    expect(result.failures).toEqual([]);
    expect(result.ok).toBeGreaterThan(10);
    expect(await serial()).toBe(before);
    const line = edge.proc
      .log()
      .split('\n')
      .filter((l) => /"level":"error"/.test(l))
      .at(-1);
    expect(line).toMatch(/renew/i);
    expect(line).toContain(host);
  });
});
