// The HTTPS edge on the test VM as init_setup.sh starts it (docker-compose.edge.yml, container
// berth-edge on the shared network berth, the stand-in image), with its certificates from a real
// ACME CA on that network (pebble in a container, trusted as a private CA through ACME_CA_ROOT)
// and its ports on loopback. Shared by test/deploy/e2e/edge.int.test.ts and bench/deploy.ts.
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../helpers/net.js';
import { startCaContainer, type CaContainer } from '../../edge/ca-container.js';
import { ensureEdgeImage, layOutEdge } from '../../edge/edge-compose.js';
import { httpGet, httpsGet, waitFor, type Answer } from '../../edge/harness.js';
import { docker, images, remoteDir, testEnv, uidOf } from './harness.js';

export interface VmEdge {
  httpPort: number;
  httpsPort: number;
  /** pebble's issuing root: the only root the test's clients trust. */
  root: string;
  compose: (...args: string[]) => Promise<string>;
  /** GET over HTTPS through the edge, SNI and Host = host. */
  get: (host: string, p?: string) => Promise<Answer>;
  /** Waits until `host` serves over HTTPS with its certificate; the edge's log in the error. */
  waitForCertificate: (host: string) => Promise<void>;
  stop: () => Promise<void>;
}

/** `grafana`: a stand-in Grafana (any HTTP server) on the shared network, served at its domain. */
export async function startVmEdge(grafana?: { domain: string; name: string }): Promise<VmEdge> {
  await ensureEdgeImage();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-e2e-edge-'));
  const [httpPort, httpsPort] = [await freePort(), await freePort()];
  const args = layOutEdge(dir, {
    project: 'berth-edge-e2e',
    network: 'berth',
    httpPort,
    httpsPort,
  });
  const compose = (...a: string[]) => docker([...args, ...a]);
  let ca: CaContainer | undefined;
  const edgeDir = path.join(remoteDir, 'edge');
  const stop = async (): Promise<void> => {
    await compose('down', '-v', '--remove-orphans').catch(() => '');
    await ca?.stop();
    if (grafana) await docker(['rm', '-f', grafana.name]).catch(() => '');
    rmSync(dir, { recursive: true, force: true });
    rmSync(edgeDir, { recursive: true, force: true });
  };
  try {
    await docker(['rm', '-f', 'berth-edge', ...(grafana ? [grafana.name] : [])]).catch(() => '');
    // init_setup.sh makes the shared network before it starts the edge.
    await docker(['network', 'inspect', 'berth']).catch(() =>
      docker(['network', 'create', 'berth']),
    );
    if (grafana)
      await docker(['run', '-d', '--name', grafana.name, '--network', 'berth', images.v1]);
    await compose('up', '-d');
    await waitFor(
      'the edge answers',
      async () => (await httpGet(httpPort, 'x.berth.test')).status === 404,
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
    writeFileSync(path.join(dir, 'edge', 'trust', 'pebble.pem'), ca.listenerCert, {
      mode: 0o644,
    });
    const root = await ca.root();
    // The edge's settings as init_setup.sh writes them, for a private ACME CA.
    mkdirSync(edgeDir, { recursive: true });
    writeFileSync(
      path.join(edgeDir, '.env'),
      [
        `ACME_CA=${ca.acmeUrl}`,
        'ACME_CA_ROOT=pebble.pem',
        ...(grafana
          ? [`GRAFANA_DOMAIN=${grafana.domain}`, `GRAFANA_UPSTREAM=${grafana.name}:8000`]
          : []),
        '',
      ].join('\n'),
    );
    const { uid, gid } = uidOf(testEnv.VM_USER ?? 'berth');
    chownSync(edgeDir, uid, gid);
    const get = (host: string, p = '/health') => httpsGet(httpsPort, host, root, p);
    return {
      httpPort,
      httpsPort,
      root,
      compose,
      get,
      waitForCertificate: (host) =>
        waitFor(
          `a certificate for ${host} from the CA container`,
          async () => (await get(host)).status === 200,
          30_000,
        ).catch(async (err: Error) => {
          const logs = await docker(['logs', '--tail', '30', 'berth-edge']).catch(() => '');
          throw new Error(`${err.message}; the edge's log:\n${logs}`);
        }),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
