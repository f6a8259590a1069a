// remote/edge-switch.sh, the deploy's one-round-trip edge switch, against a real Caddy's admin
// API (a process on loopback), run twice: by dash, and by busybox's sh, the shell that runs it
// on the VM (inside caddy:alpine); GNU wget both times (see busyboxPath). It must move only the
// one site, only when the site is as the settings say, leave everything as it was on every
// refusal, and say the truth when the admin API fails under it (a proxy in front of Caddy
// injects that).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import http from 'node:http';
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

const ready =
  edgeToolsReady() &&
  requireTool('wget', 'apt-get install wget') &&
  requireTool('busybox', 'apt-get install busybox');

/**
 * A directory of busybox's applets (sh, mkdir, sleep...), the only PATH of the busybox run, with
 * GNU wget in place of busybox's: Debian's busybox wget crashes (exit 139) on any request, where
 * alpine's works. The program's wget options (-q -T -O --header --post-data) are busybox's too.
 */
function busyboxPath(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-busybox-'));
  const r = spawnSync('busybox', ['--install', '-s', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`busybox --install: ${r.stderr}`);
  rmSync(path.join(dir, 'wget'));
  symlinkSync(
    spawnSync('sh', ['-c', 'command -v wget'], { encoding: 'utf8' }).stdout.trim(),
    path.join(dir, 'wget'),
  );
  return dir;
}

const applets = ready ? busyboxPath() : '';
const shells = ready
  ? [
      { shell: 'dash', sh: 'sh', env: process.env },
      { shell: "busybox's sh", sh: path.join(applets, 'sh'), env: { PATH: applets } },
    ]
  : [];

type Plan = (post: number) => 'forward' | 'refuse' | 'forward, then fail';

/**
 * Caddy's admin API behind a proxy that fails POSTs as `plan` says (by their number): refused
 * without reaching Caddy, or applied by Caddy and answered with a 500 all the same.
 */
async function faultyAdmin(adminPort: number, plan: Plan) {
  let posts = 0;
  const server = http.createServer((req, res) => {
    const step = req.method === 'POST' ? plan(++posts) : 'forward';
    if (step === 'refuse') {
      req.resume();
      res.writeHead(503).end('injected');
      return;
    }
    const up = http.request(
      {
        host: '127.0.0.1',
        port: adminPort,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: `127.0.0.1:${adminPort}` },
      },
      (answer) => {
        if (step === 'forward, then fail') {
          answer.resume();
          res.writeHead(500).end('injected after Caddy applied it');
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    req.pipe(up);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe.skipIf(!ready).each(shells)(
  'remote/edge-switch.sh against a real Caddy ($shell)',
  ({ sh, env }) => {
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
      adminPort?: number;
    }): Promise<{ code: number | null; out: string }> {
      const cmd = switchEdge({
        env: 'production',
        domain: o.domain ?? 'api.berth.test',
        grafanaDomain: o.grafana,
        upstream: o.to,
        healthPath: '/health',
      });
      const args = cmd.argv.slice(cmd.argv.indexOf('-s') + 1);
      args[0] = `127.0.0.1:${o.adminPort ?? edge.adminPort}`;
      args[1] = lock;
      if (o.waitS !== undefined) args[2] = String(o.waitS);
      return new Promise((resolve, reject) => {
        const child = spawn(sh, ['-s', ...args], { env, stdio: ['pipe', 'pipe', 'inherit'] });
        child.on('error', reject);
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

    it('a switch the admin API refuses: the old upstream is put back, checked, and said (6)', async () => {
      expect((await run({ to: `127.0.0.1:${v1.port}` })).code).toBe(EXIT.edge.ok);
      const admin = await faultyAdmin(edge.adminPort, (n) => (n === 1 ? 'refuse' : 'forward'));
      try {
        expect(await run({ to: `127.0.0.1:${v2.port}`, adminPort: admin.port })).toEqual({
          code: EXIT.edge.notSwitched,
          out: `the edge sends api.berth.test to "127.0.0.1:${v1.port}" after the switch, not to 127.0.0.1:${v2.port}`,
        });
      } finally {
        await admin.close();
      }
      expect(dial('production')).toBe(`127.0.0.1:${v1.port}`);
      expect(existsSync(lock)).toBe(false);
    });

    it('neither the switch nor the way back confirmed: says where the edge really sends the domain (7)', async () => {
      // Caddy applies the switch but its answer is lost; every later change is refused.
      const admin = await faultyAdmin(edge.adminPort, (n) =>
        n === 1 ? 'forward, then fail' : 'refuse',
      );
      try {
        expect(await run({ to: `127.0.0.1:${v2.port}`, adminPort: admin.port })).toEqual({
          code: EXIT.edge.stuck,
          out: `the edge did not take the switch to 127.0.0.1:${v2.port}, nor the way back to "127.0.0.1:${v1.port}": it sends api.berth.test to "127.0.0.1:${v2.port}"`,
        });
      } finally {
        await admin.close();
      }
      expect(dial('production')).toBe(`127.0.0.1:${v2.port}`);
      expect(existsSync(lock)).toBe(false);
    });
  },
);
