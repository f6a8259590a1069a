// createApp(config): the whole HTTP surface, with no listening socket and no signal handling,
// so tests drive it in-process and the server entry stays small.
import express from 'express';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { errorHandler, methodNotAllowed, notFound } from './errors.js';
import { createLogger } from './logger.js';
import { databaseFromConfig, type Database } from './db/database.js';
import { jsonBody } from './json-body.js';
import { createMetrics, type Metrics } from './metrics.js';
import { securityHeaders } from './security-headers.js';
import { observeRequests } from './observe.js';
import { addHealthRoutes, type Readiness } from './routes/health.js';
import { addItemRoutes } from './routes/items.js';
import { addOrderRoutes } from './routes/orders.js';
import { addUiRoutes } from './routes/ui.js';
import { addWorkRoutes } from './routes/work.js';
import { sendJson } from './send-json.js';

// Small on purpose: the only bodies are new orders, so anything large is a mistake or an attack.
export const BODY_LIMIT = '16kb';

/**
 * `db`: the database the order routes use. Left out, one is made from DATABASE_URL; null means
 * none (the order routes answer 503), as when DATABASE_URL is unset.
 */
export type AppDeps = {
  logger?: Logger;
  metrics?: Metrics;
  readiness?: Readiness;
  db?: Database | null;
};

export function createApp(config: Config, deps: AppDeps = {}): express.Express {
  const logger = deps.logger ?? createLogger(config);
  const metrics = deps.metrics ?? createMetrics(config);
  const readiness = deps.readiness ?? { ready: true };
  const db =
    deps.db === null ? undefined : (deps.db ?? databaseFromConfig(config, logger, metrics));

  const app = express();
  app.disable('x-powered-by');
  // Answers are small and dynamic (uptime, durations): a conditional GET would never match, so
  // hashing every body for an ETag is wasted work.
  app.set('etag', false);

  const observe = observeRequests(logger, metrics, config.basePath);
  const setSecurityHeaders = securityHeaders();
  // Numbers keep their exact source text (amounts are money): see json-body.ts.
  const parseJson = jsonBody(BODY_LIMIT);
  // What every request goes through, as one Express layer: each app.use() adds a match and a
  // dispatch to every request, and bench:http showed them.
  app.use((req, res, next) => {
    observe(req, res);
    setSecurityHeaders(res);
    // While draining, ask keep-alive clients to reconnect, so their next request finds a live
    // instance instead of a closing socket.
    if (!readiness.ready) res.setHeader('Connection', 'close');
    // Only a request that carries a body goes through the parser: body-parser makes the same
    // test, but only after work that every GET would pay for.
    if (
      req.headers['transfer-encoding'] !== undefined ||
      req.headers['content-length'] !== undefined
    ) {
      parseJson(req, res, next);
    } else next();
  });

  // Routes sit on the app itself, under BASE_PATH: a mounted sub-router would add a matching and
  // URL-rewriting pass to every request (it showed in a CPU profile under bench:http load).
  const at = (path: string) => `${config.basePath}${path}`;
  app
    .route(config.basePath || '/')
    .get((_req, res) => {
      sendJson(res, { message: 'Welcome to the Berth API', version: config.appVersion });
    })
    .all(methodNotAllowed('GET, HEAD'));
  addHealthRoutes(app, at, config, readiness, db);
  addItemRoutes(app, at);
  addWorkRoutes(app, at);
  addOrderRoutes(app, at, db);
  addUiRoutes(app, at, config.basePath, db, BODY_LIMIT);
  app
    .route(at('/metrics'))
    .get(async (_req, res) => {
      res.setHeader('Content-Type', metrics.registry.contentType);
      res.send(await metrics.registry.metrics());
    })
    .all(methodNotAllowed('GET, HEAD'));

  app.use(notFound);
  app.use(errorHandler(logger));
  return app;
}
