// Deploys of an environment with a domain (APP_DOMAIN) through the real HTTPS edge:
// docker-compose.edge.yml on the test VM's Docker Engine (stand-in image from Debian's caddy),
// container berth-edge on the shared network, exactly as init_setup.sh runs it, with its
// certificates really issued by an ACME CA on that network (pebble in a container, trusted
// through ACME_CA_ROOT as a private CA would be). The clients trust only pebble's root.
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { edgeCommand, switchUpstream } from '../../../src/edge/caddy.js';
import { freePort } from '../../helpers/net.js';
import { httpGet, httpsGet, waitFor } from '../../edge/harness.js';
import { startCaContainer, type CaContainer } from '../../edge/ca-container.js';
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
  let httpsPort = 0;
  let ca: CaContainer | undefined;
  let root = '';
  let composeArgs: string[] = [];
  const compose = (...args: string[]) => docker([...composeArgs, ...args]);
  const viaEdge = async (host = domain) => {
    const a = await httpsGet(httpsPort, host, root, '/health');
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
  const load = () =>
    startPoller(
      `https://127.0.0.1:${httpsPort}/health`,
      1,
      { host: domain },
      { servername: domain, ca: root },
    );

  beforeAll(async () => {
    releaseVm = await takeVm(env);
    await ensureEdgeImage();
    port = await freePort();
    httpsPort = await freePort();
    // As init_setup.sh runs it (container berth-edge, shared network berth), on loopback only.
    composeArgs = layOutEdge(dir, { project, network: 'berth', httpPort: port, httpsPort });
    await docker(['rm', '-f', 'berth-edge', grafana.name]).catch(() => '');
    // init_setup.sh makes the shared network before it starts the edge.
    await docker(['network', 'inspect', 'berth']).catch(() =>
      docker(['network', 'create', 'berth']),
    );
    await docker(['run', '-d', '--name', grafana.name, '--network', 'berth', images.v1]);
    await compose('up', '-d');
    await waitFor(
      'the edge answers',
      async () => (await httpGet(port, 'x.berth.test')).status === 404,
      30_000,
    );
    const edgeIp = (
      await docker([
        'inspect',
        '--format',
        '{{(index .NetworkSettings.Networks "berth").IPAddress}}',
        'berth-edge',
      ])
    ).trim();
    ca = await startCaContainer({ name: 'berth-e2e-ca', network: 'berth', answer: edgeIp });
    writeFileSync(path.join(dir, 'edge', 'trust', 'pebble.pem'), ca.listenerCert, { mode: 0o644 });
    root = await ca.root();
    // The edge's settings as init_setup.sh writes them, for a private ACME CA.
    const edgeDir = path.join(remoteDir, 'edge');
    mkdirSync(edgeDir, { recursive: true });
    writeFileSync(
      path.join(edgeDir, '.env'),
      `ACME_CA=${ca.acmeUrl}\nACME_CA_ROOT=pebble.pem\nGRAFANA_DOMAIN=${grafana.domain}\nGRAFANA_UPSTREAM=${grafana.name}:8000\n`,
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
    await ca?.stop();
    await docker(['rm', '-f', grafana.name]).catch(() => '');
    rmSync(dir, { recursive: true, force: true });
    rmSync(path.join(remoteDir, 'edge'), { recursive: true, force: true });
    releaseVm();
  });

  it('a first deploy adds the site: the domain gets its certificate and serves v1 over HTTPS, any other host gets 404 from the edge', async () => {
    const r = await deploy(env, images.v1);
    expect(r.code, explain(r)).toBe(0);
    expect(r.output).toMatch(
      new RegExp(`edge: ${domain.replace(/\./g, '\\.')} -> berth-${env}-app`),
    );
    for (const host of [domain, grafana.domain])
      await waitFor(
        `a certificate for ${host} from the CA container`,
        async () => (await viaEdge(host)).status === 200,
        30_000,
      ).catch(async (err: Error) => {
        const logs = await docker(['logs', '--tail', '30', 'berth-edge']).catch(() => '');
        throw new Error(`${err.message}; the edge's log:\n${logs}`);
      });
    const a = await httpsGet(httpsPort, domain, root, '/health');
    expect(a.cert?.subjectaltname).toBe(`DNS:${domain}`);
    expect(a.cert?.issuer.CN).toMatch(/Pebble Intermediate CA/);
    expect(await viaEdge()).toEqual({ status: 200, version: versions.v1 });
    const plain = await httpGet(port, domain, '/health');
    expect(plain.status).toBe(308);
    expect(plain.headers.location).toBe(`https://${domain}/health`);
    expect((await httpGet(port, 'production.berth.test', '/health')).status).toBe(404);
    // Grafana's site came with it (GRAFANA_DOMAIN in the edge's settings), with its own certificate.
    expect(await viaEdge(grafana.domain)).toEqual({ status: 200, version: versions.v1 });
    expect((await httpsGet(httpsPort, grafana.domain, root)).cert?.subjectaltname).toBe(
      `DNS:${grafana.domain}`,
    );
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
