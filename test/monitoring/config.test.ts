// Structure of what cannot run here (Grafana, cAdvisor, the compose stack) and the promises the
// README makes about the shipped files. Real-binary checks are in *.int.test.ts next to this.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { targetFiles, targetsDir } from '../../src/deploy/commands/targets.js';
import { repoRoot } from '../helpers/real-tools.js';
import {
  alertmanagerDir,
  composeFile,
  dashboardQueries,
  loadDashboards,
  loadRules,
  metricNames,
  prometheusDir,
  ruleTestFiles,
} from './lib/expressions.js';

type Service = {
  image: string;
  restart?: string;
  ports?: string[];
  healthcheck?: { test: string[] };
  volumes?: string[];
  command?: string[];
  environment?: Record<string, string>;
  networks?: string[];
  secrets?: string[];
  profiles?: string[];
  read_only?: boolean;
  privileged?: boolean;
  extra_hosts?: string[];
};
const compose = parse(readFileSync(composeFile, 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
  networks: Record<string, { external?: boolean; name?: string }>;
  secrets: Record<string, { file: string }>;
};
const svc = (name: string): Service => {
  const s = compose.services[name];
  if (s === undefined) throw new Error(`no service ${name}`);
  return s;
};

describe('docker-compose.monitoring.yml', () => {
  const ports: Record<string, [string, number, number]> = {
    prometheus: ['${MONITORING_BIND:-127.0.0.1}', 8900, 9090],
    alertmanager: ['${MONITORING_BIND:-127.0.0.1}', 8903, 9093],
    'node-exporter': ['${MONITORING_BIND:-127.0.0.1}', 8905, 9100],
    'blackbox-exporter': ['${MONITORING_BIND:-127.0.0.1}', 8915, 9115],
    cadvisor: ['${MONITORING_BIND:-127.0.0.1}', 8940, 8080],
    grafana: ['${GRAFANA_BIND:-0.0.0.0}', 8950, 3000],
  };

  const envs = ['production', 'staging', 'testing'];
  const exporters = envs.map((env) => `postgres-exporter-${env}`);

  it('runs the six services and one postgres_exporter per environment, each with a pinned image that .env can replace', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      [...Object.keys(ports), ...exporters].sort(),
    );
    for (const [name, s] of Object.entries(compose.services)) {
      const m = /^\$\{([A-Z_]+_IMAGE):-([^}]+)\}$/.exec(s.image);
      expect(m, `${name} image ${s.image}`).not.toBeNull();
      const tag = m?.[2]?.split(':').pop() ?? '';
      expect(tag, `${name} tag`).toMatch(/^v?\d+\.\d+\.\d+$/);
    }
  });

  it('publishes the agreed ports; only Grafana listens on all interfaces by default', () => {
    for (const [name, [bind, host, container]] of Object.entries(ports)) {
      expect(svc(name).ports, name).toEqual([`${bind}:${host}:${container}`]);
    }
  });

  it("gives each environment's postgres_exporter only its own network and password file, behind a profile, with no host port", () => {
    for (const env of envs) {
      const s = svc(`postgres-exporter-${env}`);
      expect(s.image).toBe(
        '${POSTGRES_EXPORTER_IMAGE:-quay.io/prometheuscommunity/postgres-exporter:v0.17.1}',
      );
      expect(s.profiles).toEqual([`postgres-${env}`]);
      expect(s.ports).toBeUndefined();
      expect(s.read_only).toBe(true);
      expect(s.networks).toEqual(['default', `db-${env}`]);
      expect(compose.networks[`db-${env}`]).toEqual({
        external: true,
        name: `berth-${env}_default`,
      });
      expect(s.environment).toEqual({
        DATA_SOURCE_URI: `db:5432/\${POSTGRES_DB_${env.toUpperCase()}:-berth}?sslmode=disable`,
        DATA_SOURCE_USER: `\${POSTGRES_USER_${env.toUpperCase()}:-berth_monitor}`,
        DATA_SOURCE_PASS_FILE: `/run/secrets/postgres_password_${env}`,
      });
      expect(s.secrets).toEqual([`postgres_password_${env}`]);
      expect(compose.secrets[`postgres_password_${env}`]?.file).toBe(
        `\${POSTGRES_PASSWORD_FILE_${env.toUpperCase()}:-./secrets/postgres-${env}.password}`,
      );
    }
    expect(readFileSync(composeFile, 'utf8')).not.toMatch(/postgres(ql)?:\/\/[^\s]*:[^\s]*@/);
  });

  it('restarts, health-checks and rotates logs for every service', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      expect(s.restart, name).toBe('unless-stopped');
      expect(s.healthcheck?.test[0], name).toBe('CMD');
    }
  });

  it('keeps Prometheus and Grafana data in named volumes, with a retention limit', () => {
    expect(Object.keys(compose.volumes)).toEqual(
      expect.arrayContaining(['prometheus-data', 'grafana-data']),
    );
    expect(svc('prometheus').volumes).toContain('prometheus-data:/prometheus');
    expect(svc('grafana').volumes).toContain('grafana-data:/var/lib/grafana');
    expect(svc('prometheus').command).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^--storage\.tsdb\.retention\.time=\$\{PROMETHEUS_RETENTION_TIME:-15d\}$/,
        ),
      ]),
    );
  });

  it('has Grafana take its admin password from .env with no default, anonymous access and sign-up off', () => {
    const env = svc('grafana').environment ?? {};
    expect(env.GF_SECURITY_ADMIN_PASSWORD).toMatch(/^\$\{GRAFANA_ADMIN_PASSWORD:\?.+\}$/);
    expect(env.GF_AUTH_ANONYMOUS_ENABLED).toBe('false');
    expect(env.GF_USERS_ALLOW_SIGN_UP).toBe('false');
  });

  it('puts Prometheus on the shared external network of the apps', () => {
    expect(compose.networks.berth).toEqual({ external: true, name: '${BERTH_NETWORK:-berth}' });
    expect(svc('prometheus').networks).toContain('berth');
  });

  it('mounts the repo folders the configs point at, and keeps the Slack webhook out of the file', () => {
    expect(svc('prometheus').volumes).toContain('./prometheus:/etc/prometheus:ro');
    expect(svc('alertmanager').volumes).toContain('./alertmanager:/etc/alertmanager:ro');
    expect(svc('blackbox-exporter').volumes).toEqual(['./blackbox:/etc/blackbox_exporter:ro']);
    expect(svc('blackbox-exporter').command).toEqual([
      '--config.file=/etc/blackbox_exporter/blackbox.yml',
    ]);
    expect(svc('grafana').volumes).toEqual(
      expect.arrayContaining([
        './grafana/provisioning:/etc/grafana/provisioning:ro',
        './grafana/dashboards:/etc/grafana/dashboards:ro',
      ]),
    );
    expect(compose.secrets.slack_webhook_url?.file).toBe('${SLACK_WEBHOOK_URL_FILE:-/dev/null}');
    expect(readFileSync(composeFile, 'utf8')).not.toMatch(/hooks\.slack\.com/);
  });

  it('hands HEARTBEAT_URL to Alertmanager from .env (empty: no heartbeat), never a URL in the file', () => {
    expect(svc('alertmanager').environment?.HEARTBEAT_URL).toBe('${HEARTBEAT_URL:-}');
    expect(readFileSync(composeFile, 'utf8')).not.toMatch(/hc-ping\.com|cronitor\.link/);
  });

  it("lets the blackbox exporter reach the proxies' published ports through the host gateway", () => {
    expect(svc('blackbox-exporter').extra_hosts).toEqual(['host.docker.internal:host-gateway']);
  });

  it('has node-exporter read the textfile directory the container-health script writes, through its /host mount', () => {
    expect(svc('node-exporter').command).toContain(
      '--collector.textfile.directory=/host/var/lib/node_exporter/textfile_collector',
    );
    expect(svc('node-exporter').volumes).toContain('/:/host:ro,rslave');
    const script = readFileSync(
      path.join(repoRoot, 'node-exporter', 'berth-container-health.sh'),
      'utf8',
    );
    expect(script).toContain(
      'TEXTFILE_DIR="${TEXTFILE_DIR:-/var/lib/node_exporter/textfile_collector}"',
    );
  });

  it('runs every container but cAdvisor without extra privileges', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      expect(s.privileged ?? false, name).toBe(name === 'cadvisor');
    }
  });
});

