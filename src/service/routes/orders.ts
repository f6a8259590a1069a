// The Orders API: POST /orders (idempotent by id), GET /orders (newest first, paginated),
// GET /orders/:id. Without a database every one of them answers 503.
import type { IRouter, Response } from 'express';
import type { Database } from '../db/database.js';
import { isUnavailable } from '../db/database.js';
import { createOrder, getOrder, listOrders } from '../db/orders.js';
import { HttpError, methodNotAllowed } from '../errors.js';
import { JsonNumber } from '../json-body.js';
import { parseAmount, parseOrderId, type FieldError } from '../money.js';
import { sendJson } from '../send-json.js';

export const DEFAULT_LIMIT = 20;
export const MAX_LIMIT = 100;

export type NewOrder = { id: string | undefined; amount: string };

/** Checks a create request's fields; every problem is reported at once, FastAPI style. */
export function validateNewOrder(body: unknown, loc: string): NewOrder | FieldError[] {
  if (
    typeof body !== 'object' ||
    body === null ||
    Array.isArray(body) ||
    body instanceof JsonNumber
  ) {
    return [
      {
        type: 'model_attributes_type',
        loc: [loc],
        msg: 'Input should be an object with "amount" and an optional "id"',
        input: body ?? null,
      },
    ];
  }
  const fields = body as Record<string, unknown>;
  const errors: FieldError[] = [];
  for (const key of Object.keys(fields)) {
    if (key !== 'id' && key !== 'amount') {
      errors.push({
        type: 'extra_forbidden',
        loc: [loc, key],
        msg: 'Extra inputs are not permitted',
        input: fields[key],
      });
    }
  }
  const id = parseOrderId(fields.id, [loc, 'id']);
  const amount = parseAmount(fields.amount, [loc, 'amount']);
  if ('error' in id) errors.push(id.error);
  if ('error' in amount) errors.push(amount.error);
  if (errors.length > 0 || 'error' in id || 'error' in amount) return errors;
  return { id: id.id, amount: amount.amount };
}

export function unprocessable(detail: FieldError[]): HttpError {
  return new HttpError(422, { detail });
}

// The cursor is opaque to clients: a versioned, base64url-wrapped position, checked on the way in.
export function encodeCursor(seq: string): string {
  return Buffer.from(`o1:${seq}`).toString('base64url');
}

export function decodeCursor(raw: string): string | undefined {
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(raw)) return undefined;
  const seq = /^o1:(\d{1,19})$/.exec(Buffer.from(raw, 'base64url').toString('latin1'))?.[1];
  return seq !== undefined && BigInt(seq) <= 9_223_372_036_854_775_807n ? seq : undefined;
}

export function parseListQuery(query: Record<string, unknown>): {
  limit: number;
  after: string | undefined;
} {
  const errors: FieldError[] = [];
  let limit = DEFAULT_LIMIT;
  if (query.limit !== undefined) {
    const raw = query.limit;
    if (
      typeof raw === 'string' &&
      /^\d{1,3}$/.test(raw) &&
      Number(raw) >= 1 &&
      Number(raw) <= MAX_LIMIT
    )
      limit = Number(raw);
    else
      errors.push({
        type: 'int_range',
        loc: ['query', 'limit'],
        msg: `Input should be a whole number from 1 to ${MAX_LIMIT}`,
        input: raw,
      });
  }
  let after: string | undefined;
  if (query.cursor !== undefined) {
    const raw = query.cursor;
    after = typeof raw === 'string' ? decodeCursor(raw) : undefined;
    if (after === undefined) {
      errors.push({
        type: 'value_error',
        loc: ['query', 'cursor'],
        msg: 'Input should be a next_cursor this API returned',
        input: raw,
      });
    }
  }
  if (errors.length > 0) throw unprocessable(errors);
  return { limit, after };
}

export const NOT_CONFIGURED = { error: 'database not configured' };
export const UNAVAILABLE = { error: 'database unavailable' };

/**
 * Runs a handler's database work. No database configured, or one that cannot be reached right
 * now, is a 503 (with Retry-After); any other error stays a 500 and is logged as a bug.
 */
export function requireDatabase(db: Database | undefined): Database {
  if (db === undefined) throw new HttpError(503, NOT_CONFIGURED);
  return db;
}

export async function withDatabase<T>(
  db: Database | undefined,
  res: Response,
  work: (db: Database) => Promise<T>,
): Promise<T> {
  const database = requireDatabase(db);
  try {
    return await work(database);
  } catch (err) {
    if (!isUnavailable(err)) throw err;
    res.setHeader('Retry-After', '1');
    throw new HttpError(503, UNAVAILABLE);
  }
}

export function addOrderRoutes(
  router: IRouter,
  at: (path: string) => string,
  db: Database | undefined,
): void {
  router
    .route(at('/orders'))
    .get(async (req, res) => {
      requireDatabase(db);
      const { limit, after } = parseListQuery(req.query);
      const page = await withDatabase(db, res, (d) => listOrders(d, limit, after));
      sendJson(res, {
        orders: page.orders,
        next_cursor: page.next === undefined ? null : encodeCursor(page.next),
      });
    })
    .post(async (req, res) => {
      requireDatabase(db);
      // No JSON body at all (another content type, or none): the same 422 as a body of the wrong shape.
      const order = validateNewOrder(req.body, 'body');
      if (Array.isArray(order)) throw unprocessable(order);
      const result = await withDatabase(db, res, (d) => createOrder(d, order.id, order.amount));
      if (result.outcome === 'conflict') {
        throw new HttpError(409, {
          error: 'an order with this id already exists with another amount',
          id: result.order.id,
          amount: result.order.amount,
        });
      }
      if (result.outcome === 'created') res.setHeader('Location', at(`/orders/${result.order.id}`));
      sendJson(res, result.order, result.outcome === 'created' ? 201 : 200);
    })
    .all(methodNotAllowed('GET, HEAD, POST'));

  router
    .route(at('/orders/:id'))
    .get(async (req, res) => {
      requireDatabase(db);
      const id = req.params.id;
      // Made only for a 404: an Error captures a stack trace, about 2 % of a found order's CPU.
      const notFound = () => new HttpError(404, { error: 'order not found', id });
      // An id that could never have been stored needs no query.
      if (typeof id !== 'string' || 'error' in parseOrderId(id, [])) throw notFound();
      const order = await withDatabase(db, res, (d) => getOrder(d, id));
      if (order === undefined) throw notFound();
      sendJson(res, order);
    })
    .all(methodNotAllowed('GET, HEAD'));
}
