// The orders table's queries: every statement the service sends about orders, named for
// db_query_duration_seconds. Amounts go in and come out as text (numeric, never a float).
import { randomUUID } from 'node:crypto';
import type { Database } from './database.js';

export type Order = { id: string; amount: string; created_at: string };

type OrderRow = { id: string; amount: string; created_at: Date; seq: string };

const COLUMNS = 'id, amount::text AS amount, created_at, seq::text AS seq';

// The statements by primary key run on every POST and GET by id: prepared, PostgreSQL parses
// them once per connection instead of on every request, and after a few runs reuses one plan
// (bench:orders). Their columns are listed, so a migration
// that adds a column leaves their result shape unchanged and the prepared statements valid (a
// renamed or dropped column breaks them as it breaks any query). A changed TYPE of a column they
// return breaks only them: each pooled connection then fails with "cached plan must not change
// result type" until it is replaced, which is one more reason the expand-then-contract rule
// never changes a column in place. The list query stays unprepared:
// a generic plan for "$2 IS NULL OR seq < $2" could not use the cursor to start the index scan.
const PREPARED = { prepared: true };

function toOrder(row: OrderRow): Order {
  return { id: row.id, amount: row.amount, created_at: row.created_at.toISOString() };
}

export type CreateResult =
  | { outcome: 'created'; order: Order }
  /** The same id with the same amount: the earlier order, unchanged. */
  | { outcome: 'existing'; order: Order }
  /** The same id with another amount. */
  | { outcome: 'conflict'; order: Order };

/**
 * Creates an order, idempotently by id. Two statements, not one: when a concurrent request
 * inserts the same id, INSERT ... ON CONFLICT DO NOTHING waits for it to commit, and only a new
 * statement (the SELECT) sees the committed row; a single statement's snapshot would not.
 */
export async function createOrder(
  db: Database,
  id: string | undefined,
  amount: string,
): Promise<CreateResult> {
  const orderId = id ?? randomUUID();
  const inserted = await db.query<OrderRow>(
    'order_insert',
    `INSERT INTO orders (id, amount) VALUES ($1, $2::numeric) ON CONFLICT (id) DO NOTHING RETURNING ${COLUMNS}`,
    [orderId, amount],
    PREPARED,
  );
  const row = inserted.rows[0];
  if (row !== undefined) return { outcome: 'created', order: toOrder(row) };
  const existing = await db.query<OrderRow & { same: boolean }>(
    'order_get_for_create',
    `SELECT ${COLUMNS}, amount = $2::numeric AS same FROM orders WHERE id = $1`,
    [orderId, amount],
    PREPARED,
  );
  const found = existing.rows[0];
  // Orders are never deleted by the service; a row gone in between was removed by hand.
  if (found === undefined) throw new Error(`order ${orderId} conflicted on insert but is gone`);
  return { outcome: found.same ? 'existing' : 'conflict', order: toOrder(found) };
}

export async function getOrder(db: Database, id: string): Promise<Order | undefined> {
  const result = await db.query<OrderRow>(
    'order_get',
    `SELECT ${COLUMNS} FROM orders WHERE id = $1`,
    [id],
    PREPARED,
  );
  const row = result.rows[0];
  return row === undefined ? undefined : toOrder(row);
}

/**
 * One page, newest first. The cursor is the position (seq) of the last order on the previous
 * page, so orders created meanwhile never shift a page or appear twice.
 */
export async function listOrders(
  db: Database,
  limit: number,
  after: string | undefined,
): Promise<{ orders: Order[]; next: string | undefined }> {
  const result = await db.query<OrderRow>(
    'order_list',
    `SELECT ${COLUMNS} FROM orders WHERE $2::bigint IS NULL OR seq < $2::bigint ORDER BY seq DESC LIMIT $1`,
    [limit + 1, after ?? null],
  );
  const rows = result.rows.slice(0, limit);
  const last = rows.at(-1);
  return {
    orders: rows.map(toOrder),
    next: result.rows.length > limit && last !== undefined ? last.seq : undefined,
  };
}
