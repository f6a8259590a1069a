// The e2e test may only change addresses and intervals of the shipped configuration. These
// tests run the localize functions on the real files and check that exactly that changed.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { appTargetsFile } from '../../src/deploy/commands/targets.js';
import { alertmanagerDir, prometheusDir, ruleFiles } from './lib/expressions.js';
import {
  changedPaths,
  composeFlags,
  interpolate,
  localizeAlertmanagerConfig,
  localizePrometheusConfig,
  localizeRules,
  localizeTargetsFile,
} from './lib/localize.js';

const read = (file: string): unknown => parse(readFileSync(file, 'utf8'));
const shippedPrometheus = read(path.join(prometheusDir, 'prometheus.yml')) as {
  scrape_configs: { job_name: string }[];
};
const shippedAlertmanager = read(path.join(alertmanagerDir, 'alertmanager.yml'));

const local = {
  scrapeInterval: '1s',
  evaluationInterval: '1s',
  ruleFiles: ['/tmp/x/rules/service.yml'],
  alertmanagers: ['127.0.0.1:19093'],
  jobs: {
    prometheus: { targets: ['127.0.0.1:19090'] },
    alertmanager: { targets: ['127.0.0.1:19093'] },
    'node-exporter': { targets: ['127.0.0.1:19100'] },
    cadvisor: null,
    'berth-app': { file: '/tmp/x/targets.yml' },
    'blackbox-exporter': { targets: ['127.0.0.1:19115'] },
    'blackbox-http': { file: '/tmp/x/probe.yml', probeVia: '127.0.0.1:19115' },
    postgres: { file: '/tmp/x/postgres.yml' },
  },
};

describe('localizePrometheusConfig', () => {
  const result = localizePrometheusConfig(shippedPrometheus, local) as typeof shippedPrometheus;

  it('changes only intervals, rule file paths and Alertmanager addresses at the top level', () => {
    const { scrape_configs: _a, ...before } = shippedPrometheus as Record<string, unknown>;
    const { scrape_configs: _b, ...after } = result as Record<string, unknown>;
    const changed = changedPaths(before, after);
    for (const p of changed) {
      expect(p).toMatch(
        /^(global\.(scrape_interval|evaluation_interval|scrape_timeout)|rule_files\[\d+\]|alerting\.alertmanagers\[0\]\.static_configs\[0\]\.targets\[\d+\])$/,
      );
    }
    expect(changed).toContain('global.scrape_interval');
    expect(
      (result as unknown as { global: { external_labels: unknown } }).global.external_labels,
    ).toEqual({
      grafana_url: '${GRAFANA_URL}',
    });
  });

  it('changes only the target addresses of each job, and leaves out a job mapped to null', () => {
    const byName = (cfg: typeof shippedPrometheus) =>
      new Map(cfg.scrape_configs.map((j) => [j.job_name, j]));
    const before = byName(shippedPrometheus);
    const after = byName(result);
    expect([...after.keys()].sort()).toEqual([
      'alertmanager',
      'berth-app',
      'blackbox-exporter',
      'blackbox-http',
      'node-exporter',
      'postgres',
      'prometheus',
    ]);
    expect(before.has('cadvisor')).toBe(true);
    for (const [name, job] of after) {
      for (const p of changedPaths(before.get(name), job)) {
        expect(p, `${name}: ${p}`).toMatch(
          /^(static_configs\[0\]\.targets\[\d+\]|file_sd_configs\[0\]\.files\[0\]|relabel_configs\[\d+\]\.replacement)$/,
        );
      }
    }
    // The probe job keeps its module and relabelling; only the exporter's address moves.
    expect(changedPaths(before.get('blackbox-http'), after.get('blackbox-http'))).toEqual([
      'file_sd_configs[0].files[0]',
      'relabel_configs[2].replacement',
    ]);
    expect(after.get('blackbox-http')).toMatchObject({
      params: { module: ['http_2xx'] },
      relabel_configs: [{}, {}, { target_label: '__address__', replacement: '127.0.0.1:19115' }],
    });
    expect(after.get('prometheus')).toMatchObject({
      static_configs: [{ targets: ['127.0.0.1:19090'] }],
    });
    expect(after.get('berth-app')).toMatchObject({
      file_sd_configs: [{ files: ['/tmp/x/targets.yml'] }],
    });
  });

  it('refuses a job it has no local address for, so new jobs need an explicit decision', () => {
    const { cadvisor: _c, ...withoutCadvisor } = local.jobs;
    expect(() =>
      localizePrometheusConfig(shippedPrometheus, { ...local, jobs: withoutCadvisor }),
    ).toThrow(/job "cadvisor" has no local address/);
  });

  it('does not modify its input', () => {
    const copy = structuredClone(shippedPrometheus);
    localizePrometheusConfig(shippedPrometheus, local);
    expect(shippedPrometheus).toEqual(copy);
  });
});

