// The parts of monitoring that watch the watchers and what users see, end to end with real
// binaries on loopback: Prometheus, Alertmanager (through the shipped entrypoint.sh, with
// HEARTBEAT_URL), node-exporter (textfile collector) and blackbox_exporter from Debian. Local
// HTTP servers stand in for the heartbeat service (healthchecks.io and the like), for Slack (can
// answer 500) and for an environment's proxy (can answer 502 or stop listening). The shipped
// prometheus.yml, rules, probe targets, alertmanager.yml, template and blackbox.yml are used with
// only addresses and intervals changed (lib/localize.ts), plus Prometheus's alert resend delay
// (an interval) at 1 s, so an alert Prometheus stops sending expires in 4 s instead of 4 minutes.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, requireTool } from '../helpers/real-tools.js';
import { probeTargetsFile } from '../../src/deploy/commands/targets.js';
import { alertmanagerDir } from './lib/expressions.js';
import { freePort, startProcess, stopProcess, waitFor, type Proc } from './lib/processes.js';
import {
  shippedFlags,
  startAlertmanager as startStackAlertmanager,
  startPrometheus as startStackPrometheus,
  untilReady,
  writeLocalAlertmanagerConfig,
  writeLocalPrometheusConfig,
  writeLocalRules,
  writeLocalTargets,
} from './lib/stack.js';

const hint =
  'run `bash scripts/test-env/monitoring.sh up` (Debian: prometheus, prometheus-alertmanager, prometheus-node-exporter, prometheus-blackbox-exporter)';
const ok = [
  requireTool('prometheus', hint),
  requireTool('prometheus-alertmanager', hint),
  requireTool('prometheus-node-exporter', hint),
  requireTool('prometheus-blackbox-exporter', hint),
].every(Boolean);

// As e2e.int.test.ts, plus the heartbeat route scaled like the shipped 1m / 50s (group_interval
// 2 s, repeat_interval 1 s) and Prometheus's resend delay (shipped: the 1m default).
const LOCAL = {
  scrape: '1s',
  evaluation: '1s',
  for: '2s',
  groupWait: '1s',
  groupInterval: '2s',
  repeat: '1h',
  resendDelay: '1s',
};
const HEARTBEAT = { groupInterval: '2s', repeatInterval: '1s' };
const GRAFANA_URL = 'http://grafana.pipeline.test:8950';
const DEPLOYED_PROBE_URL = 'http://host.docker.internal:8000/health';

type SlackPost = { at: number; title: string; text: string };
type Ping = { at: number; alertnames: string[]; status: string };
type Alert = { labels: Record<string, string>; state: string };

function listen(server: http.Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
}

function close(server: http.Server | undefined): Promise<void> {
  if (server === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => resolve(body));
  });
}

