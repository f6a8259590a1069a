// A real ACME CA for the edge CONTAINER: pebble + challtestsrv (test/edge/ca) on the test's
// docker network, reachable by the edge as https://<name>:14000/dir and trusted through the
// edge's ACME_CA_ROOT; its management port (the issuing root) published on loopback for the
// test's clients. harness.ts's startCa is the same CA for a Caddy process on loopback.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../helpers/net.js';
import { exec, must, recipeImage } from '../image/engine.js';
import { fetchText, waitFor } from './harness.js';

const standin = recipeImage('pebble', path.join(import.meta.dirname, 'ca'));
export const CA_STANDIN_IMAGE = standin.image;

export interface CaContainer {
  /** The ACME directory as the edge container reaches it. */
  acmeUrl: string;
  /** PEM of the CA's own HTTPS certificate (self-signed): what the edge must trust (ACME_CA_ROOT). */
  listenerCert: string;
  /** pebble's current issuing root (PEM): the only thing the test's clients trust. */
  root: () => Promise<string>;
  stop: () => Promise<void>;
}

export async function startCaContainer(o: {
  name: string;
  network: string;
  /** Where every name resolves for the CA's validation: the edge container's address. */
  answer: string;
}): Promise<CaContainer> {
  await standin.ensure();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-ca-container-'));
  // prettier-ignore
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-days', '2', '-subj', `/CN=${o.name}`, '-addext', `subjectAltName=DNS:${o.name},IP:127.0.0.1`,
    '-keyout', path.join(dir, 'listener.key'), '-out', path.join(dir, 'listener.crt')], { stdio: 'ignore' });
  writeFileSync(
    path.join(dir, 'pebble.json'),
    JSON.stringify({
      pebble: {
        listenAddress: '0.0.0.0:14000',
        managementListenAddress: '0.0.0.0:15000',
        certificate: '/etc/pebble/listener.crt',
        privateKey: '/etc/pebble/listener.key',
        httpPort: 80,
        tlsPort: 443,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );
  // A throwaway key for a throwaway CA; pebble runs as nobody.
  for (const f of ['listener.key', 'listener.crt', 'pebble.json'])
    chmodSync(path.join(dir, f), 0o644);
  chmodSync(dir, 0o755);
  const mgmt = await freePort();
  await exec('docker', ['rm', '-f', o.name]);
  // prettier-ignore
  await must('docker', ['run', '-d', '--name', o.name, '--network', o.network, '--user', '65534:65534',
    '-e', `ANSWER_IPV4=${o.answer}`, '-v', `${dir}:/etc/pebble:ro`, '-p', `127.0.0.1:${mgmt}:15000`,
    CA_STANDIN_IMAGE]);
  const listenerCert = readFileSync(path.join(dir, 'listener.crt'), 'utf8');
  const root = () => fetchText(`https://127.0.0.1:${mgmt}/roots/0`, listenerCert);
  await waitFor(
    `pebble answers in container ${o.name}`,
    async () => (await root()).includes('BEGIN CERTIFICATE'),
    30_000,
  );
  return {
    acmeUrl: `https://${o.name}:14000/dir`,
    listenerCert,
    root,
    stop: async () => {
      await exec('docker', ['rm', '-f', o.name]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
