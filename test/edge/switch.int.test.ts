// The deploy's future switch, on a real Caddy over real HTTPS: one environment's upstream moves
// from v1 to v2 through the admin API while clients keep sending requests. Nothing may fail, and
// once any client has seen v2, no request that starts afterwards may reach v1.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  adminArgv,
  loadConfig,
  readUpstream,
  switchUpstream,
  upsertSite,
} from '../../src/edge/caddy.js';
import { freePort } from '../helpers/net.js';
import { requireTool } from '../helpers/real-tools.js';
import {
  edgeToolsReady,
  httpsGet,
  httpsGetRetrying,
  startCa,
  startEdge,
  upstream,
  waitForCertificate,
  type Ca,
  type Edge,
  type Upstream,
} from './harness.js';

const run = promisify(execFile);
// adminArgv is what runs inside the edge container (busybox wget there; GNU wget here takes the same flags).
const ready = edgeToolsReady() && requireTool('wget', 'apt-get install wget');

interface Sample {
  client: number;
  start: number;
  end: number;
  version?: string;
  error?: string;
  retried?: boolean;
}

describe.skipIf(!ready)("switching an environment's upstream through the edge's admin API", () => {
  let ca: Ca;
  let edge: Edge;
  let v1: Upstream, v2: Upstream, other: Upstream;
  let root = '';
  let httpsPort = 0;
  const host = 'api.berth.test';

  beforeAll(async () => {
    [v1, v2, other] = await Promise.all([upstream('v1'), upstream('v2'), upstream('staging')]);
    const httpPort = await freePort();
    httpsPort = await freePort();
    ca = await startCa(httpPort, httpsPort);
    edge = await startEdge(ca, { http: httpPort, https: httpsPort }, [
      { name: 'production', domain: host, upstream: `127.0.0.1:${v1.port}` },
      { name: 'staging', domain: 'staging.berth.test', upstream: `127.0.0.1:${other.port}` },
    ]);
    root = await waitForCertificate(httpsPort, host, ca);
    await waitForCertificate(httpsPort, 'staging.berth.test', ca);
  });

  afterAll(async () => {
    await edge?.stop();
    await ca?.stop();
    await Promise.all([v1, v2, other].map((u) => u?.close()));
  });

  const admin = (req: Parameters<typeof adminArgv>[0]) => {
    const [cmd, ...args] = adminArgv(req, `127.0.0.1:${edge.adminPort}`);
    return run(cmd ?? 'wget', args);
  };

  it('refuses a switch to an unknown site and keeps the running config', async () => {
    await expect(admin(switchUpstream('nosuchenv', '127.0.0.1:1'))).rejects.toThrow();
    expect(JSON.parse((await admin(readUpstream('production'))).stdout)).toBe(
      `127.0.0.1:${v1.port}`,
    );
  });

  it('under load: 0 failed requests, in-flight requests finish on v1, and after the first v2 never v1 again', async () => {
    const clients = 16;
    const samples: Sample[] = [];
    let stop = false;
    const t0 = performance.now();
    const loop = async (client: number) => {
      const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
      while (!stop) {
        const s: Sample = { client, start: performance.now() - t0, end: 0 };
        try {
          const a = await httpsGetRetrying(httpsPort, host, root, '/', agent);
          s.retried = a.retried;
          s.version =
            a.status === 200 ? (JSON.parse(a.body) as { version: string }).version : undefined;
          if (a.status !== 200) s.error = `status ${a.status}`;
        } catch (err) {
          s.error = (err as Error).message;
        }
        s.end = performance.now() - t0;
        samples.push(s);
      }
      agent.destroy();
    };
    const load = Array.from({ length: clients }, (_, i) => loop(i));
    // A slow request that is in flight on v1 when the switch happens must still complete.
    const slow = httpsGet(httpsPort, host, root, '/?delay_ms=1500');
    await new Promise((r) => setTimeout(r, 1000));
    const switchStart = performance.now() - t0;
    await admin(switchUpstream('production', `127.0.0.1:${v2.port}`));
    const switchEnd = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 1000));
    stop = true;
    await Promise.all(load);
    const slowAnswer = await slow;

    const failed = samples.filter((s) => s.error !== undefined);
    const firstV2End = Math.min(...samples.filter((s) => s.version === 'v2').map((s) => s.end));
    const v1AfterV2 = samples.filter((s) => s.version === 'v1' && s.start > firstV2End);
    const v1AfterSwitch = samples.filter((s) => s.version === 'v1' && s.start > switchEnd);
    console.log(
      `edge switch under load: ${samples.length} requests from ${clients} keep-alive clients, ${failed.length} failed, ` +
        `switch call ${(switchEnd - switchStart).toFixed(1)} ms, v1 ${samples.filter((s) => s.version === 'v1').length} / v2 ${samples.filter((s) => s.version === 'v2').length}, ` +
        `v1 after the first v2: ${v1AfterV2.length}, retried once after an idle keep-alive close: ${samples.filter((x) => x.retried).length}`,
    );
    if (process.env.EDGE_DEBUG) {
      const buckets = new Map<number, string>();
      for (const x of samples) {
        const b = Math.floor(x.start / 50) * 50;
        buckets.set(
          b,
          (buckets.get(b) ?? '') +
            (x.error ? 'E' : x.retried ? 'R' : x.version === 'v1' ? '1' : '2'),
        );
      }
      const lines = [
        `switch ${switchStart.toFixed(0)}..${switchEnd.toFixed(0)} firstV2End ${firstV2End.toFixed(0)}`,
      ];
      for (const [b, str] of [...buckets].sort((x, y) => x[0] - y[0]))
        if (b > switchStart - 200) lines.push(`${b} ${str}`);
      writeFileSync(process.env.EDGE_DEBUG, lines.join('\n') + '\n' + edge.proc.log());
    }
    expect(failed).toEqual([]);
    expect(samples.length).toBeGreaterThan(200);
    expect(v1AfterV2).toEqual([]);
    expect(v1AfterSwitch).toEqual([]);
    for (let c = 0; c < clients; c++) {
      const order = samples.filter((s) => s.client === c).map((s) => s.version);
      expect(order.lastIndexOf('v1')).toBeLessThan(order.indexOf('v2'));
    }
    expect(slowAnswer.status).toBe(200);
    expect(JSON.parse(slowAnswer.body)).toMatchObject({ version: 'v1', delayed: 1500 });
    expect(switchEnd - switchStart).toBeLessThan(1000);
    // The other environment was not touched.
    expect(JSON.parse((await admin(readUpstream('staging'))).stdout)).toBe(
      `127.0.0.1:${other.port}`,
    );
    expect(JSON.parse((await httpsGet(httpsPort, 'staging.berth.test', root)).body)).toMatchObject({
      version: 'staging',
    });
  });

  it("adds a new environment's site at run time with one /load (upsertSite): it gets its own certificate", async () => {
    const current = JSON.parse((await admin({ method: 'GET', path: '/config/' })).stdout) as Record<
      string,
      unknown
    >;
    const next = upsertSite(current, edge.settings, {
      name: 'testing',
      domain: 'testing.berth.test',
      upstream: `127.0.0.1:${other.port}`,
    });
    await admin(loadConfig(next));
    const rootNow = await waitForCertificate(httpsPort, 'testing.berth.test', ca).catch(
      (err: Error) => {
        throw new Error(
          `${err.message}; Caddy's log about it:\n${edge.proc
            .log()
            .split('\n')
            .filter((l) => l.includes('testing.berth.test') || l.includes('"error"'))
            .join('\n')}`,
        );
      },
    );
    const a = await httpsGet(httpsPort, 'testing.berth.test', rootNow);
    expect(a.status).toBe(200);
    expect(a.cert?.subjectaltname).toBe('DNS:testing.berth.test');
    // The switched production upstream survived the reload.
    expect(JSON.parse((await httpsGet(httpsPort, host, rootNow)).body)).toMatchObject({
      version: 'v2',
    });
  });
});
