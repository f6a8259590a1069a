import { pino } from 'pino';
import { createApp } from '../../src/service/app.js';
import { loadConfig, type Config } from '../../src/service/config.js';
import { createMetrics } from '../../src/service/metrics.js';
import type { Readiness } from '../../src/service/routes/health.js';

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ APP_VERSION: '1.2.3', GIT_COMMIT: 'abc1234', ...env });
}

/** The app with a silent logger and handles on its metrics and readiness. */
export function testApp(env: Record<string, string> = {}) {
  const config = testConfig(env);
  const metrics = createMetrics(config);
  const readiness: Readiness = { ready: true };
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const app = createApp(config, { logger, metrics, readiness });
  return { app, config, metrics, readiness, logLines: lines };
}
