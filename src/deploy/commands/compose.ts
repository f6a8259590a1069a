// docker compose for the environment's project: only the proxy runs under it (the app
// containers are the deploy's own, see app.ts).
import { projectName, type EnvName } from '../environments.js';
import { sh, type RemoteCommand } from './command.js';

/**
 * `docker compose` in the environment's directory, so it reads that .env for ${...} values.
 * `vars` (non-secret: image names) override .env for this one run.
 */
export function compose(
  name: string,
  env: EnvName,
  dir: string,
  args: string[],
  vars: Record<string, string> = {},
): RemoteCommand {
  const assignments = Object.entries({ BERTH_ENV: env, ...vars }).map(([k, v]) => `${k}=${v}`);
  return sh(
    name,
    'cd "$1" && shift && exec env "$@"',
    dir,
    ...assignments,
    'docker',
    'compose',
    '-p',
    projectName(env),
    ...args,
  );
}

/** Creates the proxy container and the project network without starting anything. */
export const createProxy = (
  env: EnvName,
  dir: string,
  vars: Record<string, string>,
): RemoteCommand =>
  compose('compose.createProxy', env, dir, ['up', '--no-start', '--no-deps', 'proxy'], vars);
export const startProxy = (
  env: EnvName,
  dir: string,
  vars: Record<string, string>,
): RemoteCommand =>
  compose('compose.startProxy', env, dir, ['up', '-d', '--no-deps', 'proxy'], vars);

/** Removes the project's proxy and network (the teardown; the shared network is external and stays). */
export const downProject = (
  env: EnvName,
  dir: string,
  vars: Record<string, string>,
): RemoteCommand =>
  compose('compose.down', env, dir, ['down', '--remove-orphans', '--timeout', '15'], vars);
