import type http from 'node:http';

/** Connections that have carried an answer: a request sent on one of them again reuses it. */
const answeredOn = new WeakSet<object>();

/**
 * Whether `req` went out on a keep-alive connection that had already carried an answer, the
 * case where a reset may be a server's idle close racing the request (RFC 9112 9.3.1), which
 * clients send again. Node's `request.reusedSocket` cannot say it: it stays false for a request
 * that waited in the agent's queue and was then handed a socket another request had just freed.
 */
export function watchReuse(req: http.ClientRequest): () => boolean {
  let reused = false;
  req.on('socket', (socket) => (reused = answeredOn.has(socket)));
  req.on('response', (res: http.IncomingMessage) => answeredOn.add(res.socket));
  return () => reused;
}
