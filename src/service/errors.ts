// Every error leaves the service as a small JSON body; stacks go to the log, never to clients.
import { STATUS_CODES } from 'node:http';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { sendJson } from './send-json.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
  ) {
    super(typeof body.error === 'string' ? body.error : `HTTP ${status}`);
  }
}

/** FastAPI's validation shape, which many of our users' clients already parse. */
export function validationError(
  loc: [string, string],
  type: string,
  msg: string,
  input: unknown,
): HttpError {
  return new HttpError(422, { detail: [{ type, loc, msg, input }] });
}

export const notFound: RequestHandler = (req, _res, next) => {
  next(new HttpError(404, { error: 'not found', path: req.path }));
};

export function methodNotAllowed(allowed: string): RequestHandler {
  return (req, res, next) => {
    res.setHeader('Allow', allowed);
    next(new HttpError(405, { error: 'method not allowed', method: req.method }));
  };
}

// body-parser marks its errors with `type`; name the common ones in words clients can act on.
const BODY_ERRORS: Record<string, string> = {
  'entity.parse.failed': 'malformed JSON body',
  'entity.too.large': 'request body too large',
  'encoding.unsupported': 'unsupported content encoding',
  'charset.unsupported': 'unsupported charset',
};

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    let status = 500;
    let body: Record<string, unknown> = { error: 'internal server error' };
    const clientStatus = clientErrorStatus(err);
    if (err instanceof HttpError) {
      status = err.status;
      body = err.body;
    } else if (clientStatus !== undefined) {
      // Express, its router and body-parser raise http-errors with a 4xx status for bad input
      // (malformed JSON, a body too large, a path that cannot be percent-decoded).
      status = clientStatus;
      const type = (err as { type?: unknown }).type;
      const known = typeof type === 'string' ? BODY_ERRORS[type] : undefined;
      body = { error: known ?? (STATUS_CODES[status] ?? 'bad request').toLowerCase() };
    } else {
      logger.error({ err, requestId: res.locals.requestId, path: req.path }, 'unhandled error');
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendJson(res, body, status);
  };
}

function clientErrorStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { status, statusCode } = err as { status?: unknown; statusCode?: unknown };
  const code = typeof status === 'number' ? status : statusCode;
  return typeof code === 'number' && code >= 400 && code < 500 ? code : undefined;
}
