import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { IRouter } from 'express';
import { HttpError, methodNotAllowed, validationError } from '../errors.js';
import { sendJson } from '../send-json.js';

// A fixed, small amount of CPU (about a millisecond): enough to show on dashboards, too little to
// let a caller tie up the event loop.
const HASH_ROUNDS = 2_000;
// Optional simulated I/O wait, so latency alerts and graceful shutdown can be exercised.
const MAX_DELAY_MS = 5_000;

export function parseFail(raw: unknown): boolean {
  if (raw === undefined || raw === 'false') return false;
  if (raw === 'true') return true;
  throw validationError(['query', 'fail'], 'bool_parsing', 'Input should be true or false', raw);
}

export function parseDelayMs(raw: unknown): number {
  if (raw === undefined) return 0;
  if (typeof raw === 'string' && /^\d+$/.test(raw) && Number(raw) <= MAX_DELAY_MS)
    return Number(raw);
  throw validationError(
    ['query', 'delay_ms'],
    'int_range',
    `Input should be a whole number from 0 to ${MAX_DELAY_MS}`,
    raw,
  );
}

export function burnCpu(rounds = HASH_ROUNDS): string {
  let digest = 'berth';
  for (let i = 0; i < rounds; i++) digest = createHash('sha256').update(digest).digest('hex');
  return digest;
}

export function addWorkRoutes(router: IRouter, at: (path: string) => string): void {
  router
    .route(at('/work'))
    .get(async (req, res) => {
      const fail = parseFail(req.query.fail);
      const delayMs = parseDelayMs(req.query.delay_ms);
      const started = performance.now();
      burnCpu();
      if (delayMs > 0) await sleep(delayMs);
      if (fail) throw new HttpError(500, { error: 'simulated failure' });
      sendJson(res, {
        status: 'ok',
        duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
      });
    })
    .all(methodNotAllowed('GET, HEAD'));
}
