// The environment's database must be up before a new version is health-checked or its release
// command (migrations) runs. A running database is never touched: no `up` reaches it, so a deploy
// or rollback can never recreate it, whatever changed in the compose file.
import { createDbVolume, dbConfigured, dbState, dbVolumeName, startDb } from '../commands/db.js';
import { TIMEOUT_MS } from '../limits.js';
import type { Run } from './run.js';

/** Returns what it found or did, for the step line. */
export async function ensureDatabase(run: Run): Promise<string> {
  run.checkInterrupt();
  const configured = await run.must(dbConfigured(run.paths.env), `cannot read ${run.paths.env}`);
  run.hasDatabase = configured.stdout.trim() === 'yes';
  if (!run.hasDatabase) return 'none (no DB_PASSWORD in .env; init_setup.sh sets one)';
  const state = (await run.must(dbState(run.env), 'cannot look for the database')).stdout.trim();
  if (state === 'running') return 'running, untouched';
  await run.must(createDbVolume(run.env), `cannot create the volume ${dbVolumeName(run.env)}`);
  await run.must(
    startDb(run.env, run.paths.dir, run.composeVars),
    `the database did not become healthy (docker compose -p berth-${run.env} logs db)`,
    TIMEOUT_MS.dbStart,
  );
  return state ? `started (was ${state})` : 'created and started';
}