describe('prometheus rules', () => {
  const rules = loadRules();
  const alerts = rules.filter((r) => r.alert !== undefined);
  const tests = ruleTestFiles()
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
  const dashboardUids = new Set(loadDashboards().map((d) => d.uid));
  // ContainerKilled fires when nothing runs: its value is always "0 containers". The Watchdog
  // always fires, with no value and no target of its own.
  // BerthBackupMissing fires on an absent metric: there is no value to show.
  const constantValue = new Set(['BerthBackupMissing', 'ContainerKilled', 'Watchdog']);
  // Rules from before runbook annotations; every newer rule must say what to check.
  const withoutRunbook = new Set([
    'BerthHighErrorRatio',
    'BerthHighLatencyP95',
    'BerthServiceDown',
    'ContainerKilled',
    'ContainerMemoryNearLimit',
    'ContainerRestarting',
    'HostCpuHigh',
    'HostDiskSpaceLow',
    'HostDiskWillFillIn24h',
    'HostMemoryHigh',
    'PrometheusTargetMissing',
  ]);

  it('ships every alert the README lists', () => {
    expect([...new Set(alerts.map((a) => a.alert))].sort()).toEqual([
      'AlertmanagerConfigReloadFailed',
      'AlertmanagerNotificationsFailing',
      'BerthBackupMissing',
      'BerthBackupTooOld',
      'BerthCertificateExpiring',
      'BerthDatabaseConnectionsHigh',
      'BerthDatabaseDown',
      'BerthHighErrorRatio',
      'BerthHighLatencyP95',
      'BerthProbeBadStatus',
      'BerthProbeFailed',
      'BerthServiceDown',
      'ContainerHealthUnknown',
      'ContainerKilled',
      'ContainerMemoryNearLimit',
      'ContainerRestarting',
      'ContainerUnhealthy',
      'HostClockNotSynchronising',
      'HostClockSkew',
      'HostCpuHigh',
      'HostDiskSpaceLow',
      'HostDiskWillFillIn24h',
      'HostInodesLow',
      'HostMemoryHigh',
      'HostOomKill',
      'PrometheusConfigReloadFailed',
      'PrometheusRuleEvaluationFailures',
      'PrometheusSamplesRejected',
      'PrometheusTargetMissing',
      'PrometheusTsdbWriteFailing',
      'Watchdog',
    ]);
    expect(rules.filter((r) => r.record !== undefined).map((r) => r.record)).toEqual(
      expect.arrayContaining([
        'berth:http_error_rate:ratio5m',
        'berth:http_request_duration_seconds:p95_5m',
      ]),
    );
  });

  it.each(alerts.map((a) => [`${a.alert} (${a.labels?.severity})`, a] as const))(
    '%s has severity, for:, summary, description with value and target, a runbook and a dashboard',
    (_name, alert) => {
      const name = alert.alert ?? '';
      const a = alert.annotations ?? {};
      if (name === 'Watchdog') {
        // Not a page: severity none, no for:, routed to the heartbeat only.
        expect(alert.labels?.severity).toBe('none');
        expect(alert.for).toBeUndefined();
      } else {
        expect(['critical', 'warning']).toContain(alert.labels?.severity);
        expect(alert.for).toMatch(/^\d+[smh]$/);
        expect(a.description).toMatch(/\$labels\.(instance|env|service)/);
      }
      expect(a.summary).toBeTruthy();
      expect(a.value).toBeTruthy();
      if (!constantValue.has(name)) expect(`${a.description} ${a.value}`).toContain('$value');
      if (!withoutRunbook.has(name))
        expect(a.runbook, `${name} runbook`).toMatch(/\S{3,}.*\S{3,}/s);
      expect(dashboardUids.has(a.dashboard ?? '')).toBe(true);
    },
  );

  it('stops the Watchdog while Slack deliveries fail, so the heartbeat pages instead', () => {
    const watchdog = alerts.find((a) => a.alert === 'Watchdog');
    expect(watchdog?.expr).toContain('vector(1)');
    expect(watchdog?.expr).toMatch(
      /unless on \(\) ALERTS\{alertname="AlertmanagerNotificationsFailing", alertstate="firing", integration="slack"\}/,
    );
  });

  it('has a promtool test for every alert and every recording rule', () => {
    for (const a of alerts) expect(tests, a.alert).toMatch(new RegExp(`alertname: ${a.alert}\\b`));
    for (const r of rules.filter((x) => x.record !== undefined)) {
      expect(tests, r.record).toMatch(new RegExp(`expr: ${r.record?.replaceAll(':', ':')}\\s`));
    }
  });
});

