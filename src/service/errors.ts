// Every error leaves the service as a small JSON body; stacks go to the log, never to clients.
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';

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

// body-parser marks its errors with `type` and an HTTP status; map the ones clients cause.
const BODY_ERRORS: Record<string, { status: number; error: string }> = {
  'entity.parse.failed': { status: 400, error: 'malformed JSON body' },
  'entity.too.large': { status: 413, error: 'request body too large' },
  'encoding.unsupported': { status: 415, error: 'unsupported content encoding' },
  'charset.unsupported': { status: 415, error: 'unsupported charset' },
  'request.aborted': { status: 400, error: 'request aborted' },
  'entity.verify.failed': { status: 400, error: 'request body rejected' },
};

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    let status = 500;
    let body: Record<string, unknown> = { error: 'internal server error' };
    if (err instanceof HttpError) {
      status = err.status;
      body = err.body;
    } else if (isBodyParserError(err)) {
      const known = BODY_ERRORS[err.type];
      status = known?.status ?? (err.status >= 400 && err.status < 500 ? err.status : 400);
      body = { error: known?.error ?? 'bad request' };
    } else {
      logger.error({ err, requestId: res.locals.requestId, path: req.path }, 'unhandled error');
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.status(status).json(body);
  };
}

function isBodyParserError(err: unknown): err is { type: string; status: number } {
  return (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as { type?: unknown }).type === 'string' &&
    typeof (err as { status?: unknown }).status === 'number'
  );
}
