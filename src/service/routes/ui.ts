// A minimal server-rendered page for people: the stored orders, newest first, and a form to add
// one. Plain HTML (no script, so it works without JavaScript and within the CSP helmet sets), every
// value escaped, POST-redirect-GET so reloading the page never submits twice.
import express, { type IRouter, type Response } from 'express';
import type { Database } from '../db/database.js';
import { createOrder, listOrders, type Order } from '../db/orders.js';
import { HttpError, methodNotAllowed } from '../errors.js';
import type { FieldError } from '../money.js';
import {
  decodeCursor,
  encodeCursor,
  requireDatabase,
  validateNewOrder,
  withDatabase,
} from './orders.js';

const PAGE_SIZE = 50;

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text safe in HTML content and in double- or single-quoted attributes. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

type Form = { id: string; amount: string; errors: string[] };

function page(base: string, title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 48rem; padding: 0 1rem; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .4rem .6rem; text-align: left; }
td.amount { text-align: right; font-variant-numeric: tabular-nums; }
form { margin: 1.5rem 0; display: flex; gap: .6rem; flex-wrap: wrap; align-items: end; }
label { display: flex; flex-direction: column; font-size: .9rem; }
.errors { color: #a00; }
</style>
</head>
<body>
<h1><a href="${escapeHtml(`${base}/ui/orders`)}">Orders</a></h1>
${body}
</body>
</html>
`;
}

function renderForm(base: string, form: Form): string {
  const errors =
    form.errors.length === 0
      ? ''
      : `<ul class="errors">${form.errors.map((e) => `<li>${escapeHtml(e)}</li>`).join('')}</ul>`;
  return `${errors}<form method="post" action="${escapeHtml(`${base}/ui/orders`)}">
<label>Amount <input name="amount" required inputmode="decimal" pattern="[0-9]+(\\.[0-9]{1,2})?" value="${escapeHtml(form.amount)}"></label>
<label>Id (optional) <input name="id" maxlength="64" value="${escapeHtml(form.id)}"></label>
<button type="submit">Add order</button>
</form>`;
}

function renderTable(base: string, orders: Order[], next: string | undefined): string {
  if (orders.length === 0) return '<p>No orders yet.</p>';
  const rows = orders
    .map(
      (o) =>
        `<tr><td>${escapeHtml(o.id)}</td><td class="amount">${escapeHtml(o.amount)}</td><td>${escapeHtml(o.created_at)}</td></tr>`,
    )
    .join('\n');
  const more =
    next === undefined
      ? ''
      : `<p><a href="${escapeHtml(`${base}/ui/orders?cursor=${encodeCursor(next)}`)}">Older orders</a></p>`;
  return `<table>
<thead><tr><th>Id</th><th class="amount">Amount</th><th>Created</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
${more}`;
}

function sendHtml(res: Response, html: string, status = 200): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(html));
  // A page of stored orders: never from a shared cache.
  res.setHeader('Cache-Control', 'no-store');
  res.end(html);
}

function fieldMessage(e: FieldError): string {
  const field = e.loc.at(-1) ?? 'form';
  return `${field}: ${e.msg}`;
}

export function addUiRoutes(
  router: IRouter,
  at: (path: string) => string,
  base: string,
  db: Database | undefined,
  bodyLimit: string,
): void {
  const readForm = express.urlencoded({ extended: false, limit: bodyLimit, parameterLimit: 10 });

  function unavailable(res: Response, err: unknown): void {
    // The JSON routes' 503s, as a page: a person reads this one.
    if (!(err instanceof HttpError) || err.status !== 503) throw err;
    const reason =
      db === undefined
        ? 'The database is not configured.'
        : 'The database cannot be reached right now; try again in a moment.';
    sendHtml(res, page(base, 'Orders', `<p>${escapeHtml(reason)}</p>`), 503);
  }

  async function render(res: Response, cursor: unknown, form: Form, status = 200): Promise<void> {
    // A cursor that is not one of ours (an edited link) shows the first page.
    const after = typeof cursor === 'string' ? decodeCursor(cursor) : undefined;
    const list = await withDatabase(db, res, (d) => listOrders(d, PAGE_SIZE, after));
    sendHtml(
      res,
      page(base, 'Orders', renderForm(base, form) + renderTable(base, list.orders, list.next)),
      status,
    );
  }

  router
    .route(at('/ui/orders'))
    .get(async (req, res) => {
      await render(res, req.query.cursor, { id: '', amount: '', errors: [] }).catch(
        (err: unknown) => unavailable(res, err),
      );
    })
    .post(readForm, async (req, res) => {
      await submit(req.body, res).catch((err: unknown) => unavailable(res, err));
    })
    .all(methodNotAllowed('GET, HEAD, POST'));

  async function submit(body: unknown, res: Response): Promise<void> {
    requireDatabase(db);
    const raw = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
    // An empty id field means "make one up", as leaving out "id" does in the JSON API.
    const submitted = {
      amount: raw.amount,
      ...(raw.id === '' || raw.id === undefined ? {} : { id: raw.id }),
    };
    const echo = {
      id: typeof raw.id === 'string' ? raw.id : '',
      amount: typeof raw.amount === 'string' ? raw.amount : '',
    };
    const order = validateNewOrder(submitted, 'form');
    if (Array.isArray(order))
      return render(res, undefined, { ...echo, errors: order.map(fieldMessage) }, 422);
    const result = await withDatabase(db, res, (d) => createOrder(d, order.id, order.amount));
    if (result.outcome === 'conflict') {
      const message = `id: order ${result.order.id} already exists with amount ${result.order.amount}`;
      return render(res, undefined, { ...echo, errors: [message] }, 409);
    }
    // POST-redirect-GET: the browser shows the list at a URL that is safe to reload.
    res.redirect(303, at('/ui/orders'));
  }
}
