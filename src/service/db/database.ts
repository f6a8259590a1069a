// The service's one connection pool, timed queries, and the database health that /ready reports.
import pg from 'pg';
import type { Logger } from 'pino';
import { redactDatabaseUrl, type Config } from '../config.js';
import type { Metrics } from '../metrics.js';

// A health check result is reused this long, so frequent /ready probes cost one query a second.
const CHECK_CACHE_MS = 1_000;
// /ready never waits longer than this for a check: a probe must answer quickly even when the
// database host swallows packets.
const CHECK_WAIT_MS = 1_000;

export type DatabaseState =
  | { status: 'ok' }
  /** Failing, but for less than DATABASE_READY_GRACE_S: still ready. */
  | { status: 'failing'; failingSeconds: number }
  /** Failing for DATABASE_READY_GRACE_S or longer: not ready. */
  | { status: 'unreachable'; failingSeconds: number };

export type Database = {
  /**
   * Runs one parameterised statement, timed under `name` in db_query_duration_seconds. With
   * `prepared`, each connection parses and plans it once, as a prepared statement called `name`,
   * and then only binds and executes it.
   */
  query<R extends pg.QueryResultRow>(
    name: string,
    text: string,
    values?: unknown[],
    options?: { prepared?: boolean },
  ): Promise<pg.QueryResult<R>>;
  /** The database's state for /ready: a cached `SELECT 1`, judged against the grace period. */
  state(): Promise<DatabaseState>;
  close(): Promise<void>;
};

type DatabaseConfig = Pick<
  Config,
  'databasePoolMax' | 'databaseTimeoutMs' | 'databaseReadyGraceS'
> & { databaseUrl: string };

export function createDatabase(config: DatabaseConfig, logger: Logger, metrics: Metrics): Database {
  const pool = new pg.Pool({
    connectionString: config.databaseUrl,
    max: config.databasePoolMax,
    connectionTimeoutMillis: config.databaseTimeoutMs,
    // The server ends a statement that runs too long; the client-side timeout also covers a
    // server that stopped answering altogether.
    statement_timeout: config.databaseTimeoutMs,
    query_timeout: config.databaseTimeoutMs + 1_000,
    idleTimeoutMillis: 30_000,
    application_name: 'berth',
  });
  // An idle connection the server closed (a restart, an administrator) is reported here; without
  // a listener it would crash the process. The pool drops it and opens a new one when needed.
  pool.on('error', (err) => {
    logger.warn(
      { err: { message: err.message, code: (err as { code?: unknown }).code } },
      'idle database connection lost',
    );
  });
  metrics.trackPool(() => ({
    total: pool.totalCount,
    idle: pool.idleCount,
    waiting: pool.waitingCount,
    max: config.databasePoolMax,
  }));
  logger.info(
    { database: redactDatabaseUrl(config.databaseUrl), poolMax: config.databasePoolMax },
    'database configured',
  );

  // The failure streak /ready judges: started by the first failed check or query that could not
  // reach the database, ended by the next one that could.
  const graceMs = config.databaseReadyGraceS * 1_000;
  let failingSince: number | undefined;
  let checkedAt = -Infinity;
  let running: Promise<void> | undefined;

  function reached(): void {
    if (failingSince === undefined) return;
    failingSince = undefined;
    logger.info('database reachable again');
  }

  function unreachable(err: unknown): void {
    if (failingSince !== undefined) return;
    failingSince = Date.now();
    const { message, code } = err as { message?: unknown; code?: unknown };
    logger.warn({ err: { message, code } }, 'database unreachable');
  }

  async function query<R extends pg.QueryResultRow>(
    name: string,
    text: string,
    values?: unknown[],
    options: { prepared?: boolean } = {},
  ) {
    const started = process.hrtime.bigint();
    let outcome: 'ok' | 'error' = 'error';
    try {
      const result = await pool.query<R>(
        options.prepared === true ? { name, text, values } : { text, values },
      );
      outcome = 'ok';
      reached();
      return result;
    } catch (err) {
      if (isUnavailable(err)) unreachable(err);
      throw err;
    } finally {
      metrics.observeQuery({
        query: name,
        outcome,
        seconds: Number(process.hrtime.bigint() - started) / 1e9,
      });
    }
  }

  function check(): Promise<void> {
    running ??= query('health_check', 'SELECT 1')
      .then(
        () => undefined,
        // Any failure of SELECT 1 means the database is not usable, whatever the error says.
        (err: unknown) => unreachable(err),
      )
      .finally(() => {
        checkedAt = Date.now();
        running = undefined;
      });
    return running;
  }

  async function state(): Promise<DatabaseState> {
    if (Date.now() - checkedAt >= CHECK_CACHE_MS) {
      const pending = check();
      let timer: NodeJS.Timeout | undefined;
      const slow = new Promise<'slow'>(
        (resolve) => (timer = setTimeout(() => resolve('slow'), CHECK_WAIT_MS)),
      );
      // A check that outlives the wait counts as a failure that started now.
      if ((await Promise.race([pending, slow])) === 'slow') failingSince ??= Date.now();
      clearTimeout(timer);
    }
    if (failingSince === undefined) return { status: 'ok' };
    const failingMs = Date.now() - failingSince;
    const failingSeconds = Math.floor(failingMs / 1_000);
    return failingMs >= graceMs
      ? { status: 'unreachable', failingSeconds }
      : { status: 'failing', failingSeconds };
  }

  return {
    query,
    state,
    close: () => pool.end(),
  };
}

/** The database DATABASE_URL names, or undefined when it is unset. */
export function databaseFromConfig(
  config: Config,
  logger: Logger,
  metrics: Metrics,
): Database | undefined {
  return config.databaseUrl === undefined
    ? undefined
    : createDatabase({ ...config, databaseUrl: config.databaseUrl }, logger, metrics);
}

// Errors that mean "the database cannot be reached or is not accepting work right now", as
// opposed to a bug in a query: they become 503 answers, the rest stay 500s.
// Connection exceptions, refused logins (a wrong password, no such database: a setting to fix,
// not a bug), insufficient resources (too many connections), operator intervention (a restart).
const UNAVAILABLE_SQLSTATE = /^(08|28|3D000|53|57P)/;
const UNAVAILABLE_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'ENOENT',
]);
const UNAVAILABLE_MESSAGES =
  /timeout exceeded when trying to connect|Connection terminated|Query read timeout|connection timeout|Client has encountered a connection error|canceling statement due to statement timeout/i;

export function isUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (
    typeof code === 'string' &&
    (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_NODE_CODES.has(code))
  )
    return true;
  // A statement timeout is SQLSTATE 57014 (query_canceled): the server is too slow right now.
  if (code === '57014') return true;
  return typeof message === 'string' && UNAVAILABLE_MESSAGES.test(message);
}
