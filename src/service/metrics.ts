// Prometheus metrics: default process metrics, RED metrics keyed by route template, app_info,
// and the database's query durations and connection pool.
import { Counter, Histogram, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Config } from './config.js';

// Label value for requests that matched no route: a scan of random URLs must not create series.
export const UNMATCHED_ROUTE = 'unmatched';

// Web API latencies: most answers land in 5–250 ms; the long tail up to 10 s shows overload.
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

// Queries on a local database take about a millisecond; the tail up to 5 s (the default
// DATABASE_TIMEOUT_MS) shows a struggling server or a saturated pool.
export const QUERY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

export type RequestObservation = { method: string; route: string; status: number; seconds: number };

/** `query` is one of a fixed set of names given in code (src/service/db/), never SQL text. */
export type QueryObservation = { query: string; outcome: 'ok' | 'error'; seconds: number };

export type PoolStats = { total: number; idle: number; waiting: number; max: number };

export type Metrics = {
  registry: Registry;
  observe(o: RequestObservation): void;
  observeQuery(o: QueryObservation): void;
  /** Where the pool gauges read their values at scrape time. */
  trackPool(stats: () => PoolStats): void;
};

export function createMetrics(config: Pick<Config, 'appVersion' | 'gitCommit'>): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const labelNames = ['method', 'route', 'status'] as const;
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route template and status code.',
    labelNames,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from request arrival to the last byte of the response, in seconds.',
    labelNames,
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const errors = new Counter({
    name: 'http_errors_total',
    help: 'HTTP requests answered with a 5xx status, by method, route template and status code.',
    labelNames,
    registers: [registry],
  });
  new Gauge({
    name: 'app_info',
    help: 'Always 1; labels tell which build is running.',
    labelNames: ['version', 'commit'] as const,
    registers: [registry],
  }).set({ version: config.appVersion, commit: config.gitCommit }, 1);

  const queryDuration = new Histogram({
    name: 'db_query_duration_seconds',
    help: 'Time from sending a database query to its result (or error), in seconds, by query name and outcome.',
    labelNames: ['query', 'outcome'] as const,
    buckets: QUERY_BUCKETS,
    registers: [registry],
  });
  let poolStats: (() => PoolStats) | undefined;
  new Gauge({
    name: 'db_pool_connections',
    help: 'Open database connections in the pool, by state (in_use: lent to a query; idle: ready).',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      if (poolStats === undefined) return;
      const { total, idle } = poolStats();
      this.set({ state: 'in_use' }, total - idle);
      this.set({ state: 'idle' }, idle);
    },
  });
  new Gauge({
    name: 'db_pool_max_connections',
    help: 'The most connections the pool may open (DATABASE_POOL_MAX); 0 without a database.',
    registers: [registry],
    collect() {
      this.set(poolStats?.().max ?? 0);
    },
  });
  new Gauge({
    name: 'db_pool_waiting_requests',
    help: 'Queries waiting for a free pool connection; above 0 for long means the pool is too small.',
    registers: [registry],
    collect() {
      this.set(poolStats?.().waiting ?? 0);
    },
  });

  return {
    registry,
    observeQuery({ query, outcome, seconds }) {
      queryDuration.observe({ query, outcome }, seconds);
    },
    trackPool(stats) {
      poolStats = stats;
    },
    observe({ method, route, status, seconds }) {
      const labels = { method, route, status: String(status) };
      requests.inc(labels);
      duration.observe(labels, seconds);
      if (status >= 500) errors.inc(labels);
    },
  };
}
