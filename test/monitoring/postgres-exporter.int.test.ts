// The postgres_exporter settings of docker-compose.monitoring.yml, run by the real exporter
// (Debian's prometheus-postgres-exporter) against a real PostgreSQL cluster: only the address
// (`db:5432` becomes the cluster's loopback port), the names and the password file's path are
// changed. Every pg_* metric the alerts and the dashboard read must come out of it.
import { readFileSync, rmSync, writeFileSync, mkdtempSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { freePort } from '../helpers/net.js';
import { requirePostgres, startPostgres, type PostgresCluster } from '../helpers/postgres.js';
import { requireTool } from '../helpers/real-tools.js';
import { composeFile, dashboardQueries, loadRules, metricNames } from './lib/expressions.js';
import { startProcess, stopProcess, tail, waitFor, type Proc } from './lib/processes.js';

const hasPostgres = requirePostgres();
const hasExporter = requireTool(
  'prometheus-postgres-exporter',
  'run `bash scripts/test-env/monitoring.sh up` (Debian: prometheus-postgres-exporter)',
);

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

describe.skipIf(!hasPostgres || !hasExporter)('postgres_exporter with the compose settings', () => {
  let cluster: PostgresCluster;
  let work: string;
  let passwordFile: string;
  let exporter: Proc | undefined;
  let listen = 0;

  beforeAll(async () => {
    cluster = await startPostgres();
    work = mkdtempSync(path.join(tmpdir(), 'berth-pg-exporter-'));
    passwordFile = path.join(work, 'postgres-production.password');
    writeFileSync(passwordFile, `${cluster.password}\n`);
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
      env[key] = expand(value, {
        POSTGRES_DB_PRODUCTION: 'berth_test',
        POSTGRES_USER_PRODUCTION: 'berth_test',
      })
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

  it('reports pg_up 1 and every pg_* metric the alerts and the dashboard read', async () => {
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
      expect(readFileSync(`/proc/${pid}/${file}`, 'utf8'), file).not.toContain(cluster.password);
    }
    expect(readFileSync(exporter?.logFile ?? '', 'utf8')).not.toContain(cluster.password);
  });

  it('reports pg_up 0 while the database is stopped, and 1 again once it is back', async () => {
    cluster.stop();
    try {
      expect(await pgUp()).toBe('0');
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
