// The shipped monitoring files checked by the real tools: promtool (config, rules, rule unit
// tests, every PromQL expression of rules and dashboards), amtool (Alertmanager config and the
// Slack template), docker-compose (the compose file) and the Alertmanager entrypoint.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

const hint = 'run `bash scripts/test-env/monitoring.sh up` (Debian: prometheus, prometheus-alertmanager)';
const hasPromtool = requireTool('promtool', hint);
const hasAmtool = requireTool('amtool', hint);
const hasCompose = requirePart('`docker compose` (v2)', () => run('docker', ['compose', 'version']).code === 0, 'run `bash scripts/test-env/engine.sh up`');

const work = mkdtempSync(path.join(tmpdir(), 'berth-monitoring-tools-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Run = { code: number | null; out: string };
function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Run {
  const r = spawnSync(cmd, args, { cwd: opts.cwd ?? repoRoot, env: opts.env ?? process.env, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe.skipIf(!hasPromtool)('promtool', () => {
  it('accepts prometheus.yml with its rule files (paths moved from /etc/prometheus to a copy)', () => {
    const dir = path.join(work, 'prometheus');
    cpSync(prometheusDir, dir, { recursive: true });
    const config = readFileSync(path.join(dir, 'prometheus.yml'), 'utf8').replaceAll('/etc/prometheus/', `${dir}/`);
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
    const r = run('promtool', ['test', 'rules', ...files.map((f) => path.relative(prometheusDir, f))], { cwd: prometheusDir });
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
          rules: queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: toPromQL(q.expr, { env: 'production', rateInterval: '1m' }) })),
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
    writeFileSync(file, stringify({ groups: [{ name: 'x', rules: [{ record: 'x:y', expr: 'sum by (env (up)' }] }] }));
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
    expect(r.out).toContain('- 3 inhibit rules');
    expect(r.code, r.out).toBe(0);
  });

  it('would notice a broken template', () => {
    const dir = path.join(work, 'broken-templates');
    cpSync(path.join(alertmanagerDir, 'templates'), dir, { recursive: true });
    writeFileSync(path.join(dir, 'slack.tmpl'), readFileSync(path.join(dir, 'slack.tmpl'), 'utf8').replace('{{- end }}', ''));
    const r = check(dir);
    expect(r.code).not.toBe(0);
  });
});

describe.skipIf(!hasCompose)('docker compose config', () => {
  const emptyEnvFile = path.join(work, 'empty.env');
  writeFileSync(emptyEnvFile, '');
  // Only PATH and HOME from the caller: a developer's exported variables must not hide a gap.
  const baseEnv = { PATH: process.env.PATH, HOME: process.env.HOME };

  it('validates docker-compose.monitoring.yml once GRAFANA_ADMIN_PASSWORD is set', () => {
    const r = run('docker', ['compose', '--env-file', emptyEnvFile, '-f', composeFile, 'config', '-q'], {
      env: { ...baseEnv, GRAFANA_ADMIN_PASSWORD: 'a-test-password' },
    });
    expect(r.code, r.out).toBe(0);
  });

  it('refuses to start without a Grafana admin password, naming the variable', () => {
    const r = run('docker', ['compose', '--env-file', emptyEnvFile, '-f', composeFile, 'config', '-q'], { env: baseEnv });
    expect(r.code).not.toBe(0);
    expect(r.out).toContain('set GRAFANA_ADMIN_PASSWORD in .env');
  });
});

describe('alertmanager/entrypoint.sh', () => {
  const entrypoint = path.join(alertmanagerDir, 'entrypoint.sh');
  // Stands in for /bin/alertmanager: records its arguments, its environment and the webhook file.
  const fakeBin = path.join(work, 'fake-alertmanager');
  writeFileSync(fakeBin, `#!/bin/sh\necho "args: $*"\necho "env-url: \${SLACK_WEBHOOK_URL:-unset}"\necho "file: $(cat "$WEBHOOK_FILE")"\n`, { mode: 0o755 });
  const start = (env: Record<string, string>, name: string): Run & { webhookFile: string } => {
    const webhookFile = path.join(work, `${name}.url`);
    const r = run('sh', [entrypoint, '--config.file=x.yml', '--cluster.listen-address='], {
      env: { PATH: process.env.PATH, ALERTMANAGER_BIN: fakeBin, WEBHOOK_FILE: webhookFile, SECRET_FILE: path.join(work, 'no-secret'), ...env },
    });
    return { ...r, webhookFile };
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
    expect(r.out).toContain('args: --config.file=x.yml --cluster.listen-address=');
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
});
