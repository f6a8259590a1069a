import type { IRouter, RequestHandler } from 'express';
import type { Config } from '../config.js';
import { methodNotAllowed } from '../errors.js';
import { sendJson } from '../send-json.js';

/** Flipped by the server on SIGTERM so proxies stop sending traffic before the process exits. */
export type Readiness = { ready: boolean };

export function addHealthRoutes(router: IRouter, at: (path: string) => string, config: Config, readiness: Readiness): void {
  const startedAt = Date.now();

  const health: RequestHandler = (_req, res) => {
    sendJson(res, {
      status: 'ok',
      version: config.appVersion,
      commit: config.gitCommit,
      uptime_seconds: Math.floor((Date.now() - startedAt) / 1000),
    });
  };
  router.route(at('/health')).get(health).all(methodNotAllowed('GET, HEAD'));
  router.route(at('/healthz')).get(health).all(methodNotAllowed('GET, HEAD'));

  router
    .route(at('/ready'))
    .get((_req, res) => {
      if (readiness.ready) sendJson(res, { status: 'ready' });
      else sendJson(res, { status: 'shutting_down' }, 503);
    })
    .all(methodNotAllowed('GET, HEAD'));
}
