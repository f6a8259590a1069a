import type { IRouter } from 'express';
import { methodNotAllowed, validationError } from '../errors.js';
import { sendJson } from '../send-json.js';

// Plain decimal integers only: "+5", "5.0", "1e3" and "0x10" are rejected, as FastAPI's int does
// for the cases users hit in practice, and the value must be exactly representable in JSON.
const INTEGER = /^-?\d+$/;

export function parseItemId(raw: string): number {
  if (!INTEGER.test(raw)) {
    throw validationError(
      ['path', 'item_id'],
      'int_parsing',
      'Input should be a valid integer, unable to parse string as an integer',
      raw,
    );
  }
  const value = Number(raw);
  if (!Number.isSafeInteger(value)) {
    throw validationError(
      ['path', 'item_id'],
      'int_out_of_range',
      `Input should be an integer between ${Number.MIN_SAFE_INTEGER} and ${Number.MAX_SAFE_INTEGER}`,
      raw,
    );
  }
  return value;
}

export function parseQuery(raw: unknown): string | null {
  if (raw === undefined) return null;
  if (typeof raw !== 'string') {
    throw validationError(['query', 'q'], 'string_type', 'Input should be a single string', raw);
  }
  return raw;
}

export function addItemRoutes(router: IRouter, at: (path: string) => string): void {
  router
    .route(at('/items/:item_id'))
    .get((req, res) => {
      const raw = req.params.item_id;
      sendJson(res, {
        item_id: parseItemId(typeof raw === 'string' ? raw : ''),
        q: parseQuery(req.query.q),
      });
    })
    .all(methodNotAllowed('GET, HEAD'));
  // "/items/" has an empty id: say so in the same shape instead of a bare 404 (routing is not
  // strict, so this one path also matches the trailing slash).
  router.get(at('/items'), () => {
    throw validationError(['path', 'item_id'], 'missing', 'Field required', '');
  });
}
