// Which settings a new container starts with. A deploy: app.env with CI's allow-listed secrets
// written over their old lines. A rollback (or the fall-back to :stable): the snapshot of app.env
// its version last served with, else today's app.env, and it says so. Staged first; it becomes
// app.env (and the version's snapshot) only once the container serves, so a refused run changes
// neither.
import { keepSettings, stageDeploySettings, stageSnapshot } from '../commands/settings.js';
import { hex12 } from '../digest.js';
import { settingsSnapshot } from '../paths.js';
import type { Run, Target } from './run.js';

/** Returns the step line: the names from CI (never a value). */
export async function stageForDeploy(run: Run): Promise<string> {
  run.checkInterrupt();
  const values = run.cfg.appSettings ?? {};
  await run.must(
    stageDeploySettings(run.paths.appEnv, run.paths.stagedSettings, values),
    'cannot stage the app settings',
  );
  const names = Object.keys(values);
  return names.length > 0
    ? `${names.join(', ')} from CI; the rest of app.env kept`
    : 'app.env as it is (no DEPLOY_APP_SETTINGS)';
}

export async function stageForRollback(run: Run, target: Target): Promise<string> {
  run.checkInterrupt();
  const snapshot = settingsSnapshot(run.paths, target.digest);
  const res = await run.must(
    stageSnapshot(snapshot, run.paths.appEnv, run.paths.stagedSettings),
    'cannot stage the app settings',
  );
  if (res.stdout.includes('snapshot')) return `as ${hex12(target.digest)} last served with them`;
  run.report.warn(
    `no settings snapshot for ${hex12(target.digest)} (deployed before Berth kept them): it starts with the current app.env`,
  );
  return 'the current app.env (no snapshot)';
}

/** The staged settings now serve: they become app.env and the version's snapshot. */
export async function keep(run: Run, target: Target): Promise<void> {
  await run.must(
    keepSettings(
      run.paths.stagedSettings,
      settingsSnapshot(run.paths, target.digest),
      run.paths.appEnv,
    ),
    'cannot keep the app settings',
  );
}
