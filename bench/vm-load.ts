// What the deploy benches put on an environment of the test VM: GET /health loops on its public
// port, or on its domain through the HTTPS edge (TLS with SNI, trusting only pebble's root).
import { testPorts, writeVmFile, type EnvName } from '../test/deploy/e2e/harness.js';
import { startPoller, type Poller } from '../test/deploy/e2e/poller.js';
import type { VmEdge } from '../test/deploy/e2e/vm-edge.js';

export const benchDomain = (env: EnvName): string => `${env}.berth.test`;

/** `loops` request loops until stopped: through `edge` when given, else on the port. */
export function loadOn(env: EnvName, loops: number, edge?: VmEdge): Poller {
  if (!edge) return startPoller(`http://127.0.0.1:${testPorts[env]}/health`, loops);
  const domain = benchDomain(env);
  return startPoller(
    `https://127.0.0.1:${edge.httpsPort}/health`,
    loops,
    { host: domain },
    { servername: domain, ca: edge.root },
  );
}

/** The environment's .env on the VM with its bench domain (its port loopback-only). */
export function useDomain(env: EnvName): void {
  writeVmFile(
    env,
    '.env',
    `APP_PORT=${testPorts[env]}\nAPP_BIND=127.0.0.1\nAPP_DOMAIN=${benchDomain(env)}\n`,
  );
}
