// docker-compose.monitoring.yml brought up with `docker compose up --wait` on Docker Engine, laid
// out as init_setup.sh copies it to the VM, with TEST-ONLY stand-in images for Prometheus,
// Alertmanager and node-exporter (standin-images/: Debian's packages shaped like the official
// images; cAdvisor, Grafana and blackbox have none and stay down). Shared by the compose test and
// the VM reboot test.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadTestEnv, repoRoot } from '../../helpers/real-tools.js';

const testEnv = loadTestEnv();
export const engineEnv = { ...process.env, DOCKER_HOST: testEnv.DOCKER_HOST ?? '' };

/** The fixed loopback ports the compose file publishes. */
export const HOST_PORTS = { prometheus: 8900, alertmanager: 8903, nodeExporter: 8905 };
export const STANDINS = ['prometheus', 'alertmanager', 'node-exporter'] as const;
const standinImage = (part: string) => `localhost/berth-test/${part}:debian`;

export function sh(
  cmd: string,
  args: string[],
  opts: { cwd?: string; timeout?: number } = {},
): { code: number | null; out: string } {
  const r = spawnSync(cmd, args, {
    env: engineEnv,
    cwd: opts.cwd,
    encoding: 'utf8',
    timeout: opts.timeout ?? 120_000,
  });
  return { code: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export interface MonitoringStack {
  project: string;
  /** The shared network (BERTH_NETWORK) the stack scrapes the apps on. */
  network: string;
  compose: (...args: string[]) => { code: number | null; out: string };
  container: (service: string) => string;
  down: () => void;
}

/**
 * Builds the stand-ins (cached after the first time), lays the stack out in a temp dir (or `dir`,
 * e.g. the test VM's <remote dir>/monitoring) with a test .env and the given files in
 * prometheus/targets/, creates `network` unless given one that exists, and runs `up -d --wait` on
 * `services` (default: the three parts that can run here). `beforeUp` runs once the network
 * exists (e.g. to start an app on it).
 */
export async function startMonitoringStack(
  opts: {
    network?: string;
    beforeUp?: (network: string) => void;
    dir?: string;
    services?: (typeof STANDINS)[number][];
    targets?: Record<string, string>;
  } = {},
): Promise<MonitoringStack> {
  for (const [name, port] of Object.entries(HOST_PORTS)) {
    if (!(await portFree(port)))
      throw new Error(
        `127.0.0.1:${port} (${name}) is in use; the compose file publishes that fixed port`,
      );
  }
  for (const part of STANDINS) {
    const r = sh(
      'docker',
      [
        'build',
        '--pull=false',
        '-q',
        '--target',
        part,
        '-t',
        standinImage(part),
        path.join(import.meta.dirname, '..', 'standin-images'),
      ],
      { timeout: 300_000 },
    );
    if (r.code !== 0) throw new Error(`building the ${part} stand-in failed:\n${r.out}`);
  }
  const id = randomBytes(3).toString('hex');
  const project = `berth-montest-${id}`;
  const ownNetwork = !opts.network;
  const network = opts.network ?? `berth-montest-net-${id}`;
  const dir = opts.dir ?? mkdtempSync(path.join(tmpdir(), 'berth-monitoring-compose-'));
  mkdirSync(dir, { recursive: true });
  // The VM's layout: the compose file and the config folders, world-readable (init_setup.sh).
  for (const item of [
    'docker-compose.monitoring.yml',
    'prometheus',
    'alertmanager',
    'grafana',
    'blackbox',
  ]) {
    cpSync(path.join(repoRoot, item), path.join(dir, item), { recursive: true });
  }
  for (const [name, content] of Object.entries(opts.targets ?? {}))
    writeFileSync(path.join(dir, 'prometheus', 'targets', name), content);
  chmodSync(dir, 0o755);
  sh('chmod', ['-R', 'a+rX', dir]);
  writeFileSync(
    path.join(dir, '.env'),
    [
      `PROMETHEUS_IMAGE=${standinImage('prometheus')}`,
      `ALERTMANAGER_IMAGE=${standinImage('alertmanager')}`,
      `NODE_EXPORTER_IMAGE=${standinImage('node-exporter')}`,
      'GRAFANA_ADMIN_PASSWORD=not-started-here',
      'GRAFANA_URL=http://grafana.montest.invalid:8950',
      'SLACK_WEBHOOK_URL=http://127.0.0.1:9/services/T0/B0/montest',
      `BERTH_NETWORK=${network}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const compose = (...args: string[]) =>
    sh('docker', ['compose', '-p', project, '-f', 'docker-compose.monitoring.yml', ...args], {
      cwd: dir,
      timeout: 180_000,
    });
  const down = () => {
    compose('down', '-v', '--timeout', '5');
    if (ownNetwork) sh('docker', ['network', 'rm', network]);
    rmSync(dir, { recursive: true, force: true });
  };
  if (ownNetwork) {
    const created = sh('docker', ['network', 'create', network]);
    if (created.code !== 0) throw new Error(`docker network create: ${created.out}`);
  }
  try {
    opts.beforeUp?.(network);
    const up = compose(
      'up',
      '-d',
      '--wait',
      '--wait-timeout',
      '120',
      ...(opts.services ?? STANDINS),
    );
    if (up.code !== 0)
      throw new Error(`docker compose up --wait: ${up.out}\n${compose('logs', '--tail=30').out}`);
  } catch (err) {
    down();
    throw err;
  }
  return { project, network, compose, container: (service) => `${project}-${service}-1`, down };
}
