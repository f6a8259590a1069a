import { pino } from 'pino';
import { createApp } from '../../src/service/app.js';
import { loadConfig, type Config } from '../../src/service/config.js';
import { databaseFromConfig } from '../../src/service/db/database.js';
import { createMetrics } from '../../src/service/metrics.js';
import type { Readiness } from '../../src/service/routes/health.js';

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ APP_VERSION: '1.2.3', GIT_COMMIT: 'abc1234', ...env });
}

/**
 * The app with a silent logger and handles on its metrics and readiness. With DATABASE_URL in
 * `env` it gets a pool of its own: `close()` it when done.
 */
export function testApp(env: Record<string, string> = {}) {
  const config = testConfig(env);
  const metrics = createMetrics(config);
  const readiness: Readiness = { ready: true };
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => void lines.push(JSON.parse(line)) },
  );
  const db = databaseFromConfig(config, logger, metrics);
  const app = createApp(config, { logger, metrics, readiness, db: db ?? null });
  return { app, config, metrics, readiness, db, logLines: lines, close: async () => db?.close() };
}

/** Reads one sample's value from Prometheus text, or undefined when the series is absent. */
export function sample(
  text: string,
  name: string,
  labels: Record<string, string>,
): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.lastIndexOf('}'));
    const got = Object.fromEntries([...body.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    const wanted = Object.entries(labels).every(([k, v]) => got[k] === v);
    if (wanted && Object.keys(got).length === Object.keys(labels).length) {
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return undefined;
}
