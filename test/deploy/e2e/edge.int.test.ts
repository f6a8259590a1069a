// Deploys of an environment with a domain (APP_DOMAIN) through the real HTTPS edge:
// docker-compose.edge.yml on the test VM's Docker Engine (stand-in image from Debian's caddy),
// container berth-edge on the shared network, exactly as init_setup.sh runs it, with its
// certificates really issued by an ACME CA on that network (pebble in a container, trusted
// through ACME_CA_ROOT as a private CA would be). The clients trust only pebble's root.
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { edgeCommand, readIssuer, switchUpstream } from '../../../src/edge/caddy.js';
import { httpGet } from '../../edge/harness.js';
import {
  appContainers,
  deploy,
  docker,
  explain,
  images,
  remoteDir,
  runCli,
  takeVm,
  testPorts,
  versions,
  vmReady,
  writeVmFile,
} from './harness.js';
import { startPoller } from './poller.js';
import { startVmEdge, type VmEdge } from './vm-edge.js';

const env = 'staging';
const domain = 'staging.berth.test';
// Stands in for Grafana on the shared network (any HTTP server will do: the edge only proxies).
const grafana = { domain: 'grafana.berth.test', name: 'berth-e2e-grafana' };

describe.skipIf(!vmReady)('deploys through the HTTPS edge (APP_DOMAIN set)', () => {
  let releaseVm = (): void => {};
  let edge: VmEdge | undefined;
  const viaEdge = async (host = domain) => {
    const a = await edge!.get(host);
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
      `https://127.0.0.1:${edge!.httpsPort}/health`,
      1,
      { host: domain },
      { servername: domain, ca: edge!.root },
    );

  beforeAll(async () => {
    releaseVm = await takeVm(env);
    edge = await startVmEdge(grafana);
    writeVmFile(
      env,
      '.env',
      `APP_PORT=${testPorts[env]}\nAPP_BIND=127.0.0.1\nAPP_DOMAIN=${domain}\n`,
    );
  }, 600_000);

  afterAll(async () => {
    await edge?.stop();
    releaseVm();
  });

  it('a first deploy adds the site: the domain gets its certificate and serves v1 over HTTPS, any other host gets 404 from the edge', async () => {
    const r = await deploy(env, images.v1);
    expect(r.code, explain(r)).toBe(0);
    expect(r.output).toMatch(
      new RegExp(`edge: ${domain.replace(/\./g, '\\.')} -> berth-${env}-app`),
    );
    for (const host of [domain, grafana.domain]) await edge!.waitForCertificate(host);
    const a = await edge!.get(domain);
    expect(a.cert?.subjectaltname).toBe(`DNS:${domain}`);
    expect(a.cert?.issuer.CN).toMatch(/Pebble Intermediate CA/);
    expect(await viaEdge()).toEqual({ status: 200, version: versions.v1 });
    const plain = await httpGet(edge!.httpPort, domain, '/health');
    expect(plain.status).toBe(308);
    expect(plain.headers.location).toBe(`https://${domain}/health`);
    expect((await httpGet(edge!.httpPort, 'production.berth.test', '/health')).status).toBe(404);
    // Grafana's site came with it (GRAFANA_DOMAIN in the edge's settings), with its own certificate.
    expect(await viaEdge(grafana.domain)).toEqual({ status: 200, version: versions.v1 });
    expect((await edge!.get(grafana.domain)).cert?.subjectaltname).toBe(`DNS:${grafana.domain}`);
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
    expect(result.served).toEqual([versions.v1, versions.v2]);
    expect(result.oldAfterNew).toBe(0);
    expect(await appContainers(env)).toHaveLength(1);
  });

  it('a refused deploy under load: the edge keeps v2, 0 failed requests', async () => {
    const poller = load();
    const r = await deploy(env, images.unhealthy);
    const result = await poller.stop();
    expect(r.code, explain(r)).toBe(1);
    expect(result.failures).toEqual([]);
    expect(result.served).toEqual([versions.v2]);
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

  it("a contact set in the edge's settings since goes into its running config with the next deploy; the certificate stays", async () => {
    const before = (await edge!.get(domain)).cert?.fingerprint256;
    appendFileSync(path.join(remoteDir, 'edge', '.env'), 'ACME_EMAIL=ops@berth.test\n');
    const r = await deploy(env, images.v1);
    expect(r.code, explain(r)).toBe(0);
    expect(r.output).toContain("the edge's certificate issuer now follows its settings");
    const issuer = JSON.parse(await docker(edgeCommand(readIssuer()).argv.slice(1))) as {
      email?: string;
      ca?: string;
    };
    expect(issuer.email).toBe('ops@berth.test');
    expect(issuer.ca).toMatch(/^https:\/\//);
    expect(await viaEdge()).toEqual({ status: 200, version: versions.v1 });
    expect((await edge!.get(domain)).cert?.fingerprint256).toBe(before);
    // Once in, the next deploy finds nothing to change.
    const again = await deploy(env, images.v2);
    expect(again.code, explain(again)).toBe(0);
    expect(again.output).not.toContain('certificate issuer');
  });

  it('with no edge running, the deploy serves on the environment’s own port and says the domain is not served', async () => {
    await docker(['stop', 'berth-edge']);
    const r = await deploy(env, images.v1);
    expect(r.code, explain(r)).toBe(0);
    expect(r.output).toContain(`APP_DOMAIN=${domain}, but no edge runs on this VM (berth-edge)`);
    await docker(['start', 'berth-edge']);
  });
});
