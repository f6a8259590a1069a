// Deploys of an environment with a domain (APP_DOMAIN) through the real edge: docker-compose.edge.yml
// on the test VM's Docker Engine (stand-in image from Debian's caddy), container berth-edge on the
// shared network, exactly as init_setup.sh runs it. No ACME here (a CA on this machine's loopback
// cannot be reached from a container), so the site is served over plain HTTP, which is what the
// edge does for a host without a certificate yet; issuance and HTTPS are test/edge/*.int.test.ts.
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { edgeCommand, switchUpstream } from '../../../src/edge/caddy.js';
import { freePort } from '../../helpers/net.js';
import { httpGet, waitFor } from '../../edge/harness.js';
import { ensureEdgeImage, layOutEdge } from '../../edge/edge-compose.js';
import {
  appContainers,
  deploy,
  docker,
  explain,
  images,
  remoteDir,
  runCli,
  takeVm,
  testEnv,
  testPorts,
  uidOf,
  versions,
  vmReady,
  writeVmFile,
} from './harness.js';
import { startPoller } from './poller.js';

const env = 'staging';
const domain = 'staging.berth.test';
const vmUser = testEnv.VM_USER ?? 'berth';
// Stands in for Grafana on the shared network (any HTTP server will do: the edge only proxies).
const grafana = { domain: 'grafana.berth.test', name: 'berth-e2e-grafana' };

describe.skipIf(!vmReady)('deploys through the HTTPS edge (APP_DOMAIN set)', () => {
  let releaseVm = (): void => {};
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-e2e-edge-'));
  const project = 'berth-edge-e2e';
  let port = 0;
  let composeArgs: string[] = [];
  const compose = (...args: string[]) => docker([...composeArgs, ...args]);
  const viaEdge = async (host = domain) => {
    const a = await httpGet(port, host, '/health');
    let version: string | undefined;
    try {
      version = (JSON.parse(a.body) as { version?: string }).version;
    } catch {
      version = undefined;
    }
    return { status: a.status, version };
  };
  // One client, one request at a time: each request starts after the previous answer, so "never
  // back to v1 after the first v2" is exact (with two, an answer from a request in flight across
  // the switch can arrive after another client's first v2, which the switch allows).
  const load = () => startPoller(`http://127.0.0.1:${port}/health`, 1, { host: domain });

  beforeAll(async () => {
    releaseVm = await takeVm(env);
    await ensureEdgeImage();
    port = await freePort();
    // As init_setup.sh runs it (container berth-edge, shared network berth), on loopback only.
    composeArgs = layOutEdge(dir, { project, network: 'berth', httpPort: port });
    await docker(['rm', '-f', 'berth-edge', grafana.name]).catch(() => '');
    await docker(['run', '-d', '--name', grafana.name, '--network', 'berth', images.v1]);
    await compose('up', '-d');
    await waitFor(
      'the edge answers',
      async () => (await httpGet(port, 'x.berth.test')).status === 404,
      30_000,
    );
    // The edge's settings as init_setup.sh writes them; a CA nobody answers keeps Caddy off the internet.
    const edgeDir = path.join(remoteDir, 'edge');
    mkdirSync(edgeDir, { recursive: true });
    writeFileSync(
      path.join(edgeDir, '.env'),
      `ACME_CA=https://127.0.0.1:9/dir\nEDGE_HSTS_MAX_AGE=0\nGRAFANA_DOMAIN=${grafana.domain}\nGRAFANA_UPSTREAM=${grafana.name}:8000\n`,
    );
    const { uid, gid } = uidOf(vmUser);
    chownSync(edgeDir, uid, gid);
    writeVmFile(
      env,
      '.env',
      `APP_PORT=${testPorts[env]}\nAPP_BIND=127.0.0.1\nAPP_DOMAIN=${domain}\n`,
    );
  }, 600_000);

  afterAll(async () => {
    await compose('down', '-v', '--remove-orphans').catch(() => '');
    await docker(['rm', '-f', grafana.name]).catch(() => '');
    rmSync(dir, { recursive: true, force: true });
    rmSync(path.join(remoteDir, 'edge'), { recursive: true, force: true });
    releaseVm();
  });

  it('a first deploy adds the site: the domain serves v1 through the edge, any other host gets 404 from the edge', async () => {
    const r = await deploy(env, images.v1);
    expect(r.code, explain(r)).toBe(0);
    expect(r.output).toMatch(
      new RegExp(`edge: ${domain.replace(/\./g, '\\.')} -> berth-${env}-app`),
    );
    expect(await viaEdge()).toEqual({ status: 200, version: versions.v1 });
    expect((await httpGet(port, 'production.berth.test', '/health')).status).toBe(404);
    // Grafana's site came with it (GRAFANA_DOMAIN in the edge's settings).
    expect(await viaEdge(grafana.domain)).toEqual({ status: 200, version: versions.v1 });
    const status = await runCli(['status', '--env', env]);
    expect(status.output).toContain(`https://${domain}`);
    expect(status.output).not.toContain('plain HTTP');
  });

  it('a healthy deploy under load: 0 failed requests through the edge, and never back to v1 after the first v2', async () => {
    const poller = load();
    const r = await deploy(env, images.v2);
    const result = await poller.stop();
    expect(r.code, explain(r)).toBe(0);
    expect(result.failures).toEqual([]);
    expect(result.sent).toBeGreaterThan(20);
    expect(result.versions).toEqual([versions.v1, versions.v2]);
    expect(await appContainers(env)).toHaveLength(1);
  });

  it('a refused deploy under load: the edge keeps v2, 0 failed requests', async () => {
    const poller = load();
    const r = await deploy(env, images.unhealthy);
    const result = await poller.stop();
    expect(r.code, explain(r)).toBe(1);
    expect(result.failures).toEqual([]);
    expect(result.versions).toEqual([versions.v2]);
  });

  it('a rollback moves the edge too', async () => {
    const r = await runCli(['rollback', '--env', env, '--json']);
    expect(r.code, explain(r)).toBe(0);
    expect(await viaEdge()).toEqual({ status: 200, version: versions.v1 });
  });

  it('a run finds the edge sending the domain elsewhere and puts it back on the live container first', async () => {
    // As an interrupted run between the two switches, or a hand edit, could leave it.
    await docker(edgeCommand(switchUpstream(env, 'nowhere.invalid:8000')).argv.slice(1));
    expect((await viaEdge()).status).toBe(502);
    const r = await deploy(env, images.v2);
    expect(r.code, explain(r)).toBe(0);
    expect(r.output).toContain(
      `the edge sent ${domain} to nowhere.invalid:8000: now to berth-${env}-app`,
    );
    expect(await viaEdge()).toEqual({ status: 200, version: versions.v2 });
  });

  it('with no edge running, the deploy serves on the environment’s own port and says the domain is not served', async () => {
    await docker(['stop', 'berth-edge']);
    const r = await deploy(env, images.v1);
    expect(r.code, explain(r)).toBe(0);
    expect(r.output).toContain(`APP_DOMAIN=${domain}, but no edge runs on this VM (berth-edge)`);
    await docker(['start', 'berth-edge']);
  });
});
