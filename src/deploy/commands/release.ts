// The release command (DEPLOY_RELEASE_COMMAND, e.g. migrations): one one-off container of the new
// image, with the app's settings file and networks and the app's hardening, run to completion
// under a time limit kept on the VM, and removed whatever happens.
import { projectNetwork } from './app.js';
import type { EnvName } from '../environments.js';
import { EXIT } from '../limits.js';
import { docker, sh, type RemoteCommand } from './command.js';
import type { Tuning } from './files.js';

export const LABEL_RELEASE = 'berth.release';

export interface ReleaseSpec {
  env: EnvName;
  /** The one-off container's name (the new app container's name + `-release`). */
  name: string;
  /** The new image's id. */
  image: string;
  /** The environment's app settings: secrets travel in this file, never on the command line. */
  envFile: string;
  /** The shared network (BERTH_NETWORK), joined after the project network. */
  network: string;
  argv: string[];
  timeoutS: number;
  tuning: Tuning;
}

// $1 name, $2 shared network, $3 seconds; the rest is `docker create`'s arguments. `docker
// create` + `network connect` + `start -a` instead of `docker run`: older engines take one
// --network only. `timeout` ends the attached client; `rm -f` then kills the container itself.
const SCRIPT = [
  'name=$1 net=$2 secs=$3; shift 3',
  `docker create "$@" >/dev/null || exit ${EXIT.release.setup}`,
  `docker network connect "$net" "$name" || { docker rm -f "$name" >/dev/null 2>&1; exit ${EXIT.release.setup}; }`,
  'timeout "$secs" docker start -a "$name"; rc=$?',
  `[ $rc -eq ${EXIT.release.timedOut} ] && echo "berth: the release command ran longer than $secs s: killed" >&2`,
  'docker rm -f "$name" >/dev/null 2>&1',
  'exit $rc',
].join('\n');

export function runRelease(s: ReleaseSpec): RemoteCommand {
  // prettier-ignore
  const create = [
    '--name', s.name,
    '--network', projectNetwork(s.env),
    '--env-file', s.envFile,
    '--label', `${LABEL_RELEASE}=${s.env}`,
    '--read-only',
    '--tmpfs', '/tmp:size=64m',
    '--cap-drop', 'ALL',
    '--security-opt', 'no-new-privileges=true',
    '--memory', s.tuning.APP_MEMORY_LIMIT || '512m',
    '--cpus', s.tuning.APP_CPUS || '1.0',
    '--pids-limit', '256',
    s.image,
    ...s.argv,
  ];
  return sh('release.run', SCRIPT, s.name, s.network, String(s.timeoutS), ...create);
}

/** Kills and removes the one-off container (after a lost connection or a timeout on our side). */
export const removeRelease = (name: string): RemoteCommand =>
  docker('release.remove', 'rm', '-f', name);