describe('prometheus targets', () => {
  const prometheusYml = parse(readFileSync(path.join(prometheusDir, 'prometheus.yml'), 'utf8')) as {
    scrape_configs: {
      job_name: string;
      file_sd_configs?: { files: string[] }[];
      params?: Record<string, string[]>;
    }[];
  };
  const job = (name: string) => prometheusYml.scrape_configs.find((j) => j.job_name === name);

  it('lists no environment by hand: the deploys write every target file', () => {
    expect(readdirSync(path.join(prometheusDir, 'targets'))).toEqual(['README.md']);
  });

  it('reads one app file and one probe file per environment, the names the deploy writes', () => {
    const files = targetFiles('/etc/prometheus/targets', 'staging');
    expect(job('berth-app')?.file_sd_configs).toEqual([
      { files: ['/etc/prometheus/targets/app-*.yml'] },
    ]);
    expect(job('blackbox-http')?.file_sd_configs).toEqual([
      { files: ['/etc/prometheus/targets/probe-*.yml'] },
    ]);
    expect(files.app).toMatch(/^\/etc\/prometheus\/targets\/app-[a-z]+\.yml$/);
    expect(files.probe).toMatch(/^\/etc\/prometheus\/targets\/probe-[a-z]+\.yml$/);
    expect(job('blackbox-http')?.params).toEqual({ module: ['http_2xx'] });
    const blackbox = parse(
      readFileSync(path.join(repoRoot, 'blackbox', 'blackbox.yml'), 'utf8'),
    ) as { modules: Record<string, unknown> };
    expect(Object.keys(blackbox.modules)).toContain('http_2xx');
  });

  it("reads each environment's database exporter from its own file, postgres-<env>.yml, and ships none", () => {
    const prometheusYml = parse(
      readFileSync(path.join(prometheusDir, 'prometheus.yml'), 'utf8'),
    ) as { scrape_configs: { job_name: string; file_sd_configs?: { files: string[] }[] }[] };
    const job = prometheusYml.scrape_configs.find((j) => j.job_name === 'postgres');
    expect(job?.file_sd_configs).toEqual([{ files: ['/etc/prometheus/targets/postgres-*.yml'] }]);
    // A shipped file would page PrometheusTargetMissing on every VM whose database is not set up.
    expect(
      readdirSync(path.join(prometheusDir, 'targets')).filter((f) => f.startsWith('postgres-')),
    ).toEqual([]);
  });

  it('Prometheus sees the directory the deploy writes: <remote dir>/monitoring/prometheus/targets', () => {
    const compose = parse(
      readFileSync(path.join(repoRoot, 'docker-compose.monitoring.yml'), 'utf8'),
    ) as {
      services: { prometheus: { volumes: string[] } };
    };
    expect(compose.services.prometheus.volumes).toContain('./prometheus:/etc/prometheus:ro');
    expect(readFileSync(path.join(repoRoot, 'init_setup.sh'), 'utf8')).toContain(
      'local dir="$BERTH_REMOTE_DIR/monitoring"',
    );
    expect(targetsDir('/opt/berth')).toBe('/opt/berth/monitoring/prometheus/targets');
  });
});

