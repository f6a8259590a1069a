// One hook per request that feeds both the access log and the RED metrics, so the two always
// agree on method, route template, status and duration.
import { randomUUID } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { UNMATCHED_ROUTE, type Metrics } from './metrics.js';

// An incoming id is echoed only when it is short and plain, so logs cannot be forged through it.
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestId(incoming: string | undefined): string {
  return incoming !== undefined && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/** The matched route template (e.g. /items/:item_id), independent of BASE_PATH. */
export function routeTemplate(req: Request): string {
  const path: unknown = req.route?.path;
  return typeof path === 'string' ? path : UNMATCHED_ROUTE;
}

export function observeRequests(logger: Logger, metrics: Metrics, metricsPath: string): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    const id = requestId(req.get('x-request-id'));
    res.locals.requestId = id;
    res.setHeader('X-Request-Id', id);
    res.on('finish', () => {
      const url = req.originalUrl;
      if (url === metricsPath || url.startsWith(`${metricsPath}?`)) return;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = routeTemplate(req);
      metrics.observe({ method: req.method, route, status: res.statusCode, seconds });
      logger.info(
        {
          requestId: id,
          method: req.method,
          route,
          status: res.statusCode,
          durationMs: Math.round(seconds * 1e6) / 1e3,
        },
        'request',
      );
    });
    next();
  };
}
