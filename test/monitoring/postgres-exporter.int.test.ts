// The postgres_exporter settings of docker-compose.monitoring.yml, run by the real exporter
// (Debian's prometheus-postgres-exporter) against a real PostgreSQL cluster: only the address
// (`db:5432` becomes the cluster's loopback port), the names and the password file's path are
// changed. Every pg_* metric the alerts and the dashboard read must come out of it.
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { parse, stringify } from 'yaml';
import { freePort } from '../helpers/net.js';
import {
  postgresBinDir,
  requirePostgres,
  startPostgres,
  type PostgresCluster,
} from '../helpers/postgres.js';
import { repoRoot, requireTool } from '../helpers/real-tools.js';
import {
  composeFile,
  dashboardQueries,
  loadRules,
  metricNames,
  rulesDir,
} from './lib/expressions.js';
import { localizeRules } from './lib/localize.js';
import { startProcess, stopProcess, tail, waitFor, type Proc } from './lib/processes.js';
import { startPrometheus, untilReady, writeLocalPrometheusConfig } from './lib/stack.js';

const hasPostgres = requirePostgres();
const monitoringHint =
  'run `bash scripts/test-env/monitoring.sh up` (Debian: prometheus, prometheus-node-exporter, prometheus-postgres-exporter)';
const hasExporter = requireTool('prometheus-postgres-exporter', monitoringHint);
const hasPrometheus =
  requireTool('prometheus', monitoringHint) &&
  requireTool('prometheus-node-exporter', monitoringHint);

type ExporterService = { environment: Record<string, string>; command?: string[] };
const services = (
  parse(readFileSync(composeFile, 'utf8'), { merge: true }) as {
    services: Record<string, ExporterService>;
  }
).services;

/** `${NAME:-default}` as compose expands it, with `values` standing in for .env. */
function expand(text: string, values: Record<string, string>): string {
  return text.replace(/\$\{([A-Z0-9_]+):-([^}]*)\}/g, (_m, name: string, fallback: string) =>
    values[name] !== undefined ? values[name] : fallback,
  );
}

/** The pg_* metrics every alert rule and dashboard panel reads. */
function pgMetricsUsed(): string[] {
  const exprs = [...loadRules().map((r) => r.expr), ...dashboardQueries().map((q) => q.expr)];
  return [
    ...new Set(exprs.flatMap((e) => metricNames(e)).filter((n) => n.startsWith('pg_'))),
  ].sort();
}

/**
 * What init_setup.sh's monitor_role does in the database's container: scripts/db-monitor-role.sql
 * through psql, after `\set pw`, all on stdin.
 */
