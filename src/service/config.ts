// The one place the service reads its environment. Everything else receives a typed Config.
import { z } from 'zod';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const integer = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `must be a whole number between ${min} and ${max}`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be a whole number between ${min} and ${max}`);

const schema = z.object({
  PORT: integer(1, 65535).default(8000),
  // An IPv4/IPv6 address or a host name; anything else could only fail later, at listen time.
  HOST: z
    .string()
    .regex(
      /^([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$/,
      'must be an IP address or a host name',
    )
    .default('0.0.0.0'),
  LOG_LEVEL: z
    .enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` })
    .default('info'),
  // A prefix such as /api for VMs behind a shared proxy: leading slash, no trailing slash.
  BASE_PATH: z
    .string()
    .regex(
      // Segments made only of dots would be normalised away by clients, leaving every route unreachable.
      /^(\/(?!\.+(\/|$))[A-Za-z0-9._~-]+)*$/,
      'must be empty or look like /api or /team/api (no trailing slash, no . or .. segments)',
    )
    .default(''),
  APP_VERSION: z.string().min(1, 'must not be empty').max(128).default('0.0.0-dev'),
  GIT_COMMIT: z.string().min(1, 'must not be empty').max(64).default('unknown'),
  SHUTDOWN_TIMEOUT_MS: integer(0, 600_000).default(10_000),
  // After SIGTERM, keep serving with /ready at 503 this long, so load balancers that poll it stop
  // sending traffic before the listener closes. Part of SHUTDOWN_TIMEOUT_MS, not added to it.
  // 0 by default: Berth's deploy moves traffic away (and confirms it) before it stops a
  // container, and the chart pauses in preStop; only a balancer that polls /ready needs it.
  SHUTDOWN_DELAY_MS: integer(0, 600_000).default(0),
  // PostgreSQL for the Orders API. Unset: the service runs without it and /orders answers 503.
  DATABASE_URL: z
    .string()
    .refine(isPostgresUrl, 'must be a URL like postgres://user:password@host:5432/dbname')
    .optional(),
  // Connections the pool may open; the service's share of the server's max_connections.
  DATABASE_POOL_MAX: integer(1, 100).default(10),
  // Bounds both the wait for a connection and each statement, so a stuck database turns into a
  // quick 503 instead of requests piling up.
  DATABASE_TIMEOUT_MS: integer(100, 60_000).default(5_000),
  // How long the database may stay unreachable before /ready turns 503: a database restart
  // shorter than this never takes the instance out of rotation.
  DATABASE_READY_GRACE_S: integer(0, 3_600).default(30),
});

/** postgres:// or postgresql:// with a host (or a ?host= socket directory). */
function isPostgresUrl(raw: string): boolean {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return false;
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') return false;
  return url.hostname !== '' || url.searchParams.has('host');
}

/** The URL with its password replaced, for messages and logs; never the password itself. */
export function redactDatabaseUrl(raw: string): string {
  // Everything between the user name and the last @ is taken as the password, even when it holds
  // a stray @, / or : that makes the URL unparseable (redacting too much is harmless).
  return raw
    .replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/[^:@/]*):.*@/, '$1:***@')
    .replace(/([?&]password=)[^&]*/gi, '$1***');
}

export type Config = {
  port: number;
  host: string;
  logLevel: (typeof LOG_LEVELS)[number];
  basePath: string;
  appVersion: string;
  gitCommit: string;
  shutdownTimeoutMs: number;
  shutdownDelayMs: number;
  /** Undefined when DATABASE_URL is unset: the order routes answer 503. */
  databaseUrl: string | undefined;
  databasePoolMax: number;
  databaseTimeoutMs: number;
  databaseReadyGraceS: number;
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Validates the environment; throws a ConfigError that names every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // An empty value in .env means "not set", as users expect from `PORT=` lines.
  const present = Object.fromEntries(
    Object.keys(schema.shape)
      .filter((key) => env[key] !== undefined && env[key] !== '')
      .map((key) => [key, env[key]]),
  );
  const result = schema.safeParse(present);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const name = String(issue.path[0]);
      const got = name === 'DATABASE_URL' ? redactDatabaseUrl(env[name] ?? '') : env[name];
      return `${name} ${issue.message} (got ${JSON.stringify(got)})`;
    });
    throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`);
  }
  const c = result.data;
  if (c.SHUTDOWN_DELAY_MS > c.SHUTDOWN_TIMEOUT_MS) {
    throw new ConfigError(
      `Invalid configuration: SHUTDOWN_DELAY_MS must not exceed SHUTDOWN_TIMEOUT_MS (got ${c.SHUTDOWN_DELAY_MS} > ${c.SHUTDOWN_TIMEOUT_MS})`,
    );
  }
  return {
    port: c.PORT,
    host: c.HOST,
    logLevel: c.LOG_LEVEL,
    basePath: c.BASE_PATH,
    appVersion: c.APP_VERSION,
    gitCommit: c.GIT_COMMIT,
    shutdownTimeoutMs: c.SHUTDOWN_TIMEOUT_MS,
    shutdownDelayMs: c.SHUTDOWN_DELAY_MS,
    databaseUrl: c.DATABASE_URL,
    databasePoolMax: c.DATABASE_POOL_MAX,
    databaseTimeoutMs: c.DATABASE_TIMEOUT_MS,
    databaseReadyGraceS: c.DATABASE_READY_GRACE_S,
  };
}