describe('alertmanager', () => {
  const am = parse(readFileSync(path.join(alertmanagerDir, 'alertmanager.yml'), 'utf8')) as {
    route: {
      group_by: string[];
      routes: {
        receiver: string;
        matchers: string[];
        group_interval?: string;
        repeat_interval?: string;
      }[];
    };
    inhibit_rules: { source_matchers: string[]; target_matchers: string[]; equal: string[] }[];
    receivers: ({ name: string; slack_configs?: Record<string, unknown>[] } & Record<
      string,
      unknown
    >)[];
  };
  const amText = readFileSync(path.join(alertmanagerDir, 'alertmanager.yml'), 'utf8');
  const template = readFileSync(path.join(alertmanagerDir, 'templates', 'slack.tmpl'), 'utf8');

  it('groups by alertname and env and routes by severity', () => {
    expect(am.route.group_by).toEqual(['alertname', 'env']);
    expect(am.route.routes.map((r) => r.matchers)).toEqual([
      ['alertname="Watchdog"'],
      ['severity="critical"'],
      ['severity="warning"'],
    ]);
  });

  it('pings the heartbeat every minute: Watchdog first, re-sent each group_interval (repeat_interval just below it)', () => {
    const heartbeat = am.route.routes[0];
    expect(heartbeat).toMatchObject({
      receiver: 'heartbeat',
      group_interval: '1m',
      repeat_interval: '50s',
    });
    // No integration in the file: entrypoint.sh adds HEARTBEAT_URL's webhook below this exact line.
    expect(am.receivers.find((r) => r.name === 'heartbeat')).toEqual({ name: 'heartbeat' });
    expect(amText.split('\n')).toContain('  - name: heartbeat');
    expect(readFileSync(path.join(alertmanagerDir, 'entrypoint.sh'), 'utf8')).toContain(
      "marker='  - name: heartbeat'",
    );
  });

  it('inhibits warnings by a critical alert for the same target', () => {
    expect(am.inhibit_rules[0]).toMatchObject({
      source_matchers: ['severity="critical"'],
      target_matchers: ['severity="warning"'],
    });
    expect(am.inhibit_rules[0]?.equal).toEqual(
      expect.arrayContaining(['alertname', 'env', 'instance']),
    );
  });

  it('sends to Slack with resolved messages, the URL from a file, the text from the template', () => {
    for (const r of am.receivers.filter((x) => x.name !== 'heartbeat')) {
      for (const s of r.slack_configs ?? []) {
        expect(s.send_resolved).toBe(true);
        expect(s.api_url).toBeUndefined();
        expect(s.api_url_file).toBe('/tmp/slack_webhook_url');
        expect(s.title).toContain('berth.slack.title');
        expect(s.text).toContain('berth.slack.text');
      }
    }
    for (const name of ['berth.slack.title', 'berth.slack.text', 'berth.slack.color']) {
      expect(template).toContain(`define "${name}"`);
    }
  });
});