function giveMonitorRole(cluster: PostgresCluster, password: string): void {
  const sql = readFileSync(path.join(repoRoot, 'scripts', 'db-monitor-role.sql'), 'utf8');
  // Beside initdb's real file (PATH may hold only links to the server's tools).
  const bin = path.dirname(realpathSync(path.join(postgresBinDir() ?? '', 'initdb')));
  const r = spawnSync(path.join(bin, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', cluster.url], {
    input: `\\set pw ${password}\n${sql}`,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`psql: ${r.error?.message ?? r.stderr}`);
}

describe.skipIf(!hasPostgres || !hasExporter)('postgres_exporter with the compose settings', () => {
  let cluster: PostgresCluster;
  let work: string;
  let passwordFile: string;
  let exporter: Proc | undefined;
  let listen = 0;
  const monitorPassword = randomBytes(16).toString('hex');

  beforeAll(async () => {
    cluster = await startPostgres();
    // The app's table, which the exporter's role must not read.
    const owner = new pg.Client({ connectionString: cluster.url });
    await owner.connect();
    await owner.query(
      "CREATE TABLE orders (id text PRIMARY KEY); INSERT INTO orders VALUES ('o1')",
    );
    await owner.end();
    // Twice, as every init_setup.sh run does: the second only sets the password again.
    giveMonitorRole(cluster, 'an-earlier-password');
    giveMonitorRole(cluster, monitorPassword);
    work = mkdtempSync(path.join(tmpdir(), 'berth-pg-exporter-'));
    passwordFile = path.join(work, 'postgres-production.password');
    writeFileSync(passwordFile, monitorPassword);
    chmodSync(passwordFile, 0o600);
  });
  afterAll(async () => {
    await stopProcess(exporter);
    cluster?.destroy();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** Starts the exporter with production's compose environment, the database at `port`. */
  async function start(port: number, pass = passwordFile): Promise<void> {
    await stopProcess(exporter);
    const service = services['postgres-exporter-production'];
    if (service === undefined)
      throw new Error('no postgres-exporter-production in the compose file');
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(service.environment)) {
      // The user is the compose file's default: berth_monitor.
      env[key] = expand(value, { POSTGRES_DB_PRODUCTION: 'berth_test' })
        .replace(/^db:5432\//, `127.0.0.1:${port}/`)
        .replace(/^\/run\/secrets\/postgres_password_production$/, pass);
    }
    // Only what the compose file gives it, plus PATH: no DATA_SOURCE_* inherited from the runner.
    listen = await freePort();
    exporter = startProcess(
      'postgres_exporter',
      'prometheus-postgres-exporter',
      [...(service.command ?? []), `--web.listen-address=127.0.0.1:${listen}`],
      {
        env: { PATH: process.env.PATH ?? '', ...env },
        logFile: path.join(work, `exporter-${listen}.log`),
      },
    );
    await waitFor(
      'the exporter to listen',
      async () => ((await fetch(`http://127.0.0.1:${listen}/`)).ok ? true : undefined),
      15_000,
      100,
    ).catch((error: unknown) => {
      throw new Error(`${String(error)}\n${exporter ? tail(exporter) : ''}`);
    });
  }

  const scrape = async () => (await fetch(`http://127.0.0.1:${listen}/metrics`)).text();
  const pgUp = async () => /^pg_up (\d+)$/m.exec(await scrape())?.[1];

  it('reports pg_up 1 and every pg_* metric the alerts and the dashboard read, as berth_monitor', async () => {
    expect(services['postgres-exporter-production']?.environment.DATA_SOURCE_USER).toBe(
      '${POSTGRES_USER_PRODUCTION:-berth_monitor}',
    );
    await start(cluster.port);
    const text = await scrape();
    expect(text, tail(exporter as Proc)).toMatch(/^pg_up 1$/m);
    const used = pgMetricsUsed();
    expect(used).toEqual(
      expect.arrayContaining([
        'pg_settings_max_connections',
        'pg_stat_database_numbackends',
        'pg_up',
      ]),
    );
    for (const name of used) expect(text, name).toMatch(new RegExp(`^${name}[{ ]`, 'm'));
    // What BerthDatabaseConnectionsHigh divides: the cluster's max_connections (60, set by the
    // test cluster) and at least the exporter's own connection.
    expect(text).toMatch(/^pg_settings_max_connections(\{[^}]*\})? 60$/m);
    const backends = [...text.matchAll(/^pg_stat_database_numbackends\{[^}]*\} (\d+)$/gm)].map(
      (m) => Number(m[1]),
    );
    expect(backends.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1);
  });

  it('keeps the password out of its command line, its environment and its log', async () => {
    const pid = exporter?.child.pid;
    expect(pid).toBeDefined();
    for (const file of ['cmdline', 'environ']) {
      expect(readFileSync(`/proc/${pid}/${file}`, 'utf8'), file).not.toContain(monitorPassword);
    }
    expect(readFileSync(exporter?.logFile ?? '', 'utf8')).not.toContain(monitorPassword);
  });

  /** Sessions of berth_monitor in the cluster, as its owner sees them. */
  async function monitorSessions(): Promise<number> {
    const owner = new pg.Client({ connectionString: cluster.url });
    await owner.connect();
    try {
      const r = await owner.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'berth_monitor'",
      );
      return r.rows[0]?.n ?? 0;
    } finally {
      await owner.end();
    }
  }

  // With the exporter stopped and its sessions gone: it holds 2 of the role's 3 connections (a CI
  // run once counted a third), so while it runs the role's own limit can refuse this test's.
  it("berth_monitor reads none of the app's tables, can create nothing and holds at most 3 connections", async () => {
    await stopProcess(exporter);
    await waitFor(
      "the exporter's sessions to end",
      async () => ((await monitorSessions()) === 0 ? true : undefined),
      10_000,
      50,
    );
    const url = new URL(cluster.url);
    url.username = 'berth_monitor';
    url.password = monitorPassword;
    const monitors = [0, 1, 2].map(() => new pg.Client({ connectionString: url.toString() }));
    try {
      for (const client of monitors) await client.connect();
      const [monitor] = monitors as [pg.Client];
      // The limit that keeps a stuck exporter from taking the app's connections.
      const fourth = new pg.Client({ connectionString: url.toString() });
      await expect(fourth.connect()).rejects.toThrow(
        /too many connections for role "berth_monitor"/,
      );
      await expect(monitor.query('SELECT * FROM orders')).rejects.toThrow(/permission denied/);
      await expect(monitor.query('CREATE TABLE t (x int)')).rejects.toThrow(/permission denied/);
      await expect(monitor.query("INSERT INTO orders VALUES ('o2')")).rejects.toThrow(
        /permission denied/,
      );
      // What pg_monitor is for: every session's activity, not only its own (another role's
      // query text reads `<insufficient privilege>` without it).
      const other = new pg.Client({ connectionString: cluster.url });
      await other.connect();
      const pid = (await other.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]
        ?.pid;
      await other.query("SELECT 'berth-marker'");
      const seen = await monitor.query<{ query: string }>(
        'SELECT query FROM pg_stat_activity WHERE pid = $1',
        [pid],
      );
      await other.end();
      expect(seen.rows.map((r) => r.query)).toEqual(["SELECT 'berth-marker'"]);
    } finally {
      await Promise.all(monitors.map((client) => client.end().catch(() => undefined)));
      // The next test stops the database under a running exporter.
      await start(cluster.port);
    }
  });

  it('reports pg_up 0 while the database is stopped, and 1 again once it is back', async () => {
    cluster.stop();
    try {
      const asked = Date.now();
      expect(await pgUp()).toBe('0');
      // Within the shipped scrape_timeout (10 s), or Prometheus would record a failed scrape
      // (up 0) and no pg_up at all.
      expect(Date.now() - asked).toBeLessThan(10_000);
      // The healthcheck's page still answers: an outage is pg_up 0, never a restarting exporter.
      expect((await fetch(`http://127.0.0.1:${listen}/`)).status).toBe(200);
    } finally {
      cluster.start();
    }
    await waitFor(
      'pg_up 1 after the restart',
      async () => ((await pgUp()) === '1' ? true : undefined),
      15_000,
    );
  });

  it('reports pg_up 0 when pointed at a port where no database listens', async () => {
    await start(await freePort());
    expect(await pgUp()).toBe('0');
  });

  it('reports pg_up 0 with a wrong password, without printing either password', async () => {
    const wrong = path.join(work, 'wrong.password');
    const wrongPassword = 'not-the-password-0f3c9a';
    writeFileSync(wrong, `${wrongPassword}\n`);
    chmodSync(wrong, 0o600);
    await start(cluster.port, wrong);
    expect(await pgUp()).toBe('0');
    const log = readFileSync(exporter?.logFile ?? '', 'utf8');
    expect(log).toMatch(/password authentication failed/);
    expect(log).not.toContain(wrongPassword);
    expect(log).not.toContain(cluster.password);
  });
});

