import { pino, type Logger } from 'pino';
import type { Config } from './config.js';

/** JSON lines on stdout: what `docker logs` and any log shipper expect. */
export function createLogger(config: Pick<Config, 'logLevel' | 'appVersion'>): Logger {
  return pino(
    {
      level: config.logLevel,
      base: { service: 'berth', version: config.appVersion },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    // Buffered writes keep logging off the request path; pino flushes the buffer on exit.
    pino.destination({ dest: 1, sync: false }),
  );
}
