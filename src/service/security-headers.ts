import type { Request, Response } from 'express';
import helmet from 'helmet';

/**
 * helmet's security headers, computed once at start and set on each response in one call.
 * With helmet's defaults the headers do not depend on the request (no CSP nonces), so running
 * its dozen small middlewares on every request would only repeat the same work.
 */
export function securityHeaders(): (res: Response) => void {
  const headers = new Map<string, string>();
  const capture = {
    setHeader: (name: string, value: unknown) => headers.set(name, String(value)),
    removeHeader: () => undefined,
    getHeader: () => undefined,
  };
  helmet()(
    { method: 'GET', headers: {} } as Request,
    capture as unknown as Response,
    () => undefined,
  );
  if (headers.size === 0) throw new Error('helmet set no headers: its API changed');
  return (res) => {
    res.setHeaders(headers);
  };
}