describe.skipIf(!ok)(
  'heartbeat, probes, container health and the pipeline watching itself (real Prometheus, Alertmanager, node-exporter, blackbox_exporter)',
  () => {
    const work = mkdtempSync(path.join(tmpdir(), 'berth-monitoring-pipeline-'));
    const ports = {
      prometheus: 0,
      alertmanager: 0,
      nodeExporter: 0,
      blackbox: 0,
      proxy: 0,
      slack: 0,
      heartbeat: 0,
    };
    const procs: Record<string, Proc | undefined> = {};
    const servers: Record<string, http.Server | undefined> = {};
    const slackPosts: SlackPost[] = [];
    const pings: Ping[] = [];
    let slackStatus = 200;
    let proxyStatus = 200;
    const figures: string[] = [];
    const textfileDir = path.join(work, 'textfile');
    const fakeDockerDir = path.join(work, 'bin');
    let startPrometheus: () => Proc = () => {
      throw new Error('not set up');
    };
    let startAlertmanager: () => Proc = () => {
      throw new Error('not set up');
    };

    const promUrl = () => `http://127.0.0.1:${ports.prometheus}`;
    const amUrl = () => `http://127.0.0.1:${ports.alertmanager}`;

    const ready = untilReady;

    async function firingInPrometheus(alertname: string): Promise<Alert[]> {
      const res = await fetch(`${promUrl()}/api/v1/alerts`);
      const body = (await res.json()) as { data: { alerts: Alert[] } };
      return body.data.alerts.filter(
        (a) => a.labels.alertname === alertname && a.state === 'firing',
      );
    }

    function slackPostAfter(since: number, title: string, timeoutMs = 60_000): Promise<SlackPost> {
      return waitFor(
        `a Slack POST titled "${title}"`,
        async () => slackPosts.find((p) => p.at >= since && p.title === title),
        timeoutMs,
        100,
      );
    }

    function pingAfter(since: number, timeoutMs = 30_000): Promise<Ping> {
      return waitFor(
        'a heartbeat ping',
        async () => pings.find((p) => p.at > since),
        timeoutMs,
        100,
      );
    }

    /** Waits until no ping has come for `quietMs`; returns the time of the last ping (or undefined). */
    async function pingsStopped(
      since: number,
      quietMs: number,
      timeoutMs: number,
    ): Promise<number | undefined> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const last = pings.filter((p) => p.at >= since).at(-1)?.at;
        if (Date.now() - (last ?? since) >= quietMs) return last;
        if (Date.now() > deadline)
          throw new Error(`heartbeat pings did not stop within ${timeoutMs} ms`);
        await sleep(100);
      }
    }

    function writeHealth(lines: string[]): void {
      // The shipped script, with `docker ps` answered by a stand-in that prints these lines.
      writeFileSync(path.join(work, 'docker-ps.txt'), `${lines.join('\n')}\n`);
      execFileSync('sh', [path.join(repoRoot, 'node-exporter', 'berth-container-health.sh')], {
        env: { PATH: `${fakeDockerDir}:${process.env.PATH}`, TEXTFILE_DIR: textfileDir },
        stdio: 'pipe',
      });
    }

    beforeAll(async () => {
      for (const key of Object.keys(ports) as (keyof typeof ports)[]) ports[key] = await freePort();

      servers.slack = http.createServer((req, res) => {
        void readBody(req).then((body) => {
          if (slackStatus === 200) {
            const payload = JSON.parse(body) as { attachments: { title: string; text: string }[] };
            for (const a of payload.attachments)
              slackPosts.push({ at: Date.now(), title: a.title, text: a.text });
          }
          res
            .writeHead(slackStatus, { 'Content-Type': 'text/plain' })
            .end(slackStatus === 200 ? 'ok' : 'internal_error');
        });
      });
      servers.heartbeat = http.createServer((req, res) => {
        void readBody(req).then((body) => {
          const payload = JSON.parse(body) as {
            status: string;
            alerts: { labels: Record<string, string> }[];
          };
          pings.push({
            at: Date.now(),
            alertnames: payload.alerts.map((a) => a.labels.alertname ?? ''),
            status: payload.status,
          });
          res.writeHead(200).end('OK');
        });
      });
      await listen(servers.slack, ports.slack);
      await listen(servers.heartbeat, ports.heartbeat);
      await startProxy();

      mkdirSync(textfileDir);
      mkdirSync(fakeDockerDir);
      writeFileSync(
        path.join(fakeDockerDir, 'docker'),
        `#!/bin/sh\ncat "${path.join(work, 'docker-ps.txt')}"\n`,
        { mode: 0o755 },
      );
      writeHealth(['berth-production-app-1|berth-production|app|Up 1 hour (healthy)']);

      // The shipped files with only addresses and intervals changed.
      const localRuleFiles = writeLocalRules(path.join(work, 'rules'), LOCAL.for);
      const probeFile = path.join(work, 'probe-production.yml');
      const deployed = { basePath: '', port: 8000, bind: '0.0.0.0' };
      writeLocalTargets(probeFile, probeTargetsFile('production', deployed) ?? '', {
        [DEPLOYED_PROBE_URL]: `http://127.0.0.1:${ports.proxy}/health`,
      });
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
          'blackbox-exporter': { targets: [`127.0.0.1:${ports.blackbox}`] },
          'blackbox-http': { file: probeFile, probeVia: `127.0.0.1:${ports.blackbox}` },
          // The app and cAdvisor are e2e.int.test.ts's subject, the database
          // postgres-exporter.int.test.ts's.
          cadvisor: null,
          'berth-app': null,
          postgres: null,
        },
      });
      const alertmanagerYml = path.join(work, 'alertmanager.yml');
      writeLocalAlertmanagerConfig(alertmanagerYml, {
        webhookFile: path.join(work, 'slack_webhook_url'),
        templatesDir: path.join(alertmanagerDir, 'templates'),
        groupWait: LOCAL.groupWait,
        groupInterval: LOCAL.groupInterval,
        repeatInterval: LOCAL.repeat,
        heartbeat: HEARTBEAT,
      });

      const env = { PATH: process.env.PATH };
      startPrometheus = () =>
        startStackPrometheus({
          work,
          port: ports.prometheus,
          configFile: prometheusYml,
          logName: `prometheus-${Date.now()}.log`,
          env: { GRAFANA_URL },
          extraArgs: [`--rules.alert.resend-delay=${LOCAL.resendDelay}`],
        });
      // Both URLs arrive the way .env passes them; entrypoint.sh moves them into private files.
      startAlertmanager = () =>
        startStackAlertmanager({
          work,
          port: ports.alertmanager,
          configFile: alertmanagerYml,
          webhookFile: path.join(work, 'slack_webhook_url'),
          logName: `alertmanager-${Date.now()}.log`,
          env: {
            SLACK_WEBHOOK_URL: `http://127.0.0.1:${ports.slack}/services/T000/B000/pipeline`,
            HEARTBEAT_URL: `http://127.0.0.1:${ports.heartbeat}/ping/0f1e2d3c`,
          },
        });

      procs.nodeExporter = startProcess(
        'node-exporter',
        'prometheus-node-exporter',
        [
          `--web.listen-address=127.0.0.1:${ports.nodeExporter}`,
          `--collector.textfile.directory=${textfileDir}`,
        ],
        { env, logFile: path.join(work, 'node-exporter.log') },
      );
      procs.blackbox = startProcess(
        'blackbox-exporter',
        'prometheus-blackbox-exporter',
        [
          ...shippedFlags('blackbox-exporter', ['--config.file']),
          `--config.file=${path.join(repoRoot, 'blackbox', 'blackbox.yml')}`,
          `--web.listen-address=127.0.0.1:${ports.blackbox}`,
        ],
        { env, logFile: path.join(work, 'blackbox.log') },
      );
      procs.alertmanager = startAlertmanager();
      procs.prometheus = startPrometheus();
      await Promise.all([
        ready(procs.nodeExporter, `http://127.0.0.1:${ports.nodeExporter}/metrics`),
        ready(procs.blackbox, `http://127.0.0.1:${ports.blackbox}/-/healthy`),
        ready(procs.alertmanager, `${amUrl()}/-/ready`),
        ready(procs.prometheus, `${promUrl()}/-/ready`),
      ]);
    });

    async function startProxy(): Promise<void> {
      // An environment's proxy: /health answers proxyStatus (200, or 502 when "the app is unreachable").
      servers.proxy = http.createServer((req, res) => {
        res
          .writeHead(req.url === '/health' ? proxyStatus : 404, { 'Content-Type': 'text/plain' })
          .end(proxyStatus === 200 ? 'ok' : 'Bad Gateway');
      });
      await listen(servers.proxy, ports.proxy);
    }

    afterAll(async () => {
      await Promise.all(Object.values(procs).map((p) => stopProcess(p)));
      await Promise.all(Object.values(servers).map((s) => close(s)));
      if (figures.length > 0)
        console.log(`monitoring pipeline figures (local intervals):\n  ${figures.join('\n  ')}`);
      rmSync(work, { recursive: true, force: true });
    });

    it('scrapes Prometheus, Alertmanager, node-exporter, blackbox_exporter and the probe of the shipped production URL', async () => {
      type Target = { labels: Record<string, string>; health: string; scrapeUrl: string };
      const targets = await waitFor(
        'all targets up',
        async () => {
          const res = await fetch(`${promUrl()}/api/v1/targets?state=active`);
          const active = ((await res.json()) as { data: { activeTargets: Target[] } }).data
            .activeTargets;
          return active.length === 5 && active.every((t) => t.health === 'up') ? active : undefined;
        },
        30_000,
      );
      const probe = targets.find((t) => t.labels.job === 'blackbox-http');
      expect(probe?.labels).toMatchObject({
        env: 'production',
        instance: `http://127.0.0.1:${ports.proxy}/health`,
      });
      expect(probe?.scrapeUrl).toContain(
        `127.0.0.1:${ports.blackbox}/probe?module=http_2xx&target=`,
      );
    });

    it('pings the heartbeat URL with the Watchdog once per group_interval', async () => {
      const since = Date.now();
      await waitFor(
        'six heartbeat pings',
        async () => (pings.filter((p) => p.at >= since).length >= 6 ? true : undefined),
        30_000,
        100,
      );
      const recent = pings.filter((p) => p.at >= since);
      for (const p of recent)
        expect(p).toMatchObject({ alertnames: ['Watchdog'], status: 'firing' });
      const gaps = recent.slice(1).map((p, i) => (p.at - (recent[i]?.at ?? 0)) / 1000);
      figures.push(
        `heartbeat ping gaps with group_interval ${HEARTBEAT.groupInterval} / repeat_interval ${HEARTBEAT.repeatInterval}: ${gaps.map((g) => g.toFixed(1)).join(', ')} s`,
      );
      for (const gap of gaps) expect(gap).toBeGreaterThan(1.5);
      for (const gap of gaps) expect(gap).toBeLessThan(3);
      // No Watchdog in Slack: it is not a page.
      expect(slackPosts.map((p) => p.title).join('\n')).not.toContain('Watchdog');
    });

    it('pages BerthProbeBadStatus when the proxy answers 502, BerthProbeFailed when it stops listening', async () => {
      const badGateway = Date.now();
      proxyStatus = 502;
      const status = await slackPostAfter(
        badGateway,
        '[FIRING:1] BerthProbeBadStatus (production)',
      );
      figures.push(
        `proxy answers 502 -> BerthProbeBadStatus on Slack: ${((status.at - badGateway) / 1000).toFixed(1)} s`,
      );
      expect(status.text).toContain(
        '*CRITICAL: Berth production answers HTTP 502 at its public URL*',
      );
      expect(status.text).toContain(
        `instance: http://127.0.0.1:${ports.proxy}/health | value: HTTP 502`,
      );
      expect(status.text).toContain(
        'Check: 502/504: the proxy cannot reach the app: `docker compose -p berth-production',
      );

      const down = Date.now();
      await close(servers.proxy);
      const failed = await slackPostAfter(down, '[FIRING:1] BerthProbeFailed (production)');
      figures.push(
        `proxy stops listening -> BerthProbeFailed on Slack: ${((failed.at - down) / 1000).toFixed(1)} s`,
      );
      expect(failed.text).toContain('got no HTTP answer for over a minute (probe_success = 0)');

      proxyStatus = 200;
      const back = Date.now();
      await startProxy();
      const resolved = await slackPostAfter(back, '[RESOLVED:1] BerthProbeFailed (production)');
      figures.push(
        `proxy back -> BerthProbeFailed resolved on Slack: ${((resolved.at - back) / 1000).toFixed(1)} s`,
      );
    });

    it('pages ContainerUnhealthy from the container-health textfile node-exporter reads', async () => {
      const since = Date.now();
      writeHealth([
        'berth-production-app-1|berth-production|app|Up 1 hour (unhealthy)',
        'berth-production-proxy-1|berth-production|proxy|Up 1 hour',
      ]);
      const post = await slackPostAfter(since, '[FIRING:1] ContainerUnhealthy (production)');
      figures.push(
        `textfile says unhealthy -> ContainerUnhealthy on Slack: ${((post.at - since) / 1000).toFixed(1)} s`,
      );
      expect(post.text).toContain('*WARNING: berth-production/app is unhealthy*');
      writeHealth(['berth-production-app-2|berth-production|app|Up 3 seconds (health: starting)']);
      await slackPostAfter(Date.now(), '[RESOLVED:1] ContainerUnhealthy (production)');
    });

    it('stops the heartbeat when Alertmanager stops, when Prometheus stops, and when both stop (the VM)', async () => {
      // Alertmanager: it sends the pings, so they stop at once.
      await pingAfter(Date.now());
      let stopped = Date.now();
      await stopProcess(procs.alertmanager);
      let last = await pingsStopped(stopped - 5_000, 8_000, 30_000);
      figures.push(
        `Alertmanager stopped -> last ping ${(((last ?? stopped) - stopped) / 1000).toFixed(1)} s after the stop`,
      );
      expect((last ?? 0) - stopped).toBeLessThanOrEqual(500);

      procs.alertmanager = startAlertmanager();
      await ready(procs.alertmanager, `${amUrl()}/-/ready`);
      await pingAfter(Date.now());

      // Prometheus: Alertmanager keeps the Watchdog until its end time, 4 x the resend delay
      // after Prometheus last sent it (shipped: 4 x 1m), and pings until then.
      stopped = Date.now();
      await stopProcess(procs.prometheus);
      last = await pingsStopped(stopped, 8_000, 60_000);
      figures.push(
        `Prometheus stopped -> last ping ${(((last ?? stopped) - stopped) / 1000).toFixed(1)} s after the stop (resend delay 1s: Watchdog valid 4s)`,
      );
      expect(last).toBeDefined();
      expect((last ?? 0) - stopped).toBeLessThan(10_000);

      procs.prometheus = startPrometheus();
      await ready(procs.prometheus, `${promUrl()}/-/ready`);
      await pingAfter(Date.now(), 30_000);

      // The whole VM: both at once.
      stopped = Date.now();
      await Promise.all([stopProcess(procs.alertmanager), stopProcess(procs.prometheus)]);
      last = await pingsStopped(stopped - 5_000, 8_000, 30_000);
      figures.push(
        `Prometheus + Alertmanager stopped ("the VM") -> last ping ${(((last ?? stopped) - stopped) / 1000).toFixed(1)} s after the stop`,
      );
      expect((last ?? 0) - stopped).toBeLessThanOrEqual(500);

      procs.alertmanager = startAlertmanager();
      procs.prometheus = startPrometheus();
      await Promise.all([
        ready(procs.alertmanager, `${amUrl()}/-/ready`),
        ready(procs.prometheus, `${promUrl()}/-/ready`),
      ]);
      await pingAfter(Date.now(), 30_000);
    });

    it('fires AlertmanagerNotificationsFailing when Slack answers 500, and the heartbeat stops so that it still reaches someone', async () => {
      await pingAfter(Date.now());
      const broken = Date.now();
      slackStatus = 500;
      // Something to notify about while Slack is broken.
      const res = await fetch(`${amUrl()}/api/v2/alerts`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify([
          {
            labels: { alertname: 'BerthPipelineTest', env: 'testing', severity: 'critical' },
            annotations: {
              summary: 'test',
              description: 'test',
              value: '1',
              dashboard: 'berth-monitoring',
            },
            startsAt: new Date().toISOString(),
          },
        ]),
      });
      expect(res.status).toBe(200);

      const firing = await waitFor(
        'AlertmanagerNotificationsFailing firing in Prometheus',
        async () => {
          const alerts = await firingInPrometheus('AlertmanagerNotificationsFailing');
          return alerts.length > 0 ? alerts : undefined;
        },
        90_000,
        250,
      );
      const firedAt = Date.now();
      expect(firing[0]?.labels).toMatchObject({ integration: 'slack', severity: 'critical' });
      figures.push(
        `Slack answers 500 -> AlertmanagerNotificationsFailing firing: ${((firedAt - broken) / 1000).toFixed(1)} s (Alertmanager gives up after >= 10 s of retries)`,
      );

      const last = await pingsStopped(broken, 8_000, 60_000);
      figures.push(
        `Slack answers 500 -> last heartbeat ping ${(((last ?? broken) - broken) / 1000).toFixed(1)} s later (${(((last ?? broken) - firedAt) / 1000).toFixed(1)} s after the alert fired)`,
      );
      expect(last).toBeDefined();
      expect(await firingInPrometheus('Watchdog')).toEqual([]);
      // Alertmanager did try to send it to Slack (and failed): it is in Alertmanager, active.
      const am = (await (
        await fetch(
          `${amUrl()}/api/v2/alerts?filter=alertname%3D%22AlertmanagerNotificationsFailing%22`,
        )
      ).json()) as { status: { state: string } }[];
      expect(am.map((a) => a.status.state)).toContain('active');
    });
  },
);
