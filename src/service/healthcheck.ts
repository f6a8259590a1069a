// The image's HEALTHCHECK: `node dist/service/healthcheck.js` exits 0 when the service in this
// container answers GET /health with 200, else 1. Node is already in the image, so no curl/wget.
// It reads only PORT, HOST and BASE_PATH (not the full config): a healthcheck must not fail
// because of an unrelated setting, and it must stay cheap (it runs every few seconds).
import http from 'node:http';
import { pathToFileURL } from 'node:url';

const TIMEOUT_MS = 3_000;
const WILDCARD_HOSTS = new Set(['', '0.0.0.0', '::', '[::]']);

/** The URL of this container's own /health, from the same variables the server listens on. */
export function healthUrl(env: NodeJS.ProcessEnv): string {
  const port = env.PORT || '8000';
  const host = env.HOST ?? '';
  const target = WILDCARD_HOSTS.has(host) ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `http://${target}:${port}${env.BASE_PATH ?? ''}/health`;
}

/** Resolves to a one-line verdict; `ok` is true only for a 200 within the timeout. */
export function probe(
  url: string,
  timeoutMs = TIMEOUT_MS,
): Promise<{ ok: boolean; message: string }> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      res.resume();
      const ok = res.statusCode === 200;
      resolve({ ok, message: `${url} -> ${res.statusCode}` });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => resolve({ ok: false, message: `${url} -> ${err.message}` }));
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { ok, message } = await probe(healthUrl(process.env));
  // Docker keeps this output in `docker inspect` (State.Health.Log): say what was checked.
  (ok ? console.log : console.error)(message);
  process.exit(ok ? 0 : 1);
}
