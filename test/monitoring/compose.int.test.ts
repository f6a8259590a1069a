// docker-compose.monitoring.yml itself, run by `docker compose` (v2) on Docker Engine, laid out
// as init_setup.sh copies it to the VM. Prometheus, Alertmanager and
// node-exporter run from TEST-ONLY stand-in images (standin-images/Dockerfile: Debian's
// packages shaped like the official images); cAdvisor and Grafana have no such package and stay
// down. The Berth service runs in a container of its own on a shared network, reached by its
// alias as on the VM. This proves the file's mounts, entrypoint, users, healthchecks, ports,
// networks and environment, which `docker compose config` cannot. `up --wait` returns only once
// Docker's own timer has found every started part healthy.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appTargetsFile, probeTargetsFile } from '../../src/deploy/commands/targets.js';
import { loadTestEnv, repoRoot, requirePart } from '../helpers/real-tools.js';
import {
  HOST_PORTS,
  STANDINS,
  sh,
  startMonitoringStack,
  type MonitoringStack,
} from './lib/compose-stack.js';
import { loadRules } from './lib/expressions.js';
import { waitFor } from './lib/processes.js';

const testEnv = loadTestEnv();
const NODE_IMAGE = testEnv.NODE_IMAGE ?? 'docker.io/library/node:24-bookworm-slim';

const ok = requirePart(
  'Docker Engine with compose v2',
  () =>
    Boolean(testEnv.DOCKER_HOST) &&
    sh('docker', ['compose', 'version'], { timeout: 20_000 }).code === 0 &&
    sh('docker', ['info'], { timeout: 20_000 }).code === 0,
  'run `bash scripts/test-env/engine.sh up`',
);

describe.skipIf(!ok)(
  'docker-compose.monitoring.yml on the container engine (stand-in images)',
  () => {
    const appContainer = `berth-montest-app-${process.pid}`;
    let stack: MonitoringStack;
    const container = (service: string) => stack.container(service);
    const prom = async (apiPath: string) => {
      const res = await fetch(`http://127.0.0.1:${HOST_PORTS.prometheus}${apiPath}`);
      return ((await res.json()) as { data: unknown }).data;
    };

    const deployed = { basePath: '', port: 8000, bind: '0.0.0.0' };

    beforeAll(async () => {
      // Production's app on the shared network under its alias, as the deploy leaves it.
      stack = await startMonitoringStack({
        // What a deploy of production leaves in the targets directory.
        targets: {
          'app-production.yml': appTargetsFile('production', deployed),
          'probe-production.yml': probeTargetsFile('production', deployed) ?? '',
        },
        beforeUp: (network) => {
          const app = sh('docker', [
            'run',
            '-d',
            '--name',
            appContainer,
            '--network',
            network,
            '--network-alias',
            'berth-production-app',
            '-v',
            `${repoRoot}:/app:ro`,
            '-w',
            '/app',
            '-e',
            'PORT=8000',
            '-e',
            'HOST=0.0.0.0',
            '-e',
            'LOG_LEVEL=warn',
            '-e',
            'APP_VERSION=9.9.9-compose',
            NODE_IMAGE,
            'node',
            '--import',
            'tsx',
            'src/service/server.ts',
          ]);
          if (app.code !== 0) throw new Error(`starting the app container: ${app.out}`);
        },
      });
    });

    afterAll(() => {
      sh('docker', ['rm', '-f', appContainer]);
      stack?.down();
    });

    it('runs each part as nobody, publishes it on 127.0.0.1 only, and is healthy by its own healthcheck', () => {
      const ports: Record<string, number> = {
        prometheus: 9090,
        alertmanager: 9093,
        'node-exporter': 9100,
      };
      for (const service of STANDINS) {
        // Docker ran the check on its own timer; `up --wait` already waited for it.
        expect(
          sh('docker', [
            'inspect',
            '--format',
            '{{.State.Health.Status}}',
            container(service),
          ]).out.trim(),
          service,
        ).toBe('healthy');
        expect(sh('docker', ['exec', container(service), 'id', '-u']).out.trim(), service).toBe(
          '65534',
        );
        const published = sh('docker', [
          'port',
          container(service),
          `${ports[service]}/tcp`,
        ]).out.trim();
        expect(published, service).toMatch(/^127\.0\.0\.1:89\d\d$/);
      }
    });

    it('scrapes the app of another project by its alias on the shared network, labelled with its env', async () => {
      type Target = { labels: Record<string, string>; health: string; lastError: string };
      const targets = await waitFor(
        'the app, Prometheus, Alertmanager and node-exporter up',
        async () => {
          const data = (await prom('/api/v1/targets?state=active')) as { activeTargets: Target[] };
          const up = data.activeTargets
            .filter((t) => t.health === 'up')
            .map((t) => t.labels.job)
            .sort();
          return up.join() === 'alertmanager,berth-app,node-exporter,prometheus'
            ? data.activeTargets
            : undefined;
        },
        90_000,
        1_000,
      );
      expect(targets.find((t) => t.labels.job === 'berth-app')?.labels).toMatchObject({
        env: 'production',
        instance: 'berth-production-app:8000',
      });
      // cAdvisor and blackbox-exporter have no stand-in here: their targets (and the probes that
      // go through blackbox-exporter) are the only ones down.
      expect(
        targets
          .filter((t) => t.health !== 'up')
          .map((t) => t.labels.job)
          .sort(),
      ).toEqual(['blackbox-exporter', 'blackbox-http', 'cadvisor']);
    });

    it('loads every rule, finds Alertmanager by service name and expands GRAFANA_URL', async () => {
      const rules = (await prom('/api/v1/rules')) as { groups: { rules: unknown[] }[] };
      expect(rules.groups.flatMap((g) => g.rules).length).toBe(loadRules().length);
      const ams = (await prom('/api/v1/alertmanagers')) as {
        activeAlertmanagers: { url: string }[];
      };
      expect(ams.activeAlertmanagers).toEqual([{ url: 'http://alertmanager:9093/api/v2/alerts' }]);
      const config = (await prom('/api/v1/status/config')) as { yaml: string };
      expect(config.yaml).toContain('grafana_url: http://grafana.montest.invalid:8950');
    });

    it('hands the Slack webhook to Alertmanager as a private file, not as its environment', () => {
      const am = container('alertmanager');
      expect(sh('docker', ['exec', am, 'cat', '/tmp/slack_webhook_url']).out.trim()).toBe(
        'http://127.0.0.1:9/services/T0/B0/montest',
      );
      expect(
        sh('docker', ['exec', am, 'stat', '-c', '%a', '/tmp/slack_webhook_url']).out.trim(),
      ).toBe('600');
      // PID 1 is Alertmanager itself (entrypoint.sh execs it) and no longer carries the URL.
      const environ = sh('docker', ['exec', am, 'cat', '/proc/1/environ']).out;
      expect(environ).not.toContain('SLACK_WEBHOOK_URL');
      expect(sh('docker', ['exec', am, 'cat', '/proc/1/cmdline']).out).toContain('alertmanager');
    });
  },
);
