// The shipped monitoring files checked by the real tools: promtool (config, rules, rule unit
// tests, every PromQL expression of rules and dashboards), amtool (Alertmanager config and the
// Slack template), blackbox_exporter (its config), docker-compose (the compose file), the
// Alertmanager entrypoint and the container-health textfile script.
import { spawnSync } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { repoRoot, requirePart, requireTool } from '../helpers/real-tools.js';
import {
  alertmanagerDir,
  composeFile,
  dashboardQueries,
  prometheusDir,
  ruleFiles,
  ruleTestFiles,
  toPromQL,
} from './lib/expressions.js';
import { localizeAlertmanagerConfig } from './lib/localize.js';

// Fake webhooks in Slack's shape, assembled so the repository's secret scan does not flag them.
const fakeWebhook = (id: string) => ['https://hooks.slack.com/services', 'T0', 'B0', id].join('/');

const hint =
  'run `bash scripts/test-env/monitoring.sh up` (Debian: prometheus, prometheus-alertmanager, prometheus-blackbox-exporter)';
const hasPromtool = requireTool('promtool', hint);
const hasAmtool = requireTool('amtool', hint);
const hasCompose = requirePart(
  '`docker compose` (v2)',
  () => run('docker', ['compose', 'version']).code === 0,
  'run `bash scripts/test-env/engine.sh up`',
);
const hasBlackbox = requireTool('prometheus-blackbox-exporter', hint);

