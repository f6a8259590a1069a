// docker-compose.edge.yml on the real Docker Engine (the shared test engine: every name here is
// unique to this run and removed after it), with a stand-in image from Debian's caddy. Checks
// what only a container shows: uid 1000 binds 80/443 with every capability dropped and a
// read-only root, the bootstrap config answers by itself, the admin API is reached only through
// `docker exec` (the deploy's edgeCommand, exactly), a switch moves traffic between two app
// containers by name on the shared network, and a restart resumes the switched config.
// No ACME here (the CA cannot be reached from the container on loopback): the site is served
// over plain HTTP, which is what the edge does for a host without a certificate.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildCaddyConfig,
  edgeCommand,
  loadConfig,
  readUpstream,
  switchUpstream,
  type EdgeSettings,
} from '../../src/edge/caddy.js';
import { freePort } from '../helpers/net.js';
import { requirePart } from '../helpers/real-tools.js';
import { engineEnv, exec, must } from '../image/engine.js';
import { execFileSync } from 'node:child_process';
import { httpGet, waitFor } from './harness.js';
import { EDGE_STANDIN_IMAGE, ensureEdgeImage, layOutEdge } from './edge-compose.js';

// Docker Engine with compose v2 (scripts/test-env/engine.sh writes DOCKER_HOST to .test-env/engine.env).
const ready = requirePart(
  'Docker Engine with compose v2',
  () => {
    try {
      execFileSync('docker', ['compose', 'version'], {
        env: engineEnv,
        stdio: 'ignore',
        timeout: 10_000,
      });
      execFileSync('docker', ['version', '--format', '{{.Server.Version}}'], {
        env: engineEnv,
        stdio: 'ignore',
        timeout: 10_000,
      });
      return Boolean(engineEnv.DOCKER_HOST);
    } catch {
      return false;
    }
  },
  'run `sudo bash scripts/test-env/engine.sh up` (Docker Engine 26 + compose v2 from Debian trixie)',
);
const IMAGE = EDGE_STANDIN_IMAGE;

describe.skipIf(!ready)(
  'the edge container (docker-compose.edge.yml on Docker Engine, stand-in image)',
  () => {
    const id = randomBytes(4).toString('hex');
    const project = `berth-edgetest-${id}`;
    const container = `berth-edgetest-${id}`;
    const network = `berth-edgetest-net-${id}`;
    const apps = { v1: `berth-edgetest-v1-${id}`, v2: `berth-edgetest-v2-${id}` };
    const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-edge-compose-'));
    let httpPort = 0;
    let composeArgs: string[] = [];
    const compose = (...args: string[]) => must('docker', [...composeArgs, ...args]);
    const inEdge = async (req: Parameters<typeof edgeCommand>[0]) => {
      const [cmd, ...args] = edgeCommand(req, container).argv;
      return must(cmd!, args);
    };

    beforeAll(async () => {
      await ensureEdgeImage();
      await must('docker', ['network', 'create', network]);
      for (const [version, name] of Object.entries(apps)) {
        const server = `require('http').createServer((q,s)=>s.end(JSON.stringify({version:'${version}',host:q.headers.host}))).listen(8000)`;
        await must('docker', [
          'run',
          '-d',
          '--name',
          name,
          '--network',
          network,
          '--read-only',
          '--cap-drop',
          'ALL',
          '--user',
          '1000:1000',
          IMAGE,
          'node',
          '-e',
          server,
        ]);
      }
      httpPort = await freePort();
      const httpsPort = await freePort();
      composeArgs = layOutEdge(dir, { project, network, httpPort, httpsPort, container });
      await compose('up', '-d');
      await waitFor(
        'the edge answers on its HTTP port',
        async () => (await httpGet(httpPort, 'nothing.berth.test')).status === 404,
        30_000,
      );
    }, 600_000);

    afterAll(async () => {
      if (composeArgs.length)
        await exec('docker', [...composeArgs, 'down', '-v', '--remove-orphans']);
      await exec('docker', ['rm', '-f', apps.v1, apps.v2]);
      await exec('docker', ['network', 'rm', network]);
      rmSync(dir, { recursive: true, force: true });
    });

    it('runs as uid 1000 with a read-only root and no capabilities but the bounding NET_BIND_SERVICE', async () => {
      expect(await must('docker', ['exec', container, 'id', '-u'])).toBe('1000');
      const inspect = JSON.parse(await must('docker', ['inspect', container])) as {
        HostConfig: {
          ReadonlyRootfs: boolean;
          CapDrop: string[];
          CapAdd: string[];
          PortBindings: Record<string, { HostIp: string }[]>;
        };
      }[];
      expect(inspect[0]?.HostConfig).toMatchObject({ ReadonlyRootfs: true });
      expect(
        [inspect[0]?.HostConfig.CapDrop, inspect[0]?.HostConfig.CapAdd].map((caps) =>
          caps?.map((c) => c.replace(/^CAP_/, '')),
        ),
      ).toEqual([['ALL'], ['NET_BIND_SERVICE']]);
      expect(Object.keys(inspect[0]!.HostConfig.PortBindings).sort()).toEqual([
        '443/tcp',
        '80/tcp',
      ]);
      // The process holds no effective capability: the bind to 80 came from the namespace's sysctl.
      const status = await must('docker', [
        'exec',
        container,
        'sh',
        '-c',
        'grep CapEff /proc/1/status',
      ]);
      expect(status).toMatch(/CapEff:\s+0+$/);
    });

    it('answers any Host by itself before the first deploy (bootstrap config)', async () => {
      const a = await httpGet(httpPort, 'api.berth.test');
      expect([a.status, a.body]).toEqual([404, 'unknown host\n']);
    });

    it("loads a site, switches its upstream by container name with the deploy's exact command, and resumes it after a restart", async () => {
      const settings: EdgeSettings = {
        sites: [{ name: 'production', domain: 'api.berth.test', upstream: `${apps.v1}:8000` }],
        // Nothing listens there inside the container: no certificate, so the site is served over HTTP.
        acme: { ca: 'https://127.0.0.1:9/dir' },
        storageRoot: '/data/caddy',
        admin: '127.0.0.1:2019',
        httpPort: 80,
        httpsPort: 443,
        hstsMaxAge: 31536000,
      };
      await inEdge(loadConfig(buildCaddyConfig(settings)));
      await waitFor(
        'v1 through the edge',
        async () =>
          (JSON.parse((await httpGet(httpPort, 'api.berth.test')).body) as { version?: string })
            .version === 'v1',
      );
      expect(JSON.parse((await httpGet(httpPort, 'api.berth.test')).body)).toEqual({
        version: 'v1',
        host: 'api.berth.test',
      });

      await inEdge(switchUpstream('production', `${apps.v2}:8000`));
      expect(JSON.parse((await httpGet(httpPort, 'api.berth.test')).body)).toMatchObject({
        version: 'v2',
      });
      expect(JSON.parse(await inEdge(readUpstream('production')))).toBe(`${apps.v2}:8000`);

      await must('docker', ['restart', container]);
      await waitFor(
        'the edge back after a restart',
        async () => (await httpGet(httpPort, 'api.berth.test')).status === 200,
        30_000,
      );
      expect(JSON.parse((await httpGet(httpPort, 'api.berth.test')).body)).toMatchObject({
        version: 'v2',
      });
      expect((await httpGet(httpPort, 'other.berth.test')).status).toBe(404);
    });
  },
);
