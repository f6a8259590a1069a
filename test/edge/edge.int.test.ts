// The edge's config on a real Caddy with real ACME issuance from pebble, all on loopback.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateFile } from '../../src/edge/caddy.js';
import { freePort } from '../helpers/net.js';
import {
  edgeToolsReady,
  httpGet,
  httpsGet,
  startCa,
  startEdge,
  upstream,
  waitForCertificate,
  type Ca,
  type Edge,
  type Upstream,
} from './harness.js';
import { existsSync } from 'node:fs';

const ready = edgeToolsReady();

describe.skipIf(!ready)('the edge: real Caddy, real ACME (pebble)', () => {
  let ca: Ca;
  let edge: Edge;
  let prod: Upstream, staging: Upstream, grafana: Upstream;
  let root = '';
  let httpsPort = 0,
    httpPort = 0;
  const issued: Record<string, number> = {};
  const hosts = {
    production: 'api.berth.test',
    staging: 'staging.api.berth.test',
    grafana: 'grafana.berth.test',
  };

  beforeAll(async () => {
    [prod, staging, grafana] = await Promise.all([
      upstream('prod-v1'),
      upstream('staging-v1'),
      upstream('grafana'),
    ]);
    httpPort = await freePort();
    httpsPort = await freePort();
    ca = await startCa(httpPort, httpsPort);
    const t0 = Date.now();
    edge = await startEdge(ca, { http: httpPort, https: httpsPort }, [
      { name: 'production', domain: hosts.production, upstream: `127.0.0.1:${prod.port}` },
      { name: 'staging', domain: hosts.staging, upstream: `127.0.0.1:${staging.port}` },
      { name: 'grafana', domain: hosts.grafana, upstream: `127.0.0.1:${grafana.port}` },
    ]);
    for (const host of Object.values(hosts)) {
      root = await waitForCertificate(httpsPort, host, ca);
      issued[host] = Date.now() - t0;
    }
    console.log(
      `edge: certificates for 3 hosts issued by pebble within ${Math.max(...Object.values(issued))} ms of starting Caddy`,
      issued,
    );
  });

  afterAll(async () => {
    await edge?.stop();
    await ca?.stop();
    await Promise.all([prod, staging, grafana].map((u) => u?.close()));
  });

  it("serves each host from its own upstream over HTTPS, verified against pebble's root only", async () => {
    for (const [host, up] of [
      [hosts.production, prod],
      [hosts.staging, staging],
      [hosts.grafana, grafana],
    ] as const) {
      const a = await httpsGet(httpsPort, host, root);
      expect(a.status).toBe(200);
      expect(JSON.parse(a.body)).toMatchObject({ version: up.version, host, proto: 'https' });
      expect(a.cert?.issuer.CN).toMatch(/Pebble Intermediate CA/);
    }
  });

  it('gives each host its own certificate (the SAN names that host alone)', async () => {
    const serials = new Set<string>();
    for (const host of Object.values(hosts)) {
      const a = await httpsGet(httpsPort, host, root);
      expect(a.cert?.subjectaltname).toBe(`DNS:${host}`);
      serials.add(a.cert?.serialNumber ?? '');
      expect(
        existsSync(certificateFile(edge.settings, host)),
        `certificate stored at ${certificateFile(edge.settings, host)}`,
      ).toBe(true);
    }
    expect(serials.size).toBe(3);
    // One ACME account for the edge (see startEdge): a second one would mean a stored key and
    // account URL that may not belong together.
    const accounts = ca.pebble?.log().match(/There are now (\d+) accounts in memory/g) ?? [];
    expect(accounts.at(-1)).toBe('There are now 1 accounts in memory');
  });

  it('sends HSTS and speaks TLS 1.2 or 1.3 only: a TLS 1.1 client is refused', async () => {
    const a = await httpsGet(httpsPort, hosts.production, root);
    expect(a.headers['strict-transport-security']).toBe('max-age=31536000');
    expect(['TLSv1.2', 'TLSv1.3']).toContain(a.protocol);
    expect(
      (await httpsGet(httpsPort, hosts.production, root, '/', { tls: 'TLSv1.2' })).status,
    ).toBe(200);
    // The server's own alert 70 (protocol_version), not a client-side refusal.
    await expect(
      httpsGet(httpsPort, hosts.production, root, '/', { tls: 'TLSv1.1' }),
    ).rejects.toThrow(/alert protocol version/i);
  });

  it('redirects plain HTTP to HTTPS (308, same host and path) once the host has its certificate', async () => {
    const a = await httpGet(httpPort, hosts.staging, '/items/5?q=x');
    expect(a.status).toBe(308);
    expect(a.headers.location).toBe(`https://${hosts.staging}:${httpsPort}/items/5?q=x`);
  });

  it('answers an unknown or hostile Host itself (421 over HTTPS, 404 over HTTP); no app sees it', async () => {
    const before = [prod, staging, grafana].map((u) => u.hosts.length);
    // TLS for production, Host header naming staging: Caddy's strict SNI check.
    expect(
      (await httpsGet(httpsPort, hosts.production, root, '/', { hostHeader: hosts.staging }))
        .status,
    ).toBe(421);
    expect(
      (await httpsGet(httpsPort, hosts.production, root, '/', { hostHeader: 'evil.example.com' }))
        .status,
    ).toBe(421);
    // An unknown name gets no certificate at all: the handshake fails.
    await expect(httpsGet(httpsPort, 'unknown.berth.test', root)).rejects.toThrow();
    expect((await httpGet(httpPort, 'evil.example.com')).status).toBe(404);
    expect((await httpGet(httpPort, '127.0.0.1')).status).toBe(404);
    expect([prod, staging, grafana].map((u) => u.hosts.length)).toEqual(before);
    for (const u of [prod, staging, grafana])
      expect(u.hosts.every((h) => Object.values(hosts).includes(h))).toBe(true);
  });
});
