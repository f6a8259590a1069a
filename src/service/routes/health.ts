import type { IRouter, RequestHandler } from 'express';
import type { Config } from '../config.js';
import type { Database } from '../db/database.js';
import { methodNotAllowed } from '../errors.js';
import { sendJson } from '../send-json.js';

/** Flipped by the server on SIGTERM so proxies stop sending traffic before the process exits. */
export type Readiness = { ready: boolean };

/**
 * /health is liveness: the process answers, whatever the database does (restarting a container
 * cannot fix a database). /ready is readiness: 503 while shutting down, and 503 once the database
 * has been unreachable for DATABASE_READY_GRACE_S without a break; a shorter outage shows as
 * "failing" with 200, so a database restart never takes instances out of rotation.
 */
export function addHealthRoutes(
  router: IRouter,
  at: (path: string) => string,
  config: Config,
  readiness: Readiness,
  db: Database | undefined,
): void {
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
    .get(async (_req, res) => {
      if (!readiness.ready) return sendJson(res, { status: 'shutting_down' }, 503);
      if (db === undefined) return sendJson(res, { status: 'ready' });
      const state = await db.state();
      if (state.status === 'ok') return sendJson(res, { status: 'ready', database: 'ok' });
      const failing = { database_failing_seconds: state.failingSeconds };
      if (state.status === 'failing')
        return sendJson(res, { status: 'ready', database: 'failing', ...failing });
      sendJson(res, { status: 'database_unreachable', database: 'unreachable', ...failing }, 503);
    })
    .all(methodNotAllowed('GET, HEAD'));
}
