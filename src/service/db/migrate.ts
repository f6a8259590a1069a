// The release step's command: applies every pending migration in migrations/ and exits.
//
//   node dist/service/db/migrate.js        (in the image: DEPLOY_RELEASE_COMMAND)
//   npm run migrate                         (a checkout, after npm run build)
//
// node-pg-migrate does the work: it records applied migrations in the `pgmigrations` table, runs
// the pending ones in one transaction (a failing migration leaves the schema as it was) and holds
// an advisory lock, so two release steps at once apply each migration once. Exit code 0 when the
// schema is up to date, 1 with a message otherwise; the password is never printed.
import { fileURLToPath, pathToFileURL } from 'node:url';
import dotenv from 'dotenv';
import { runner } from 'node-pg-migrate';
import type { Logger } from 'pino';
import { ConfigError, loadConfig, redactDatabaseUrl } from '../config.js';
import { createLogger } from '../logger.js';

/** migrations/ at the top of the project: two levels above src/service/db and dist/service/db. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations', import.meta.url));

/** Applies the pending migrations; resolves to the names of those it applied. */
export async function migrateUp(
  databaseUrl: string,
  logger: Logger,
  dir = MIGRATIONS_DIR,
): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
    dir,
    direction: 'up',
    migrationsTable: 'pgmigrations',
    singleTransaction: true,
    checkOrder: true,
    // A second release step started meanwhile waits for this one, then finds nothing to do.
    advisoryLockMode: 'wait',
    logger: {
      debug: () => undefined,
      info: (msg: string) => logger.info(msg),
      warn: (msg: string) => logger.warn(msg),
      error: (msg: string) => logger.error(msg),
    },
  });
  return applied.map((m) => m.name);
}

async function main(): Promise<number> {
  dotenv.config({ quiet: true });
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    return 1;
  }
  const logger = createLogger(config);
  const code = await migrate(config.databaseUrl, logger);
  // The log lines are written asynchronously: flush them before the process leaves.
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
  return code;
}

async function migrate(databaseUrl: string | undefined, logger: Logger): Promise<number> {
  if (databaseUrl === undefined) {
    logger.error('DATABASE_URL must be set to run migrations');
    return 1;
  }
  try {
    const started = Date.now();
    const applied = await migrateUp(databaseUrl, logger);
    logger.info(
      { database: redactDatabaseUrl(databaseUrl), applied, durationMs: Date.now() - started },
      applied.length === 0
        ? 'migrations: schema already up to date'
        : `migrations: applied ${applied.length}`,
    );
    return 0;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    logger.error(
      { err: { message: message.split(databaseUrl).join(redactDatabaseUrl(databaseUrl)) } },
      'migrations failed: nothing was changed',
    );
    return 1;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exit(await main());
}