// The rules of prometheus/rules/database.yml on a real Prometheus (scrape every 2 s, evaluation
// every second, every `for:` 1 s) over the real exporter and node-exporter's textfile collector, the
// way the VM feeds them: what the promtool tests assume about the series, checked on real ones.
describe.skipIf(!hasPostgres || !hasExporter || !hasPrometheus)(
  'the database alerts on real series',
  () => {
    let cluster: PostgresCluster;
    let work: string;
    const procs: Proc[] = [];
    let promPort = 0;
    let textfileDir = '';

    beforeAll(async () => {
      cluster = await startPostgres();
      work = mkdtempSync(path.join(tmpdir(), 'berth-pg-alerts-'));
      const passwordFile = path.join(work, 'password');
      writeFileSync(passwordFile, cluster.password);
      chmodSync(passwordFile, 0o600);
      const exporterPort = await freePort();
      const service = services['postgres-exporter-production'];
      const env: Record<string, string> = { PATH: process.env.PATH ?? '' };
      for (const [key, value] of Object.entries(service?.environment ?? {}))
        env[key] = expand(value, {
          POSTGRES_DB_PRODUCTION: 'berth_test',
          POSTGRES_USER_PRODUCTION: 'berth_test',
        })
          .replace(/^db:5432\//, `127.0.0.1:${cluster.port}/`)
          .replace(/^\/run\/secrets\/.*$/, passwordFile);
      procs.push(
        startProcess(
          'postgres_exporter',
          'prometheus-postgres-exporter',
          [`--web.listen-address=127.0.0.1:${exporterPort}`],
          { env, logFile: path.join(work, 'exporter.log') },
        ),
      );
      textfileDir = path.join(work, 'textfile');
      mkdirSync(textfileDir);
      const nodePort = await freePort();
      procs.push(
        startProcess(
          'node-exporter',
          'prometheus-node-exporter',
          [
            `--web.listen-address=127.0.0.1:${nodePort}`,
            '--collector.disable-defaults',
            '--collector.textfile',
            `--collector.textfile.directory=${textfileDir}`,
          ],
          { env: { PATH: process.env.PATH ?? '' }, logFile: path.join(work, 'node-exporter.log') },
        ),
      );
      // What the database's set-up writes as prometheus/targets/postgres-production.yml.
      const targets = path.join(work, 'postgres-production.yml');
      writeFileSync(
        targets,
        stringify([{ targets: [`127.0.0.1:${exporterPort}`], labels: { env: 'production' } }]),
      );
      const rules = path.join(work, 'database.yml');
      writeFileSync(
        rules,
        stringify(
          localizeRules(parse(readFileSync(path.join(rulesDir, 'database.yml'), 'utf8')), '1s'),
        ),
      );
      promPort = await freePort();
      const config = path.join(work, 'prometheus.yml');
      writeLocalPrometheusConfig(config, {
        // With the database down the exporter answers after about 1 s (its connection attempt):
        // a 1 s scrape timeout would lose the scrape that carries pg_up 0. Shipped: 10 s.
        scrapeInterval: '2s',
        evaluationInterval: '1s',
        ruleFiles: [rules],
        alertmanagers: [],
        jobs: {
          postgres: { file: targets },
          'node-exporter': { targets: [`127.0.0.1:${nodePort}`] },
          prometheus: null,
          alertmanager: null,
          cadvisor: null,
          'berth-app': null,
          'blackbox-exporter': null,
          'blackbox-http': null,
        },
      });
      const prometheus = startPrometheus({
        work,
        port: promPort,
        configFile: config,
        logName: 'prometheus.log',
        env: { GRAFANA_URL: 'http://grafana.test' },
      });
      procs.push(prometheus);
      await untilReady(prometheus, `http://127.0.0.1:${promPort}/-/ready`);
    });
    afterAll(async () => {
      for (const p of procs.reverse()) await stopProcess(p);
      cluster?.destroy();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    type Alert = { labels: Record<string, string>; annotations: Record<string, string> };
    const firing = async (name: string): Promise<Alert[]> => {
      const res = (await (await fetch(`http://127.0.0.1:${promPort}/api/v1/alerts`)).json()) as {
        data: { alerts: (Alert & { state: string })[] };
      };
      return res.data.alerts.filter((a) => a.labels.alertname === name && a.state === 'firing');
    };
    const untilFiring = (name: string, timeoutMs = 30_000) =>
      waitFor(
        `${name} firing`,
        async () => {
          const alerts = await firing(name);
          return alerts.length > 0 ? alerts : undefined;
        },
        timeoutMs,
        100,
      );
    const untilQuiet = (name: string) =>
      waitFor(
        `${name} resolved`,
        async () => ((await firing(name)).length === 0 ? true : undefined),
        30_000,
        100,
      );
    const writeBackupMetric = (value: number) => {
      const file = path.join(textfileDir, 'berth_backup.prom');
      writeFileSync(
        `${file}.tmp`,
        `# TYPE berth_backup_last_success_timestamp_seconds gauge\nberth_backup_last_success_timestamp_seconds{env="production"} ${value}\n`,
      );
      renameSync(`${file}.tmp`, file);
    };

    it('a database without any backup recorded: BerthBackupMissing, for its env only', async () => {
      const [alert] = await untilFiring('BerthBackupMissing');
      expect(alert?.labels).toMatchObject({ env: 'production', severity: 'warning' });
      expect(await firing('BerthDatabaseDown')).toEqual([]);
      expect(await firing('BerthBackupTooOld')).toEqual([]);
    });

    it('a backup 27 h old: BerthBackupTooOld instead; a fresh one: quiet', async () => {
      writeBackupMetric(Math.floor(Date.now() / 1000) - 27 * 3600);
      const [alert] = await untilFiring('BerthBackupTooOld');
      expect(alert?.labels).toMatchObject({ env: 'production', severity: 'warning' });
      expect(alert?.annotations.value).toMatch(/^1d 3h 0m \d+s old$/);
      await untilQuiet('BerthBackupMissing');
      writeBackupMetric(Math.floor(Date.now() / 1000) - 3600);
      await untilQuiet('BerthBackupTooOld');
    });

    it('connections above 80 % of max_connections: BerthDatabaseConnectionsHigh, resolved when they close', async () => {
      // max_connections is 60 in the test cluster: 50 more connections pass 80 %.
      const clients = Array.from(
        { length: 50 },
        () => new pg.Client({ connectionString: cluster.url }),
      );
      try {
        await Promise.all(clients.map((c) => c.connect()));
        const [alert] = await untilFiring('BerthDatabaseConnectionsHigh');
        expect(alert?.labels).toMatchObject({ env: 'production', severity: 'warning' });
        expect(alert?.annotations.summary).toMatch(
          /^Berth production database uses (8|9)\d(\.\d+)?% of its connections$/,
        );
      } finally {
        await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
      }
      await untilQuiet('BerthDatabaseConnectionsHigh');
    });

    it('the database stopped: BerthDatabaseDown with the exporter still up; resolved once it is back', async () => {
      const stopped = Date.now();
      cluster.stop();
      try {
        const [alert] = await untilFiring('BerthDatabaseDown').catch(async (error: unknown) => {
          const q = async (expr: string) =>
            JSON.stringify(
              await (
                await fetch(
                  `http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(expr)}`,
                )
              ).json(),
            );
          throw new Error(
            `${String(error)}\nup: ${await q('up')}\npg_up: ${await q('pg_up')}\n${tail(procs[0] as Proc)}`,
          );
        });
        console.log(
          `BerthDatabaseDown firing ${((Date.now() - stopped) / 1000).toFixed(1)} s after the database stopped (scrape 2 s, evaluation 1 s, for: 1 s)`,
        );
        expect(alert?.labels).toMatchObject({
          env: 'production',
          severity: 'critical',
          job: 'postgres',
        });
        expect(alert?.annotations.value).toBe('pg_up = 0');
      } finally {
        cluster.start();
      }
      await untilQuiet('BerthDatabaseDown');
    });
  },
);
