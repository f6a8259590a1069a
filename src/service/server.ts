// Entry point: read the configuration, listen, and shut down gracefully on SIGTERM/SIGINT.
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import dotenv from 'dotenv';
import { createHttpTerminator } from 'http-terminator';
import { createApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { databaseFromConfig } from './db/database.js';
import { createLogger } from './logger.js';
import { createMetrics } from './metrics.js';
import type { Readiness } from './routes/health.js';

dotenv.config({ quiet: true });

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(1);
}

const logger = createLogger(config);
const readiness: Readiness = { ready: true };
const metrics = createMetrics(config);
// The pool connects lazily: an unreachable database never stops the service from starting.
const db = databaseFromConfig(config, logger, metrics);
if (db === undefined) logger.warn('DATABASE_URL is not set: the order routes answer 503');
const server = http.createServer(createApp(config, { logger, metrics, readiness, db: db ?? null }));
// Longer than the proxy's upstream keep-alive, so the proxy closes idle connections first and
// never sends a request down a socket this side is closing.
server.keepAliveTimeout = 65_000;
const terminator = createHttpTerminator({
  server,
  gracefulTerminationTimeout: config.shutdownTimeoutMs - config.shutdownDelayMs,
});

function exit(code: number): void {
  // The destination writes each line synchronously, so nothing is queued here; flush() keeps
  // exit correct if it ever buffers again.
  logger.flush(() => process.exit(code));
}

server.on('error', (err) => {
  logger.fatal({ err }, `cannot listen on HOST=${config.host} PORT=${config.port}: ${err.message}`);
  exit(1);
});
server.listen(config.port, config.host, () => {
  logger.info(
    { host: config.host, port: config.port, basePath: config.basePath || '/' },
    'listening',
  );
});

// An uncaught error leaves as one JSON `fatal` line with its stack, where the log shipper looks,
// instead of Node's plain-text dump on stderr. Exit code 1 even if logging it fails.
let crashing = false;
function crash(err: unknown): void {
  if (crashing) return;
  crashing = true;
  process.exitCode = 1;
  try {
    logger.fatal({ err }, 'crashed: uncaught error');
  } finally {
    exit(1);
  }
}
process.on('uncaughtException', crash);
process.on('unhandledRejection', crash);

let stopping = false;
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  if (stopping) return;
  stopping = true;
  readiness.ready = false;
  logger.info(
    { signal, delayMs: config.shutdownDelayMs, timeoutMs: config.shutdownTimeoutMs },
    'shutting down: /ready answers 503, then draining requests',
  );
  // Hard stop if draining hangs, so `docker stop` never has to fall back to SIGKILL.
  setTimeout(() => {
    logger.error('shutdown timeout reached; exiting with requests still open');
    exit(1);
  }, config.shutdownTimeoutMs + 1_000).unref();
  await sleep(config.shutdownDelayMs);
  await terminator.terminate();
  // After the last request: close the pool's connections so the server sees a clean goodbye.
  await db
    ?.close()
    .catch((err: unknown) => logger.warn({ err }, 'closing the database pool failed'));
  logger.info('stopped');
  exit(0);
}
process.on('SIGTERM', (s) => void shutdown(s));
process.on('SIGINT', (s) => void shutdown(s));