describe('grafana', () => {
  const dashboards = loadDashboards();
  const datasource = parse(
    readFileSync(path.join(repoRoot, 'grafana/provisioning/datasources/prometheus.yml'), 'utf8'),
  ) as {
    datasources: { uid: string; url: string; type: string }[];
  };
  const provider = parse(
    readFileSync(path.join(repoRoot, 'grafana/provisioning/dashboards/berth.yml'), 'utf8'),
  ) as {
    providers: { options: { path: string } }[];
  };

  it('provisions the Prometheus datasource by service name and the dashboards folder compose mounts', () => {
    expect(datasource.datasources).toEqual([
      expect.objectContaining({
        uid: 'prometheus',
        type: 'prometheus',
        url: 'http://prometheus:9090',
      }),
    ]);
    expect(provider.providers[0]?.options.path).toBe('/etc/grafana/dashboards');
  });

  it('ships the four dashboards', () => {
    expect(dashboards.map((d) => d.uid).sort()).toEqual([
      'berth-containers',
      'berth-host',
      'berth-monitoring',
      'berth-service',
    ]);
  });

  it.each(dashboards.map((d) => [d.uid, d] as const))(
    '%s: unique panel ids, datasource by uid, sane layout',
    (_uid, d) => {
      const ids = d.panels.map((p) => p.id);
      expect(new Set(ids).size).toBe(ids.length);
      for (const p of d.panels.filter((x) => x.type !== 'row')) {
        expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: 'prometheus' });
        expect(p.targets?.length, p.title).toBeGreaterThan(0);
        for (const t of p.targets ?? []) expect(t.datasource?.uid, p.title).toBe('prometheus');
        expect(new Set(p.targets?.map((t) => t.refId)).size, p.title).toBe(p.targets?.length);
        expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      }
    },
  );

  const metricsOf = (uid: string) =>
    new Set(
      dashboardQueries(dashboards.filter((d) => d.uid === uid)).flatMap((q) => metricNames(q.expr)),
    );

  it('Host shows CPU, load, memory, disk and network', () => {
    expect([...metricsOf('berth-host')]).toEqual(
      expect.arrayContaining([
        'node_cpu_seconds_total',
        'node_load1',
        'node_memory_MemAvailable_bytes',
        'node_filesystem_avail_bytes',
        'node_disk_read_bytes_total',
        'node_network_receive_bytes_total',
      ]),
    );
  });

  it('Containers shows CPU, memory and restarts per container', () => {
    expect([...metricsOf('berth-containers')]).toEqual(
      expect.arrayContaining([
        'container_cpu_usage_seconds_total',
        'container_memory_working_set_bytes',
        'container_last_seen',
      ]),
    );
  });

  it('Monitoring services shows targets up, firing alerts, Prometheus and Alertmanager health', () => {
    expect([...metricsOf('berth-monitoring')]).toEqual(
      expect.arrayContaining([
        'up',
        'ALERTS',
        'prometheus_config_last_reload_successful',
        'alertmanager_notifications_failed_total',
      ]),
    );
  });

  it('Service shows requests/s, error ratio, p50/p95/p99 per route and env, the version and deploy markers', () => {
    const service = dashboards.find((d) => d.uid === 'berth-service');
    const exprs = dashboardQueries(service ? [service] : []).map((q) => q.expr);
    for (const quantile of ['0.5', '0.95', '0.99']) {
      expect(exprs).toContainEqual(
        expect.stringMatching(
          new RegExp(`histogram_quantile\\(${quantile}, sum by \\(env, route, le\\)`),
        ),
      );
    }
    expect(exprs).toContainEqual(expect.stringContaining('berth:http_error_rate:ratio5m'));
    expect(exprs).toContainEqual(expect.stringContaining('app_info'));
    expect(service?.annotations.list.find((a) => a.name === 'Deploys')?.expr).toContain('app_info');
    expect(service?.templating.list.map((v) => v.name)).toEqual(['env']);
  });

  it('Service has a Database row: up, connections against the limit, transactions/s, backup age', () => {
    const service = dashboards.find((d) => d.uid === 'berth-service');
    const panels = service?.panels ?? [];
    const row = panels.findIndex((p) => p.type === 'row' && p.title === 'Database');
    expect(row).toBeGreaterThan(-1);
    const below = panels.slice(row + 1);
    const exprs = dashboardQueries(
      service ? [{ ...service, panels: below, annotations: { list: [] } }] : [],
    ).map((q) => q.expr);
    for (const expr of exprs) expect(expr).toContain('env=~"$env"');
    expect([...new Set(exprs.flatMap((e) => metricNames(e)))].sort()).toEqual([
      'berth_backup_last_success_timestamp_seconds',
      'pg_settings_max_connections',
      'pg_stat_database_numbackends',
      'pg_stat_database_xact_commit',
      'pg_stat_database_xact_rollback',
      'pg_up',
    ]);
    for (const p of below)
      expect(p.gridPos.y, p.title).toBeGreaterThan(panels[row]?.gridPos.y ?? 0);
  });
});

describe('metricNames', () => {
  it('finds metric names and skips functions, keywords, labels and grouping', () => {
    expect(
      metricNames(
        'sum by (env, le) (rate(http_request_duration_seconds_bucket{job="a", route=~"x|y"}[5m])) and on (env) up == 0',
      ),
    ).toEqual(['http_request_duration_seconds_bucket', 'up']);
    expect(metricNames('count(ALERTS{alertstate="firing"}) or vector(0)')).toEqual(['ALERTS']);
    expect(metricNames('berth:http_errors:rate5m / berth:http_requests:rate5m offset 2m')).toEqual([
      'berth:http_errors:rate5m',
      'berth:http_requests:rate5m',
    ]);
  });
});
