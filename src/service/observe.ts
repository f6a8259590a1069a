// One hook per request that feeds both the access log and the RED metrics, so the two always
// agree on method, route template, status and duration.
import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { UNMATCHED_ROUTE, type Metrics } from './metrics.js';

// An incoming id is echoed only when it is short and plain, so logs cannot be forged through it.
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestId(incoming: string | undefined): string {
  return incoming !== undefined && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/** The matched route template (e.g. /items/:item_id), without BASE_PATH. */
export function routeTemplate(req: Request, basePath = ''): string {
  const path: unknown = req.route?.path;
  return typeof path === 'string' ? path.slice(basePath.length) || '/' : UNMATCHED_ROUTE;
}

// nginx's code for a request the client gave up on before the answer was written.
export const CLIENT_CLOSED_REQUEST = 499;

/**
 * Starts watching one request: gives it an id (echoed in X-Request-Id) and, once the response
 * closes, logs one line and records it in the metrics.
 */
export function observeRequests(
  logger: Logger,
  metrics: Metrics,
  basePath = '',
): (req: Request, res: Response) => void {
  return (req, res) => {
    const started = process.hrtime.bigint();
    const id = requestId(req.get('x-request-id'));
    res.locals.requestId = id;
    res.setHeader('X-Request-Id', id);
    // 'close' fires for every request, answered or not, so aborted ones are counted too. It
    // fires once per response, so a plain listener does (once() adds a wrapper per request).
    res.on('close', () => {
      const route = routeTemplate(req, basePath);
      if (route === '/metrics') return;
      const status = res.writableFinished ? res.statusCode : CLIENT_CLOSED_REQUEST;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      metrics.observe({ method: req.method, route, status, seconds });
      logger.info(
        {
          requestId: id,
          method: req.method,
          route,
          status,
          durationMs: Math.round(seconds * 1e6) / 1e3,
        },
        'request',
      );
    });
  };
}
