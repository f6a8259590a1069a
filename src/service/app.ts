// createApp(config): the whole HTTP surface, with no listening socket and no signal handling,
// so tests drive it in-process and the server entry stays small.
import express, { Router } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { errorHandler, methodNotAllowed, notFound } from './errors.js';
import { createLogger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { observeRequests } from './observe.js';
import { addHealthRoutes, type Readiness } from './routes/health.js';
import { addItemRoutes } from './routes/items.js';
import { addWorkRoutes } from './routes/work.js';

// Small on purpose: no endpoint takes a body, so anything large is a mistake or an attack.
export const BODY_LIMIT = '16kb';

export type AppDeps = { logger?: Logger; metrics?: Metrics; readiness?: Readiness };

export function createApp(config: Config, deps: AppDeps = {}): express.Express {
  const logger = deps.logger ?? createLogger(config);
  const metrics = deps.metrics ?? createMetrics(config);
  const readiness = deps.readiness ?? { ready: true };

  const app = express();
  app.disable('x-powered-by');
  // Answers are small and dynamic (uptime, durations): a conditional GET would never match, so
  // hashing every body for an ETag is wasted work.
  app.set('etag', false);

  app.use(observeRequests(logger, metrics));
  app.use(helmet());
  app.use((_req, res, next) => {
    // While draining, ask keep-alive clients to reconnect, so their next request finds a live
    // instance instead of a closing socket.
    if (!readiness.ready) res.setHeader('Connection', 'close');
    next();
  });
  app.use(express.json({ limit: BODY_LIMIT }));

  const routes = Router();
  routes
    .route('/')
    .get((_req, res) => {
      res.json({ message: 'Welcome to the Berth API', version: config.appVersion });
    })
    .all(methodNotAllowed('GET, HEAD'));
  // One flat router: nested routers cost a matching pass each on every request.
  addHealthRoutes(routes, config, readiness);
  addItemRoutes(routes);
  addWorkRoutes(routes);
  routes
    .route('/metrics')
    .get(async (_req, res) => {
      res.setHeader('Content-Type', metrics.registry.contentType);
      res.send(await metrics.registry.metrics());
    })
    .all(methodNotAllowed('GET, HEAD'));

  app.use(config.basePath || '/', routes);
  app.use(notFound);
  app.use(errorHandler(logger));
  return app;
}
