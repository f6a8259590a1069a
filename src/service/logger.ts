import { pino, type Logger } from 'pino';
import type { Config } from './config.js';

/** JSON lines on stdout: what `docker logs` and any log shipper expect. */
export function createLogger(config: Pick<Config, 'logLevel' | 'appVersion'>): Logger {
  return pino(
    {
      level: config.logLevel,
      base: { service: 'berth', version: config.appVersion },
      timestamp: isoTimePerMillisecond(),
    },
    // Synchronous writes: each line is one write(2) on the main thread, in the log before the next
    // request runs and never lost to a crash. Asynchronous ones (sync: false) go through libuv's
    // thread pool: a futex wake-up, a worker thread and an eventfd back for each batch. Under
    // bench:orders that was 0.7 more futex calls per request (strace) and about 7 % more CPU per
    // request (6 of 6 paired rounds), on a machine where PostgreSQL and the load share the cores.
    // The price: a reader that stops draining a full stdout pipe stalls the process, as it does
    // Node's own process.stdout on a Linux pipe. Buffering lines into 4 kB blocks (minLength)
    // measured 4 % more CPU in bench:http: sonic-boom re-measures its buffer string on every line.
    pino.destination({ dest: 1, sync: true }),
  );
}

// pino's isoTime formats a new Date for every line (about 2 µs each in a bench:http profile);
// lines written within the same millisecond share one string.
function isoTimePerMillisecond(): () => string {
  let lastMs = -1;
  let last = '';
  return () => {
    const now = Date.now();
    if (now !== lastMs) {
      lastMs = now;
      last = `,"time":"${new Date(now).toISOString()}"`;
    }
    return last;
  };
}
