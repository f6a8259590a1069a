// The monitoring stack end to end, with real binaries on loopback: Prometheus, Alertmanager (via
// the shipped entrypoint.sh) and node-exporter from Debian, the real Berth service, a local
// HTTP server standing in for Slack's incoming webhook, and a stand-in serving cAdvisor's
// exposition (lib/cadvisor-standin.ts; cAdvisor itself cannot run here). The project's own prometheus.yml, rules,
// alertmanager.yml and Slack template are used with only addresses and intervals changed, by
// the functions in lib/localize.ts (README "Monitoring" > "How the stack is tested").
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, requireTool } from '../helpers/real-tools.js';
import { appTargetsFile } from '../../src/deploy/commands/targets.js';
import {
  alertmanagerDir,
  dashboardQueries,
  loadDashboards,
  metricNames,
  toPromQL,
} from './lib/expressions.js';
import { startCadvisorStandin, type StandinContainer } from './lib/cadvisor-standin.js';
import { freePort, startProcess, stopProcess, waitFor, type Proc } from './lib/processes.js';
import {
  startAlertmanager,
  startPrometheus,
  untilReady,
  writeLocalAlertmanagerConfig,
  writeLocalPrometheusConfig,
  writeLocalRules,
  writeLocalTargets,
} from './lib/stack.js';

const hint =
  'run `bash scripts/test-env/monitoring.sh up` (Debian: prometheus, prometheus-alertmanager, prometheus-node-exporter)';
const ok = [
  requireTool('prometheus', hint),
  requireTool('prometheus-alertmanager', hint),
  requireTool('prometheus-node-exporter', hint),
].every(Boolean);

// The documented local intervals: a fault reaches Slack in seconds instead of minutes.
const LOCAL = {
  scrape: '1s',
  evaluation: '1s',
  for: '2s',
  groupWait: '1s',
  groupInterval: '2s',
  repeat: '1h',
};
const GRAFANA_URL = 'http://grafana.e2e.test:8950';
const ENV = 'production' as const;

type SlackPost = { at: number; title: string; text: string; color: string };
type PromResult = { metric: Record<string, string>; value: [number, string] };

