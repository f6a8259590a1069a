// remote/edge-switch.sh, the deploy's one-round-trip edge switch, against a real Caddy's admin
// API (here a process on loopback with GNU wget; on the VM it runs inside the edge container with
// busybox's, which takes the same options). It must move only the one site, only when the site
// is as the settings say, and leave everything as it was on every refusal.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { switchEdge } from '../../src/deploy/commands/edge.js';
import { EXIT } from '../../src/deploy/limits.js';
import { adminArgv, readUpstream } from '../../src/edge/caddy.js';
import { freePort } from '../helpers/net.js';
import { requireTool } from '../helpers/real-tools.js';
import {
  edgeToolsReady,
  startCa,
  startEdge,
  upstream,
  type Ca,
  type Edge,
  type Upstream,
} from './harness.js';

const ready = edgeToolsReady() && requireTool('wget', 'apt-get install wget');

describe.skipIf(!ready)('remote/edge-switch.sh against a real Caddy', () => {
  let ca: Ca;
  let edge: Edge;
  let v1: Upstream, v2: Upstream, other: Upstream;
  const lockDir = mkdtempSync(path.join(os.tmpdir(), 'berth-edge-lock-'));
  const lock = path.join(lockDir, 'lock');

  beforeAll(async () => {
    [v1, v2, other] = await Promise.all([upstream('v1'), upstream('v2'), upstream('staging')]);
    const [http, https] = [await freePort(), await freePort()];
    ca = await startCa(http, https);
    edge = await startEdge(ca, { http, https }, [
      { name: 'production', domain: 'api.berth.test', upstream: `127.0.0.1:${v1.port}` },
      { name: 'staging', domain: 'staging.berth.test', upstream: `127.0.0.1:${other.port}` },
    ]);
  });

  afterAll(async () => {
    await edge?.stop();
    await ca?.stop();
    await Promise.all([v1, v2, other].map((u) => u?.close()));
    rmSync(lockDir, { recursive: true, force: true });
  });

  /**
   * The program as switchEdge builds it, with this Caddy's admin address and a local lock. Not
   * spawnSync: the upstreams it checks answer from this very process.
   */
  function run(o: {
    domain?: string;
    grafana?: string;
    to: string;
    waitS?: number;
  }): Promise<{ code: number | null; out: string }> {
    const cmd = switchEdge({
      env: 'production',
      domain: o.domain ?? 'api.berth.test',
      grafanaDomain: o.grafana,
      upstream: o.to,
      healthPath: '/health',
    });
    const args = cmd.argv.slice(cmd.argv.indexOf('-s') + 1);
    args[0] = `127.0.0.1:${edge.adminPort}`;
    args[1] = lock;
    if (o.waitS !== undefined) args[2] = String(o.waitS);
    return new Promise((resolve) => {
      const child = spawn('sh', ['-s', ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('close', (code) => resolve({ code, out: out.trim() }));
      child.stdin.end(cmd.stdin);
    });
  }
  const dial = (name: string) => {
    const [cmd, ...args] = adminArgv(readUpstream(name), `127.0.0.1:${edge.adminPort}`);
    return JSON.parse(spawnSync(cmd ?? 'wget', args, { encoding: 'utf8' }).stdout) as string;
  };

  it('moves the one site and prints where it pointed before; the lock is released', async () => {
    expect(await run({ to: `127.0.0.1:${v2.port}` })).toEqual({
      code: EXIT.edge.ok,
      out: `"127.0.0.1:${v1.port}"`,
    });
    expect(dial('production')).toBe(`127.0.0.1:${v2.port}`);
    expect(dial('staging')).toBe(`127.0.0.1:${other.port}`);
    expect(existsSync(lock)).toBe(false);
  });

  it('asks for a whole config (3) when the site has another domain or Grafana’s site is missing, and changes nothing', async () => {
    expect((await run({ domain: 'new.berth.test', to: `127.0.0.1:${v1.port}` })).code).toBe(
      EXIT.edge.needsConfig,
    );
    expect((await run({ grafana: 'grafana.berth.test', to: `127.0.0.1:${v1.port}` })).code).toBe(
      EXIT.edge.needsConfig,
    );
    expect(dial('production')).toBe(`127.0.0.1:${v2.port}`);
    expect(existsSync(lock)).toBe(false);
  });

  it('refuses (5) an upstream the edge cannot reach, before touching anything', async () => {
    const r = await run({ to: '127.0.0.1:1' });
    expect(r).toEqual({
      code: EXIT.edge.unreachable,
      out: 'the edge cannot reach 127.0.0.1:1/health',
    });
    expect(dial('production')).toBe(`127.0.0.1:${v2.port}`);
  });

  it('waits for another deploy’s lock, then gives up (75) naming the way out, and leaves the holder’s lock', async () => {
    rmSync(lock, { recursive: true, force: true });
    spawnSync('mkdir', [lock]);
    const r = await run({ to: `127.0.0.1:${v1.port}`, waitS: 1 });
    expect(r.code).toBe(EXIT.edge.lockHeld);
    expect(r.out).toBe(
      `another deploy held the edge's lock for 1 s (if none runs: docker exec berth-edge rm -rf ${lock})`,
    );
    expect(existsSync(lock)).toBe(true);
    expect(dial('production')).toBe(`127.0.0.1:${v2.port}`);
    rmSync(lock, { recursive: true, force: true });
    expect((await run({ to: `127.0.0.1:${v1.port}` })).code).toBe(EXIT.edge.ok);
    expect(dial('production')).toBe(`127.0.0.1:${v1.port}`);
  });
});
