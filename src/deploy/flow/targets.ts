// Monitoring follows the deploys: once a version serves, the environment's scrape and probe
// targets are (re)written from its settings on the VM, so a staging deployed today is watched
// today, with the metrics path its BASE_PATH gives. Best-effort: monitoring that cannot follow
// is a warning, never a failed deploy, and a VM without the monitoring stack is said in one line.
import { APP_LISTEN_PORT } from '../commands/app.js';
import { writeFile } from '../commands/files.js';
import {
  appTargetsFile,
  checkTargetsDir,
  parseSettings,
  probeTargetsFile,
  probeUrl,
  readSettings,
  parkTargetFile,
  removeTargetFiles,
  unparkTargetFile,
  targetFiles,
  targetsDir,
} from '../commands/targets.js';
import type { DeployConfig } from '../config.js';
import { appAlias, environmentInfo, type EnvName } from '../environments.js';
import { EXIT, TIMEOUT_MS } from '../limits.js';
import type { Executor } from '../ssh.js';
import { lastLine, type Run } from './run.js';

export async function registerTargets(run: Run): Promise<void> {
  await run.report
    .step(
      'monitoring targets',
      () => register(run),
      (how) => how,
    )
    .catch((err: Error) =>
      run.report.warn(`${err.message}; ${run.env} serves, but monitoring does not follow it yet`),
    );
}

async function register(run: Run): Promise<string> {
  const dir = targetsDir(run.cfg.remoteDir);
  if (!(await usable(run.exec, dir)))
    return `no monitoring stack on the VM (no ${dir}): ${run.env} is not watched`;
  const read = await run.must(
    readSettings(run.paths.env, run.paths.appEnv),
    `cannot read ${run.env}'s settings`,
  );
  const settings = parseSettings(read.stdout, environmentInfo[run.env].port);
  const files = targetFiles(dir, run.env);
  await run.must(
    writeFile(files.app, appTargetsFile(run.env, settings)),
    `cannot write ${files.app}`,
  );
  const probe = probeTargetsFile(run.env, settings);
  if (probe) await run.must(writeFile(files.probe, probe), `cannot write ${files.probe}`);
  else await run.must(removeTargetFiles(files.probe), `cannot remove ${files.probe}`);
  // `down` parked the database's target; it comes back only with a database to watch (an
  // environment whose DB_PASSWORD was removed meanwhile would page "database down" forever).
  const back = run.hasDatabase
    ? await run.must(unparkTargetFile(files.database), `cannot restore ${files.database}`)
    : undefined;
  const scrape = `scrape ${appAlias(run.env)}:${APP_LISTEN_PORT}${settings.basePath}/metrics`;
  const database = back?.stdout.includes('restored') ? `; its database watched again` : '';
  return probe
    ? `${scrape}, probe ${probeUrl(settings)}${database}`
    : `${scrape}; no probe: APP_BIND=${settings.bind} and no APP_DOMAIN, so no public URL to probe${database}`;
}

/** False when the VM has no monitoring stack; throws when it has one this user cannot write to. */
async function usable(exec: Executor, dir: string): Promise<boolean> {
  const res = await exec.run(checkTargetsDir(dir), { timeoutMs: TIMEOUT_MS.quick });
  if (res.code === 0) return true;
  if (res.code === EXIT.targets.missing) return false;
  if (res.code === EXIT.targets.notWritable)
    throw new Error(
      `cannot write ${dir}: run init_setup.sh on the VM again (it gives the deploy user that directory)`,
    );
  throw new Error(`cannot look at ${dir}: ${lastLine(res.stderr) || `exit ${res.code}`}`);
}

/** The teardown's half: the environment leaves Prometheus before its containers stop, so nothing pages. */
export async function unregisterTargets(
  exec: Executor,
  cfg: DeployConfig,
  env: EnvName,
): Promise<string> {
  const dir = targetsDir(cfg.remoteDir);
  if (!(await usable(exec, dir))) return `no monitoring stack on the VM (no ${dir})`;
  const files = targetFiles(dir, env);
  const res = await exec.run(removeTargetFiles(files.app, files.probe), {
    timeoutMs: TIMEOUT_MS.quick,
  });
  if (res.code !== 0)
    throw new Error(`cannot remove ${env}'s targets in ${dir}: ${lastLine(res.stderr)}`);
  const park = await exec.run(parkTargetFile(files.database), { timeoutMs: TIMEOUT_MS.quick });
  if (park.code !== 0)
    throw new Error(`cannot park postgres-${env}.yml in ${dir}: ${lastLine(park.stderr)}`);
  return park.stdout.includes('parked')
    ? `removed app-${env}.yml and probe-${env}.yml; postgres-${env}.yml parked until the next deploy`
    : `removed app-${env}.yml and probe-${env}.yml`;
}