describe.skipIf(!ok)(
  'monitoring stack end to end (real Prometheus, Alertmanager, node-exporter, service; Slack and cAdvisor stand-ins)',
  () => {
    const work = mkdtempSync(path.join(tmpdir(), 'berth-monitoring-e2e-'));
    const slackPosts: SlackPost[] = [];
    let slack: http.Server | undefined;
    let cadvisor: http.Server | undefined;
    const procs: Record<string, Proc | undefined> = {};
    const ports = {
      prometheus: 0,
      alertmanager: 0,
      nodeExporter: 0,
      app: 0,
      slack: 0,
      cadvisor: 0,
    };
    // What the cAdvisor stand-in reports: the production env's app and proxy, one monitoring service.
    const container = (
      id: string,
      project: string,
      service: string,
      memoryLimitBytes: number,
    ): StandinContainer => ({
      id,
      name: `${project}-${service}-1`,
      image: `${service}:test`,
      project,
      service,
      restartCount: 0,
      memoryLimitBytes,
    });
    const containers: StandinContainer[] = [
      container('a1', `berth-${ENV}`, 'app', 512 * 2 ** 20),
      container('p1', `berth-${ENV}`, 'proxy', 128 * 2 ** 20),
      container('m1', 'berth-monitoring', 'prometheus', 2 ** 30),
    ];
    const figures: string[] = [];

    const promUrl = () => `http://127.0.0.1:${ports.prometheus}`;
    const appUrl = () => `http://127.0.0.1:${ports.app}`;

    async function promQuery(
      query: string,
    ): Promise<{ resultType: string; result: PromResult[] | [number, string] }> {
      const res = await fetch(`${promUrl()}/api/v1/query?${new URLSearchParams({ query })}`);
      const body = (await res.json()) as {
        status: string;
        error?: string;
        data: { resultType: string; result: PromResult[] };
      };
      if (body.status !== 'success') throw new Error(`${query}: ${body.error}`);
      return body.data;
    }

    function startService(): Proc {
      // Every variable the service reads is set here, so a developer's .env cannot change the run.
      return startProcess(
        'service',
        process.execPath,
        ['--import', 'tsx', 'src/service/server.ts'],
        {
          cwd: repoRoot,
          logFile: path.join(work, `service-${Date.now()}.log`),
          env: {
            PATH: process.env.PATH,
            PORT: String(ports.app),
            HOST: '127.0.0.1',
            LOG_LEVEL: 'warn',
            BASE_PATH: '',
            APP_VERSION: '9.9.9-e2e',
            GIT_COMMIT: 'e2e0001',
            SHUTDOWN_TIMEOUT_MS: '1000',
          },
        },
      );
    }

    async function serviceHealthy(): Promise<true | undefined> {
      const res = await fetch(`${appUrl()}/health`);
      return res.status === 200 ? true : undefined;
    }

    function slackPostAfter(since: number, title: string): Promise<SlackPost> {
      return waitFor(
        `a Slack POST titled "${title}"`,
        async () => slackPosts.find((p) => p.at >= since && p.title === title),
        90_000,
        100,
      );
    }

    beforeAll(async () => {
      for (const key of Object.keys(ports) as (keyof typeof ports)[]) ports[key] = await freePort();

      // Slack stand-in: records the JSON Alertmanager POSTs, answers like Slack ("ok").
      slack = http.createServer((req, res) => {
        let body = '';
        req.on('data', (chunk: Buffer) => (body += chunk.toString()));
        req.on('end', () => {
          const payload = JSON.parse(body) as {
            attachments: { title: string; text: string; color: string }[];
          };
          for (const a of payload.attachments)
            slackPosts.push({ at: Date.now(), title: a.title, text: a.text, color: a.color });
          res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok');
        });
      });
      await new Promise<void>((resolve) => slack?.listen(ports.slack, '127.0.0.1', resolve));
      cadvisor = await startCadvisorStandin(ports.cadvisor, containers);

      // The shipped files with only addresses and intervals changed.
      const localRuleFiles = writeLocalRules(path.join(work, 'rules'), LOCAL.for);
      const targetsFile = path.join(work, `app-${ENV}.yml`);
      writeLocalTargets(
        targetsFile,
        appTargetsFile(ENV, { basePath: '', port: 8000, bind: '0.0.0.0' }),
        {
          [`berth-${ENV}-app:8000`]: `127.0.0.1:${ports.app}`,
        },
      );
      const prometheusYml = path.join(work, 'prometheus.yml');
      writeLocalPrometheusConfig(prometheusYml, {
        scrapeInterval: LOCAL.scrape,
        evaluationInterval: LOCAL.evaluation,
        ruleFiles: localRuleFiles,
        alertmanagers: [`127.0.0.1:${ports.alertmanager}`],
        jobs: {
          prometheus: { targets: [`127.0.0.1:${ports.prometheus}`] },
          alertmanager: { targets: [`127.0.0.1:${ports.alertmanager}`] },
          'node-exporter': { targets: [`127.0.0.1:${ports.nodeExporter}`] },
          cadvisor: { targets: [`127.0.0.1:${ports.cadvisor}`] }, // the stand-in
          'berth-app': { file: targetsFile },
          // Probes and the heartbeat have their own end-to-end test (pipeline.int.test.ts).
          'blackbox-exporter': null,
          'blackbox-http': null,
          // The database's exporter has its own test (postgres-exporter.int.test.ts).
          postgres: null,
        },
      });
      const webhookFile = path.join(work, 'slack_webhook_url');
      const alertmanagerYml = path.join(work, 'alertmanager.yml');
      writeLocalAlertmanagerConfig(alertmanagerYml, {
        webhookFile,
        templatesDir: path.join(alertmanagerDir, 'templates'),
        groupWait: LOCAL.groupWait,
        groupInterval: LOCAL.groupInterval,
        repeatInterval: LOCAL.repeat,
      });

      const env = { PATH: process.env.PATH };
      procs.service = startService();
      procs.nodeExporter = startProcess(
        'node-exporter',
        'prometheus-node-exporter',
        [`--web.listen-address=127.0.0.1:${ports.nodeExporter}`],
        {
          env,
          logFile: path.join(work, 'node-exporter.log'),
        },
      );
      // The webhook URL arrives the way .env would pass it; entrypoint.sh moves it to the file.
      procs.alertmanager = startAlertmanager({
        work,
        port: ports.alertmanager,
        configFile: alertmanagerYml,
        webhookFile,
        logName: 'alertmanager.log',
        env: { SLACK_WEBHOOK_URL: `http://127.0.0.1:${ports.slack}/services/T000/B000/e2e` },
      });
      procs.prometheus = startPrometheus({
        work,
        port: ports.prometheus,
        configFile: prometheusYml,
        logName: 'prometheus.log',
        env: { GRAFANA_URL },
      });

      const ready = untilReady;
      await Promise.all([
        ready(procs.service, `${appUrl()}/health`),
        ready(procs.nodeExporter, `http://127.0.0.1:${ports.nodeExporter}/metrics`),
        ready(procs.alertmanager, `http://127.0.0.1:${ports.alertmanager}/-/ready`),
        ready(procs.prometheus, `${promUrl()}/-/ready`),
      ]);
    });

    afterAll(async () => {
      await Promise.all(Object.values(procs).map((p) => stopProcess(p)));
      for (const server of [slack, cadvisor]) {
        await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      }
      if (figures.length > 0)
        console.log(`monitoring e2e, fault -> Slack POST:\n  ${figures.join('\n  ')}`);
      rmSync(work, { recursive: true, force: true });
    });

    it('scrapes every target up: Prometheus, Alertmanager, node-exporter, cAdvisor (stand-in) and the service with its env', async () => {
      type Target = { labels: Record<string, string>; health: string; lastError: string };
      const targets = await waitFor(
        'all targets up',
        async () => {
          const res = await fetch(`${promUrl()}/api/v1/targets?state=active`);
          const body = (await res.json()) as { data: { activeTargets: Target[] } };
          const active = body.data.activeTargets;
          return active.length === 5 && active.every((t) => t.health === 'up') ? active : undefined;
        },
        30_000,
      );
      expect(targets.map((t) => t.labels.job).sort()).toEqual([
        'alertmanager',
        'berth-app',
        'cadvisor',
        'node-exporter',
        'prometheus',
      ]);
      expect(targets.find((t) => t.labels.job === 'berth-app')?.labels).toMatchObject({
        env: ENV,
        instance: `127.0.0.1:${ports.app}`,
      });
    });

    it("turns cAdvisor's compose labels into project, service and env, and drops the rest", async () => {
      const series = await waitFor(
        'container series',
        async () => {
          const data = await promQuery('container_last_seen');
          const result = data.result as PromResult[];
          return result.length === containers.length ? result : undefined;
        },
        15_000,
      );
      const app = series.find((s) => s.metric.service === 'app')?.metric;
      expect(app).toMatchObject({
        job: 'cadvisor',
        project: `berth-${ENV}`,
        service: 'app',
        env: ENV,
        name: `berth-${ENV}-app-1`,
      });
      const monitoring = series.find((s) => s.metric.project === 'berth-monitoring')?.metric;
      expect(monitoring?.service).toBe('prometheus');
      expect(monitoring?.env).toBeUndefined(); // the stack itself belongs to no environment
      for (const s of series)
        expect(Object.keys(s.metric).filter((k) => k.startsWith('container_label_'))).toEqual([]);
    });

    // Mixed traffic: every other /work request fails; kept running until the dashboards are read.
    let traffic: Promise<void> | undefined;
    let trafficOn = false;
    const startTraffic = (): void => {
      trafficOn = true;
      traffic = (async () => {
        const paths = [
          '/work?fail=true',
          '/work',
          '/items/42',
          '/health',
          '/work?fail=true',
          '/work?delay_ms=20',
        ];
        for (let i = 0; trafficOn; i++) {
          await Promise.all(
            paths.map((p) =>
              fetch(`${appUrl()}${p}`)
                .then((r) => r.arrayBuffer())
                .catch(() => undefined),
            ),
          );
          if (i % 5 === 0) await sleep(10);
        }
      })();
    };
    const stopTraffic = async (): Promise<void> => {
      trafficOn = false;
      await traffic;
    };

    it('fires BerthHighErrorRatio on Slack when /work?fail=true traffic starts', async () => {
      const fault = Date.now();
      startTraffic();
      const post = await slackPostAfter(fault, `[FIRING:1] BerthHighErrorRatio (${ENV})`);
      figures.push(`BerthHighErrorRatio firing: ${((post.at - fault) / 1000).toFixed(1)} s`);
      expect(post.color).toBe('danger');
      expect(post.text).toMatch(
        new RegExp(`^\\*CRITICAL: Berth ${ENV} answers \\d+(\\.\\d+)?% of requests with 5xx\\*`),
      );
      expect(post.text).toContain(`The 5xx share of all requests in env ${ENV} has been above 5%`);
      expect(post.text).toMatch(
        new RegExp(`env: ${ENV} \\| instance: - \\| value: \\d+(\\.\\d+)?%`),
      );
      expect(post.text).toContain(
        `<${GRAFANA_URL}/d/berth-service?var-env=${ENV}|Open in Grafana>`,
      );
      // The recording rule behind it: 5xx rate / all-requests rate, for this env.
      const ratio = await promQuery(`berth:http_error_rate:ratio5m{env="${ENV}"}`);
      const value = Number((ratio.result as PromResult[])[0]?.value[1]);
      expect(value).toBeGreaterThan(0.05);
      expect(value).toBeLessThan(1);
    });

    it('returns data for every dashboard query whose metrics exist here (Containers: from the cAdvisor stand-in)', async () => {
      // Every exporter scraped at least once, so "absent" below means absent from this machine.
      await waitFor(
        'all five jobs scraped',
        async () => {
          const up = await promQuery('count(up == 1)');
          return (up.result as PromResult[])[0]?.value[1] === '5' ? true : undefined;
        },
        30_000,
      );
      const queries = dashboardQueries();
      const empty: string[] = [];
      const absentHere: string[] = [];
      for (const q of queries) {
        const data = await promQuery(toPromQL(q.expr, { env: ENV, rateInterval: '30s' }));
        if (data.resultType === 'scalar' || (data.result as PromResult[]).length > 0) continue;
        // Empty is only acceptable when a metric it reads does not exist on this machine at all
        // (say, no block devices for node_disk_*); a wrong selector on existing metrics fails.
        const missing: string[] = [];
        for (const name of metricNames(q.expr)) {
          const any = await promQuery(`count({__name__="${name}"})`);
          if ((any.result as PromResult[]).length === 0) missing.push(name);
        }
        if (missing.length > 0)
          absentHere.push(`${q.dashboard} / ${q.panel} (no ${missing.join(', ')} here)`);
        else empty.push(`${q.dashboard} / ${q.panel}: ${q.expr}`);
      }
      if (absentHere.length > 0)
        console.log(
          `dashboard queries skipped, metrics absent on this machine:\n  ${absentHere.join('\n  ')}`,
        );
      // Template variables use Grafana's label_values(selector, label): the selector must find series with that label.
      for (const d of loadDashboards()) {
        for (const v of d.templating.list) {
          const m = /^label_values\((.+), (\w+)\)$/.exec(
            String((v.query as { query?: string } | undefined)?.query),
          );
          expect(m, `${d.uid} variable ${v.name}`).not.toBeNull();
          const data = await promQuery(m?.[1] ?? '');
          expect((data.result as PromResult[]).map((r) => r.metric[m?.[2] ?? ''])).toContain(ENV);
        }
      }
      const fromStandin = queries.filter((q) => q.dashboard === 'berth-containers').length;
      console.log(
        `dashboard queries with data: ${queries.length - empty.length - absentHere.length}/${queries.length} (${fromStandin} from the cAdvisor stand-in)`,
      );
      expect(empty).toEqual([]);
      await stopTraffic();
    });

    it('pages ContainerKilled when a deployed env loses its proxy container, and resolves when a new one runs', async () => {
      await waitFor(
        'the proxy container in Prometheus',
        async () => {
          const data = await promQuery(`container_last_seen{env="${ENV}", service="proxy"}`);
          return (data.result as PromResult[]).length > 0 ? true : undefined;
        },
        15_000,
        100,
      );
      const killed = Date.now();
      containers.splice(
        containers.findIndex((c) => c.service === 'proxy'),
        1,
      );
      const post = await slackPostAfter(killed, `[FIRING:1] ContainerKilled (${ENV})`);
      figures.push(`ContainerKilled firing: ${((post.at - killed) / 1000).toFixed(1)} s`);
      expect(post.text).toContain(`*CRITICAL: Berth ${ENV} has no running proxy container*`);
      expect(post.text).toContain(`env: ${ENV} | instance: proxy | value: 0 containers`);
      const replaced = Date.now();
      containers.push(container('p2', `berth-${ENV}`, 'proxy', 128 * 2 ** 20));
      await slackPostAfter(replaced, `[RESOLVED:1] ContainerKilled (${ENV})`);
    });

    it('pages ContainerRestarting when Docker restarts the app three times', async () => {
      const app = containers.find((c) => c.service === 'app');
      if (app === undefined) throw new Error('no app container');
      for (const n of [1, 2, 3]) {
        app.restartCount = n;
        await waitFor(
          `restart ${n} scraped`,
          async () => {
            const data = await promQuery(
              `container_last_seen{service="app", restart_count="${n}"}`,
            );
            return (data.result as PromResult[]).length > 0 ? true : undefined;
          },
          15_000,
          100,
        );
      }
      const third = Date.now();
      const post = await slackPostAfter(third, `[FIRING:1] ContainerRestarting (${ENV})`);
      figures.push(
        `ContainerRestarting firing: ${((post.at - third) / 1000).toFixed(1)} s after the third restart was scraped`,
      );
      expect(post.color).toBe('warning');
      expect(post.text).toContain(`*WARNING: berth-${ENV}/app restarted 3 times in 15 minutes*`);
      expect(post.text).toContain('See `docker compose logs app`.');
    });

    it('routes by severity and applies the inhibit rules (alerts posted to Alertmanager)', async () => {
      const alert = (labels: Record<string, string>, summary: string) => ({
        labels: { grafana_url: GRAFANA_URL, ...labels },
        annotations: { summary, description: summary, value: '1', dashboard: 'berth-host' },
      });
      const disk = { alertname: 'HostDiskSpaceLow', instance: 'vm:9100', device: '/dev/sda1' };
      const since = Date.now();
      const res = await fetch(`http://127.0.0.1:${ports.alertmanager}/api/v2/alerts`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify([
          alert({ ...disk, mountpoint: '/', severity: 'critical' }, 'root critical'),
          alert({ ...disk, mountpoint: '/', severity: 'warning' }, 'root warning'), // inhibited by its critical twin
          alert({ ...disk, mountpoint: '/data', severity: 'warning' }, 'data warning'), // another filesystem: sent
          alert(
            {
              alertname: 'BerthServiceDown',
              env: 'staging',
              instance: 'berth-staging-app:8000',
              severity: 'critical',
            },
            'staging down',
          ),
          alert(
            { alertname: 'BerthHighLatencyP95', env: 'staging', severity: 'warning' },
            'staging slow',
          ), // inhibited: staging is down
          alert(
            { alertname: 'BerthHighLatencyP95', env: 'testing', severity: 'warning' },
            'testing slow',
          ),
          alert(
            { alertname: 'ContainerKilled', env: 'staging', service: 'app', severity: 'critical' },
            'staging app gone',
          ), // inhibited: same cause as staging down
          alert(
            {
              alertname: 'ContainerKilled',
              env: 'staging',
              service: 'proxy',
              severity: 'critical',
            },
            'staging proxy gone',
          ),
        ]),
      });
      expect(res.status).toBe(200);

      const after = (title: string, color: string) =>
        waitFor(
          `${title} (${color})`,
          async () =>
            slackPosts.find((p) => p.at >= since && p.title === title && p.color === color),
          30_000,
          100,
        );
      const critical = await after('[FIRING:1] HostDiskSpaceLow', 'danger');
      const warning = await after('[FIRING:1] HostDiskSpaceLow', 'warning');
      await after('[FIRING:1] BerthServiceDown (staging)', 'danger');
      await after('[FIRING:1] BerthHighLatencyP95 (testing)', 'warning');
      const killed = await after('[FIRING:1] ContainerKilled (staging)', 'danger');
      expect(killed.text).toContain('staging proxy gone');
      expect(critical.text).toContain('root critical');
      expect(warning.text).toContain('data warning');
      expect(warning.text).not.toContain('root warning');
      // Give an inhibited alert more than one group_interval to show up, if it were going to.
      await sleep(3_000);
      const texts = slackPosts
        .filter((p) => p.at >= since)
        .map((p) => p.text)
        .join('\n');
      expect(texts).not.toContain('root warning');
      expect(texts).not.toContain('staging slow');
      expect(texts).not.toContain('staging app gone');
    });

    it('pages BerthServiceDown on Slack when the service stops, and sends the resolved message after restart', async () => {
      await stopTraffic();
      const stopped = Date.now();
      await stopProcess(procs.service);
      const down = await slackPostAfter(stopped, `[FIRING:1] BerthServiceDown (${ENV})`);
      figures.push(`BerthServiceDown firing: ${((down.at - stopped) / 1000).toFixed(1)} s`);
      expect(down.color).toBe('danger');
      expect(down.text).toBe(
        [
          `*CRITICAL: Berth ${ENV} is down*`,
          `Prometheus cannot scrape 127.0.0.1:${ports.app} (env ${ENV}) for over a minute: the app container is stopped, crashing or not answering.`,
          `env: ${ENV} | instance: 127.0.0.1:${ports.app} | value: up = 0`,
          `<${GRAFANA_URL}/d/berth-service?var-env=${ENV}|Open in Grafana>`,
        ].join('\n'),
      );

      const restarted = Date.now();
      procs.service = startService();
      await waitFor('the restarted service', serviceHealthy, 30_000);
      const resolved = await slackPostAfter(restarted, `[RESOLVED:1] BerthServiceDown (${ENV})`);
      figures.push(
        `BerthServiceDown resolved: ${((resolved.at - restarted) / 1000).toFixed(1)} s after restart`,
      );
      expect(resolved.color).toBe('good');
      expect(resolved.text).toContain(`*RESOLVED: Berth ${ENV} is down*`);
      expect(resolved.text).toContain(`instance: 127.0.0.1:${ports.app}`);
    });
  },
);