describe('localizeTargetsFile', () => {
  // A targets file as the deploy writes it on the VM.
  const deployed: unknown = parse(
    appTargetsFile('production', { basePath: '', port: 8000, bind: '0.0.0.0' }),
  );

  it('maps addresses and keeps the labels (env, metrics path)', () => {
    const result = localizeTargetsFile(deployed, {
      'berth-production-app:8000': '127.0.0.1:18000',
    });
    expect(result).toEqual([
      {
        targets: ['127.0.0.1:18000'],
        labels: { env: 'production', __metrics_path__: '/metrics' },
      },
    ]);
    expect(changedPaths(deployed, result)).toEqual(['[0].targets[0]']);
  });

  it('names an address it cannot map', () => {
    expect(() => localizeTargetsFile(deployed, {})).toThrow(
      /no local address for berth-production-app:8000/,
    );
  });
});

describe('localizeRules', () => {
  it('changes every for: and nothing else, in every shipped rule file', () => {
    for (const file of ruleFiles()) {
      const shipped = read(file);
      const result = localizeRules(shipped, '2s');
      const changed = changedPaths(shipped, result);
      for (const p of changed) expect(p, file).toMatch(/^groups\[\d+\]\.rules\[\d+\]\.for$/);
      // Every alert but the always-firing Watchdog has a for:.
      const alerts = (
        shipped as { groups: { rules: { alert?: string; for?: string }[] }[] }
      ).groups.flatMap((g) => g.rules.filter((r) => r.alert !== undefined && r.for !== undefined));
      expect(changed.length, file).toBe(alerts.length);
    }
  });
});

describe('localizeAlertmanagerConfig', () => {
  const localAm = {
    webhookFile: '/tmp/x/webhook',
    templatesDir: '/tmp/x/templates',
    groupWait: '1s',
    groupInterval: '2s',
    repeatInterval: '1h',
  };
  const result = localizeAlertmanagerConfig(shippedAlertmanager, localAm);

  it('changes only grouping intervals, the webhook file and the templates directory', () => {
    const changed = changedPaths(shippedAlertmanager, result);
    for (const p of changed) {
      expect(p).toMatch(
        /^(templates\[0\]|route(\.routes\[\d+\])?\.(group_wait|group_interval|repeat_interval)|receivers\[\d+\]\.slack_configs\[\d+\]\.api_url_file)$/,
      );
    }
    expect(changed).toContain('receivers[0].slack_configs[0].api_url_file');
    expect(changed).toContain('route.group_wait');
  });

  it('keeps routing, grouping, inhibition and the message template references as shipped', () => {
    const shipped = shippedAlertmanager as Record<string, unknown>;
    const after = result as Record<string, unknown>;
    expect(after.inhibit_rules).toEqual(shipped.inhibit_rules);
    expect((after.route as { group_by: unknown }).group_by).toEqual(
      (shipped.route as { group_by: unknown }).group_by,
    );
    const slack = (after.receivers as { slack_configs: Record<string, unknown>[] }[])[0]
      ?.slack_configs[0];
    expect(slack).toMatchObject({
      send_resolved: true,
      title: '{{ template "berth.slack.title" . }}',
    });
  });

  it('gives the heartbeat route its own intervals when asked, and keeps its group_wait', () => {
    const withHeartbeat = localizeAlertmanagerConfig(shippedAlertmanager, {
      ...localAm,
      heartbeat: { groupInterval: '2s', repeatInterval: '1s' },
    }) as { route: { routes: Record<string, unknown>[] } };
    const shipped = (shippedAlertmanager as { route: { routes: Record<string, unknown>[] } }).route
      .routes[0];
    expect(shipped).toMatchObject({
      receiver: 'heartbeat',
      group_wait: '0s',
      group_interval: '1m',
      repeat_interval: '50s',
    });
    expect(withHeartbeat.route.routes[0]).toEqual({
      ...shipped,
      group_interval: '2s',
      repeat_interval: '1s',
    });
    expect(withHeartbeat.route.routes[1]).toMatchObject({
      receiver: 'slack-critical',
      group_wait: '1s',
      repeat_interval: '1h',
    });
  });
});

describe('composeFlags', () => {
  it('interpolates like compose and drops the path and address flags', () => {
    const command = [
      '--config.file=/etc/x.yml',
      '--retention=${RET:-15d}',
      '--a=${A}',
      '--b=$$HOME',
      '--cluster.listen-address=',
    ];
    expect(composeFlags(command, ['--config.file'], { A: 'set' })).toEqual([
      '--retention=15d',
      '--a=set',
      '--b=$HOME',
      '--cluster.listen-address=',
    ]);
    expect(composeFlags(command, ['--config.file'], { RET: '30d' })).toContain('--retention=30d');
  });

  it('fails like compose on a required variable', () => {
    expect(() => interpolate('${P:?set P in .env}', {})).toThrow('P: set P in .env');
  });
});
