// Monitoring follows the deploys, on the test VM with a real Prometheus: the monitoring stack laid
// out in <remote dir>/monitoring as init_setup.sh does (Prometheus from Debian's package in the
// stand-in image, on the shared `berth` network, the shipped prometheus.yml unchanged). A deploy of
// staging with BASE_PATH=/api makes it a scrape target on /api/metrics with its env label within
// one scrape interval; `down` takes it out again.
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HOST_PORTS,
  startMonitoringStack,
  type MonitoringStack,
} from '../../monitoring/lib/compose-stack.js';
import {
  appContainers,
  cliEnv,
  deploy,
  docker,
  explain,
  giveToVmUser,
  images,
  remoteDir,
  runCli,
  served,
  takeVm,
  testPorts,
  vmReady,
  waitFor,
  writeVmFile,
} from './harness.js';

/** The shipped scrape_interval (prometheus/prometheus.yml). */
const SCRAPE_INTERVAL_S = 15;
/**
 * Prometheus's discovery manager hands new targets to the scrape manager at most every 5 s
 * (discovery/manager.go, updatert); a new target's first scrape then waits for its slot in the
 * interval. Written file -> first scrape: up to 5 s + one interval.
 */
const DISCOVERY_TICK_S = 5;

interface ApiTarget {
  labels: Record<string, string>;
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  lastScrape: string;
}

async function activeTargets(): Promise<ApiTarget[]> {
  const res = await fetch(`http://127.0.0.1:${HOST_PORTS.prometheus}/api/v1/targets?state=active`);
  return ((await res.json()) as { data: { activeTargets: ApiTarget[] } }).data.activeTargets;
}

const ofStaging = (targets: ApiTarget[]) => targets.filter((t) => t.labels.env === 'staging');

describe.skipIf(!vmReady)('monitoring follows the deploys (real Prometheus on the test VM)', () => {
  const monitoringDir = path.join(remoteDir, 'monitoring');
  const targetsDir = path.join(monitoringDir, 'prometheus', 'targets');
  let releaseVm = (): void => {};
  let stack: MonitoringStack | undefined;

  beforeAll(async () => {
    releaseVm = await takeVm('staging');
    rmSync(monitoringDir, { recursive: true, force: true });
    await docker(['network', 'inspect', 'berth']).catch(() =>
      docker(['network', 'create', 'berth']),
    );
    stack = await startMonitoringStack({
      dir: monitoringDir,
      network: 'berth',
      services: ['prometheus'],
    });
    giveToVmUser(targetsDir);
    writeVmFile('staging', 'app.env', 'LOG_LEVEL=warn\nBASE_PATH=/api\n');
    writeVmFile(
      'staging',
      '.env',
      `APP_PORT=${testPorts.staging}\nAPP_BIND=127.0.0.1\nAPP_DOMAIN=staging.berth.test\n`,
    );
  }, 900_000);

  afterAll(() => {
    stack?.down();
    rmSync(monitoringDir, { recursive: true, force: true });
    releaseVm();
  });

  it('a deploy makes staging a scrape target on BASE_PATH/metrics with its env label, within one discovery tick and one scrape interval', async () => {
    expect(ofStaging(await activeTargets())).toEqual([]);
    const r = await deploy('staging', images.v1, cliEnv({ DEPLOY_HEALTH_PATH: '/api/health' }));
    expect(r.code, explain(r)).toBe(0);
    expect(r.output).toMatch(
      /✓ monitoring targets .* {2}scrape berth-staging-app:8000\/api\/metrics, probe https:\/\/staging\.berth\.test\/api\/health/,
    );
    const written = statSync(path.join(targetsDir, 'app-staging.yml')).mtimeMs;
    const app = await waitFor(
      'staging scraped up',
      async () =>
        (await activeTargets()).find(
          (t) => t.labels.job === 'berth-app' && t.labels.env === 'staging' && t.health === 'up',
        ),
      (SCRAPE_INTERVAL_S + 15) * 1000,
    );
    const seconds = (Date.parse(app.lastScrape) - written) / 1000;
    console.log(
      `targets: app-staging.yml written -> first successful scrape ${seconds.toFixed(1)} s`,
    );
    expect(seconds).toBeLessThanOrEqual(DISCOVERY_TICK_S + SCRAPE_INTERVAL_S + 1);
    expect(app.labels).toMatchObject({ env: 'staging', instance: 'berth-staging-app:8000' });
    expect(app.scrapeUrl).toBe('http://berth-staging-app:8000/api/metrics');
    // The probe goes to the domain under BASE_PATH (blackbox-exporter does not run here).
    const probe = (await activeTargets()).find((t) => t.labels.job === 'blackbox-http');
    expect(probe?.labels).toMatchObject({
      env: 'staging',
      instance: 'https://staging.berth.test/api/health',
    });
  });

  it('down takes staging out of Prometheus (its database too: no page for a database it stops), then off the VM', async () => {
    // As init_setup.sh writes it for an environment with a database.
    const database = path.join(targetsDir, 'postgres-staging.yml');
    writeFileSync(
      database,
      "- targets: ['postgres-exporter-staging:9187']\n  labels: {env: staging}\n",
    );
    giveToVmUser(database);
    await waitFor(
      'the database target read',
      async () =>
        (await activeTargets()).find(
          (t) => t.labels.job === 'postgres' && t.labels.env === 'staging',
        ),
      (SCRAPE_INTERVAL_S + 15) * 1000,
    );
    const r = await runCli(['down', '--env', 'staging'], cliEnv());
    expect(r.code, explain(r)).toBe(0);
    expect(r.output).toMatch(
      /✓ monitoring targets .*removed app-staging\.yml and probe-staging\.yml; postgres-staging\.yml parked until the next deploy/,
    );
    expect(existsSync(path.join(targetsDir, 'app-staging.yml'))).toBe(false);
    expect(existsSync(path.join(targetsDir, 'probe-staging.yml'))).toBe(false);
    expect(existsSync(database)).toBe(false);
    expect(existsSync(`${database}.down`)).toBe(true);
    await waitFor(
      'staging gone from the targets',
      async () => ofStaging(await activeTargets()).length === 0,
      10_000,
    );
    expect(await appContainers('staging')).toEqual([]);
    expect((await served('staging')).status).toBe(0);
  });
});
