// Prometheus metrics: default process metrics, RED metrics keyed by route template, app_info.
import { Counter, Histogram, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Config } from './config.js';

// Label value for requests that matched no route: a scan of random URLs must not create series.
export const UNMATCHED_ROUTE = 'unmatched';

// Web API latencies: most answers land in 5–250 ms; the long tail up to 10 s shows overload.
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export type RequestObservation = { method: string; route: string; status: number; seconds: number };

export type Metrics = {
  registry: Registry;
  observe(o: RequestObservation): void;
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

  return {
    registry,
    observe({ method, route, status, seconds }) {
      const labels = { method, route, status: String(status) };
      requests.inc(labels);
      duration.observe(labels, seconds);
      if (status >= 500) errors.inc(labels);
    },
  };
}