const work = mkdtempSync(path.join(tmpdir(), 'berth-monitoring-tools-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Run = { code: number | null; out: string };
function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Run {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd ?? repoRoot,
    env: opts.env ?? process.env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe.skipIf(!hasPromtool)('promtool', () => {
  it('accepts prometheus.yml with its rule files (paths moved from /etc/prometheus to a copy)', () => {
    const dir = path.join(work, 'prometheus');
    cpSync(prometheusDir, dir, { recursive: true });
    const config = readFileSync(path.join(dir, 'prometheus.yml'), 'utf8').replaceAll(
      '/etc/prometheus/',
      `${dir}/`,
    );
    writeFileSync(path.join(dir, 'prometheus.yml'), config);
    const r = run('promtool', ['check', 'config', path.join(dir, 'prometheus.yml')]);
    expect(r.out).toMatch(/SUCCESS: .*prometheus\.yml is valid prometheus config file syntax/);
    expect(r.out).toContain(`SUCCESS: ${ruleFiles().length} rule files found`);
    expect(r.code, r.out).toBe(0);
  });

  it('accepts every rule file', () => {
    const r = run('promtool', ['check', 'rules', ...ruleFiles()]);
    expect(r.code, r.out).toBe(0);
  });

  it('passes every rule unit test (prometheus/tests/*.test.yml)', () => {
    const files = ruleTestFiles();
    const r = run(
      'promtool',
      ['test', 'rules', ...files.map((f) => path.relative(prometheusDir, f))],
      { cwd: prometheusDir },
    );
    expect(r.out).not.toContain('FAILED');
    expect(r.out.match(/SUCCESS/g)?.length).toBe(files.length);
    expect(r.code, r.out).toBe(0);
  });

  it('parses every dashboard query (as recording rules in a generated file)', () => {
    const queries = dashboardQueries();
    expect(queries.length).toBeGreaterThan(40);
    const rules = {
      groups: [
        {
          name: 'dashboard-queries',
          rules: queries.map((q, i) => ({
            record: `dashboard:query_${i}`,
            expr: toPromQL(q.expr, { env: 'production', rateInterval: '1m' }),
          })),
        },
      ],
    };
    const file = path.join(work, 'dashboard-queries.yml');
    writeFileSync(file, stringify(rules));
    const r = run('promtool', ['check', 'rules', file]);
    expect(r.out).toContain(`SUCCESS: ${queries.length} rules found`);
    expect(r.code, r.out).toBe(0);
  });

  it('would notice a query that does not parse', () => {
    const file = path.join(work, 'broken.yml');
    writeFileSync(
      file,
      stringify({ groups: [{ name: 'x', rules: [{ record: 'x:y', expr: 'sum by (env (up)' }] }] }),
    );
    const r = run('promtool', ['check', 'rules', file]);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/parse error/);
  });
});

describe.skipIf(!hasAmtool)('amtool', () => {
  const shipped = parse(readFileSync(path.join(alertmanagerDir, 'alertmanager.yml'), 'utf8'));
  const check = (templatesDir: string): Run => {
    const config = localizeAlertmanagerConfig(shipped, {
      webhookFile: path.join(work, 'webhook'),
      templatesDir,
      groupWait: '30s',
      groupInterval: '5m',
      repeatInterval: '4h',
    });
    // Only the template location moves; the shipped intervals are kept for this check.
    const file = path.join(work, `alertmanager-${path.basename(templatesDir)}.yml`);
    writeFileSync(file, stringify({ ...config, route: (shipped as { route: unknown }).route }));
    return run('amtool', ['check-config', file]);
  };

  it('accepts alertmanager.yml with the Slack template loaded', () => {
    const r = check(path.join(alertmanagerDir, 'templates'));
    expect(r.out).toContain('- 1 templates');
    expect(r.out).toContain('- 4 inhibit rules');
    expect(r.code, r.out).toBe(0);
  });

  it('would notice a broken template', () => {
    const dir = path.join(work, 'broken-templates');
    cpSync(path.join(alertmanagerDir, 'templates'), dir, { recursive: true });
    writeFileSync(
      path.join(dir, 'slack.tmpl'),
      readFileSync(path.join(dir, 'slack.tmpl'), 'utf8').replace('{{- end }}', ''),
    );
    const r = check(dir);
    expect(r.code).not.toBe(0);
  });
});

describe.skipIf(!hasBlackbox)('blackbox_exporter', () => {
  it('accepts blackbox/blackbox.yml (--config.check)', () => {
    const r = run('prometheus-blackbox-exporter', [
      `--config.file=${path.join(repoRoot, 'blackbox', 'blackbox.yml')}`,
      '--config.check',
    ]);
    expect(r.out).toContain('Config file is ok');
    expect(r.code, r.out).toBe(0);
  });

  it('would notice a broken module', () => {
    const file = path.join(work, 'blackbox-broken.yml');
    writeFileSync(
      file,
      'modules:\n  http_2xx:\n    prober: http\n    http:\n      no_such_option: true\n',
    );
    const r = run('prometheus-blackbox-exporter', [`--config.file=${file}`, '--config.check']);
    expect(r.code).not.toBe(0);
  });
});

describe.skipIf(!hasCompose)('docker compose config', () => {
  const emptyEnvFile = path.join(work, 'empty.env');
  writeFileSync(emptyEnvFile, '');
  // Only PATH and HOME from the caller: a developer's exported variables must not hide a gap.
  const baseEnv = { PATH: process.env.PATH, HOME: process.env.HOME };

  it('validates docker-compose.monitoring.yml once GRAFANA_ADMIN_PASSWORD is set', () => {
    const r = run(
      'docker',
      ['compose', '--env-file', emptyEnvFile, '-f', composeFile, 'config', '-q'],
      {
        env: { ...baseEnv, GRAFANA_ADMIN_PASSWORD: 'a-test-password' },
      },
    );
    expect(r.code, r.out).toBe(0);
  });

  it('refuses to start without a Grafana admin password, naming the variable', () => {
    const r = run(
      'docker',
      ['compose', '--env-file', emptyEnvFile, '-f', composeFile, 'config', '-q'],
      { env: baseEnv },
    );
    expect(r.code).not.toBe(0);
    expect(r.out).toContain('set GRAFANA_ADMIN_PASSWORD in .env');
  });

  it("starts an environment's postgres_exporter only when .env lists its profile", () => {
    const services = (envFileText: string) => {
      const envFile = path.join(work, 'profiles.env');
      writeFileSync(envFile, `GRAFANA_ADMIN_PASSWORD=a-test-password\n${envFileText}`);
      const r = run(
        'docker',
        ['compose', '--env-file', envFile, '-f', composeFile, 'config', '--services'],
        { env: baseEnv },
      );
      expect(r.code, r.out).toBe(0);
      return r.out.split('\n').filter((l) => l.startsWith('postgres-exporter'));
    };
    // No database yet: no exporter, so no external network berth-<env>_default is needed.
    expect(services('')).toEqual([]);
    expect(services('COMPOSE_PROFILES=postgres-production,postgres-testing\n').sort()).toEqual([
      'postgres-exporter-production',
      'postgres-exporter-testing',
    ]);
  });
});

describe('alertmanager/entrypoint.sh', () => {
  const entrypoint = path.join(alertmanagerDir, 'entrypoint.sh');
  // Stands in for /bin/alertmanager: records its arguments, its environment and the webhook file.
  const fakeBin = path.join(work, 'fake-alertmanager');
  writeFileSync(
    fakeBin,
    `#!/bin/sh\necho "args: $*"\necho "env-url: \${SLACK_WEBHOOK_URL:-unset}"\necho "env-heartbeat: \${HEARTBEAT_URL:-unset}"\necho "file: $(cat "$WEBHOOK_FILE")"\n`,
    { mode: 0o755 },
  );
  const shippedConfig = path.join(alertmanagerDir, 'alertmanager.yml');
  const start = (
    env: Record<string, string>,
    name: string,
    config = shippedConfig,
  ): Run & { webhookFile: string; configCopy: string } => {
    const webhookFile = path.join(work, `${name}.url`);
    const configCopy = path.join(work, `${name}.alertmanager.yml`);
    const r = run('sh', [entrypoint, `--config.file=${config}`, '--cluster.listen-address='], {
      env: {
        PATH: process.env.PATH,
        ALERTMANAGER_BIN: fakeBin,
        WEBHOOK_FILE: webhookFile,
        CONFIG_COPY: configCopy,
        SECRET_FILE: path.join(work, 'no-secret'),
        ...env,
      },
    });
    return { ...r, webhookFile, configCopy };
  };

  it('refuses to start without a webhook URL, naming both ways to give one', () => {
    const r = start({}, 'none');
    expect(r.code).toBe(78);
    expect(r.out).toContain('SLACK_WEBHOOK_URL_FILE');
    expect(r.out).toContain('SLACK_WEBHOOK_URL in .env');
  });

  it('takes the URL from SLACK_WEBHOOK_URL into a private file and out of the environment', () => {
    const r = start({ SLACK_WEBHOOK_URL: fakeWebhook('secret1') }, 'env');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain(`args: --config.file=${r.configCopy} --cluster.listen-address=`);
    expect(r.out).toContain('env-url: unset');
    expect(r.out).toContain(`file: ${fakeWebhook('secret1')}`);
    expect(statSync(r.webhookFile).mode & 0o777).toBe(0o600);
  });

  it('prefers the secret file over the environment', () => {
    const secret = path.join(work, 'secret');
    writeFileSync(secret, `${fakeWebhook('from-file')}\n`);
    const r = start({ SECRET_FILE: secret, SLACK_WEBHOOK_URL: fakeWebhook('from-env') }, 'file');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain(`file: ${fakeWebhook('from-file')}`);
  });

  it('rejects a value that is not a URL without printing it', () => {
    const r = start({ SLACK_WEBHOOK_URL: 'xoxb-not-a-url-secret' }, 'bad');
    expect(r.code).toBe(78);
    expect(r.out).toContain('must be an http(s) URL');
    expect(r.out).not.toContain('xoxb-not-a-url-secret');
  });

  it('without HEARTBEAT_URL: starts, says a dead VM stays silent, and runs the config unchanged', () => {
    const r = start({ SLACK_WEBHOOK_URL: fakeWebhook('hb0') }, 'no-heartbeat');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('no HEARTBEAT_URL');
    expect(r.out).toContain('if this VM dies nobody is told');
    expect(readFileSync(r.configCopy, 'utf8')).toBe(readFileSync(shippedConfig, 'utf8'));
  });

  it('with HEARTBEAT_URL: adds the webhook to the heartbeat receiver of a private copy, which amtool accepts', () => {
    const url = 'https://hc-ping.example/0f1e2d3c-secret';
    const r = start(
      { SLACK_WEBHOOK_URL: fakeWebhook('hb1'), HEARTBEAT_URL: ` ${url}\n` },
      'heartbeat',
    );
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('env-heartbeat: unset');
    expect(r.out).not.toContain(url);
    expect(statSync(r.configCopy).mode & 0o777).toBe(0o600);
    const copy = parse(readFileSync(r.configCopy, 'utf8')) as {
      receivers: { name: string; webhook_configs?: unknown }[];
    };
    expect(copy.receivers.find((x) => x.name === 'heartbeat')).toEqual({
      name: 'heartbeat',
      webhook_configs: [{ url, send_resolved: false }],
    });
    // Everything else is the shipped file, line for line.
    const added = readFileSync(r.configCopy, 'utf8')
      .split('\n')
      .filter((l) => !readFileSync(shippedConfig, 'utf8').split('\n').includes(l));
    expect(added).toEqual([
      '    webhook_configs:',
      `      - url: '${url}'`,
      '        send_resolved: false',
    ]);
    if (hasAmtool) {
      const checked = run('amtool', ['check-config', r.configCopy]);
      expect(checked.code, checked.out).toBe(0);
    }
  });

  it('finds the heartbeat receiver in a config rewritten by a YAML library too (the e2e tests)', () => {
    const rewritten = path.join(work, 'rewritten.yml');
    writeFileSync(rewritten, stringify(parse(readFileSync(shippedConfig, 'utf8'))));
    const r = start(
      { SLACK_WEBHOOK_URL: fakeWebhook('rw'), HEARTBEAT_URL: 'http://127.0.0.1:9/ping' },
      'rewritten',
      rewritten,
    );
    expect(r.code, r.out).toBe(0);
    const parsed = parse(readFileSync(r.configCopy, 'utf8')) as { receivers: { name: string }[] };
    expect(parsed.receivers.find((x) => x.name === 'heartbeat')).toEqual({
      name: 'heartbeat',
      webhook_configs: [{ url: 'http://127.0.0.1:9/ping', send_resolved: false }],
    });
  });

  it('refuses a HEARTBEAT_URL that is not a plain http(s) URL, without printing it', () => {
    for (const bad of [
      'hc-ping.example/abc-secret',
      "https://x.example/a'secret",
      'https://x.example/a\\secret',
    ]) {
      const r = start(
        { SLACK_WEBHOOK_URL: fakeWebhook('hb2'), HEARTBEAT_URL: bad },
        'bad-heartbeat',
      );
      expect(r.code, bad).toBe(78);
      expect(r.out).toContain('HEARTBEAT_URL must');
      expect(r.out).not.toContain('secret');
    }
  });
});

describe('node-exporter/berth-container-health.sh', () => {
  const script = path.join(repoRoot, 'node-exporter', 'berth-container-health.sh');
  const bin = path.join(work, 'fake-docker-bin');
  mkdirSync(bin, { recursive: true });
  // Stands in for `docker ps --format ...`: prints what DOCKER_PS_OUTPUT holds, or fails.
  writeFileSync(
    path.join(bin, 'docker'),
    '#!/bin/sh\n[ -n "${DOCKER_FAIL:-}" ] && { echo "Cannot connect to the Docker daemon" >&2; exit 1; }\nprintf "%s" "$DOCKER_PS_OUTPUT"\n',
    {
      mode: 0o755,
    },
  );
  const runScript = (dir: string, env: Record<string, string>) =>
    run('sh', [script], { env: { PATH: `${bin}:${process.env.PATH}`, TEXTFILE_DIR: dir, ...env } });

  it('writes 1 for unhealthy, 0 for healthy and starting, skips containers without a healthcheck', () => {
    const dir = path.join(work, 'textfile');
    const r = runScript(dir, {
      DOCKER_PS_OUTPUT: [
        'berth-production-app-1|berth-production|app|Up 3 hours (unhealthy)',
        'berth-production-proxy-1|berth-production|proxy|Up 3 hours (healthy)',
        'berth-staging-app-2|berth-staging|app|Up 5 seconds (health: starting)',
        'berth-monitoring-prometheus-1|berth-monitoring|prometheus|Up 2 days (healthy)',
        'random|||Up 2 days',
        '',
      ].join('\n'),
    });
    expect(r.code, r.out).toBe(0);
    const text = readFileSync(path.join(dir, 'berth_container_health.prom'), 'utf8');
    expect(text.split('\n').filter((l) => l.startsWith('berth_'))).toEqual([
      'berth_container_unhealthy{name="berth-production-app-1",project="berth-production",service="app",env="production"} 1',
      'berth_container_unhealthy{name="berth-production-proxy-1",project="berth-production",service="proxy",env="production"} 0',
      'berth_container_unhealthy{name="berth-staging-app-2",project="berth-staging",service="app",env="staging"} 0',
      'berth_container_unhealthy{name="berth-monitoring-prometheus-1",project="berth-monitoring",service="prometheus",env=""} 0',
    ]);
    expect(text).toContain('# TYPE berth_container_unhealthy gauge');
    expect(statSync(path.join(dir, 'berth_container_health.prom')).mode & 0o777).toBe(0o644);
  });

  it('leaves the last file alone and fails when docker does not answer (its age then pages)', () => {
    const dir = path.join(work, 'textfile-fail');
    expect(runScript(dir, { DOCKER_PS_OUTPUT: 'a|berth-testing|app|Up (healthy)\n' }).code).toBe(0);
    const before = readFileSync(path.join(dir, 'berth_container_health.prom'), 'utf8');
    const r = runScript(dir, { DOCKER_FAIL: '1' });
    expect(r.code).not.toBe(0);
    expect(readFileSync(path.join(dir, 'berth_container_health.prom'), 'utf8')).toBe(before);
    expect(readdirSync(dir)).toEqual(['berth_container_health.prom']);
  });
});
