// The ACME CA unreachable when the edge starts: a host that already has its certificate keeps
// serving HTTPS with it; a new host is served over plain HTTP (not redirected to a handshake that
// cannot succeed) until its certificate arrives; Caddy's log names the host and the CA.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/net.js';
import {
  edgeToolsReady,
  httpGet,
  httpsGet,
  startCa,
  startEdge,
  stopProc,
  upstream,
  waitForCertificate,
  type Ca,
  type Edge,
  type Upstream,
} from './harness.js';

const ready = edgeToolsReady();

describe.skipIf(!ready)('the edge when the ACME CA is down at start', () => {
  let ca: Ca;
  let edge: Edge | undefined;
  let app: Upstream, fresh: Upstream;
  let storage = '';
  let root = '';
  let httpPort = 0,
    httpsPort = 0;
  const known = 'api.berth.test';
  const added = 'new.berth.test';

  beforeAll(async () => {
    [app, fresh] = await Promise.all([upstream('prod'), upstream('new-env')]);
    storage = mkdtempSync(path.join(os.tmpdir(), 'berth-edge-storage-'));
    httpPort = await freePort();
    httpsPort = await freePort();
    ca = await startCa(httpPort, httpsPort);
    // First life: the known host gets its certificate into the volume (storage dir).
    const first = await startEdge(
      ca,
      { http: httpPort, https: httpsPort },
      [{ name: 'production', domain: known, upstream: `127.0.0.1:${app.port}` }],
      storage,
    );
    root = await waitForCertificate(httpsPort, known, ca);
    await first.stop();
    // The CA goes away; the edge restarts with one more host.
    await stopProc(ca.pebble);
    edge = await startEdge(
      ca,
      { http: httpPort, https: httpsPort },
      [
        { name: 'production', domain: known, upstream: `127.0.0.1:${app.port}` },
        { name: 'newenv', domain: added, upstream: `127.0.0.1:${fresh.port}` },
      ],
      storage,
    );
  });

  afterAll(async () => {
    await edge?.stop();
    await ca?.stop();
    await Promise.all([app, fresh].map((u) => u?.close()));
    rmSync(storage, { recursive: true, force: true });
  });

  it("keeps serving the existing certificate over HTTPS, and redirects that host's HTTP", async () => {
    const a = await httpsGet(httpsPort, known, root);
    expect(a.status).toBe(200);
    expect(JSON.parse(a.body)).toMatchObject({ version: 'prod' });
    expect(a.cert?.subjectaltname).toBe(`DNS:${known}`);
    expect((await httpGet(httpPort, known)).status).toBe(308);
  });

  it('serves a new host over plain HTTP while it has no certificate (no redirect to a failing handshake)', async () => {
    const a = await httpGet(httpPort, added, '/x');
    expect(a.status).toBe(200);
    expect(JSON.parse(a.body)).toMatchObject({ version: 'new-env', host: added });
    await expect(httpsGet(httpsPort, added, root)).rejects.toThrow();
  });

  it('logs one line that names the host, the CA and the cause', async () => {
    const line = () =>
      edge!.proc
        .log()
        .split('\n')
        .find(
          (l) =>
            l.includes('"level":"error"') && l.includes(added) && l.includes('connection refused'),
        );
    const deadline = Date.now() + 15_000;
    while (!line() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const found = line();
    expect(found, edge!.proc.log().slice(-3000)).toBeDefined();
    const entry = JSON.parse(found!) as Record<string, unknown>;
    const errors = edge!.proc
      .log()
      .split('\n')
      .filter((l) => l.includes('"level":"error"'));
    console.log(
      `edge: CA down, Caddy logs: ${entry.msg as string} | ${String(entry.error)} (${errors.length} error lines so far: ${errors.map((l) => (JSON.parse(l) as { msg: string }).msg).join(' / ')})`,
    );
    expect(String(entry.error)).toContain(ca.acmeUrl.replace('/dir', ''));
    // The known host, whose certificate is valid, never needed the CA.
    expect(
      edge!.proc
        .log()
        .split('\n')
        .filter((l) => l.includes('"level":"error"') && l.includes(`"${known}"`)),
    ).toEqual([]);
  });
});
