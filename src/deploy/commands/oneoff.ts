// Day-two commands on the live environment: its logs (app or proxy) and one-off containers of
// the live image (a console, a data fix). Neither ever touches the live container.
import { projectName, type EnvName } from '../environments.js';
import { projectNetwork } from './app.js';
import { docker, untilHangup, type RemoteCommand } from './command.js';

/** Label of one-off containers (not `berth.env`: deploys and pruning never see them). */
export const LABEL_ONEOFF = 'berth.oneoff';

export interface LogOptions {
  follow?: boolean;
  /** docker's --since: a duration (10m, 1h30m) or a timestamp. */
  since?: string;
  /** Last N lines (docker's --tail). */
  tail?: number;
}

/**
 * `docker logs` of one container, stdout and stderr as the container wrote them. Wrapped in
 * `untilHangup`, so a follow ends on the VM as soon as the CLI goes away (Ctrl-C, lost connection).
 */
export function containerLogStream(container: string, o: LogOptions = {}): RemoteCommand {
  const flags: string[] = [];
  if (o.follow) flags.push('--follow');
  if (o.since !== undefined) flags.push('--since', o.since);
  if (o.tail !== undefined) flags.push('--tail', String(o.tail));
  return untilHangup(docker('logs.stream', 'logs', ...flags, '--', container));
}

/** The environment's proxy container, running or not (its id, or nothing). */
export const findProxy = (env: EnvName): RemoteCommand =>
  docker(
    'logs.findProxy',
    'ps',
    '-aq',
    '--filter',
    `label=com.docker.compose.project=${projectName(env)}`,
    '--filter',
    'label=com.docker.compose.service=proxy',
  );

export interface OneOffSpec {
  env: EnvName;
  /** berth-<env>-oneoff-<time>-<random>: known beforehand, so an interrupted run can remove it. */
  name: string;
  /** The live container's image id. */
  image: string;
  envFile: string;
  /** The shared network (BERTH_NETWORK), where the live app is `berth-<env>-app`. */
  sharedNetwork: string;
  /** A terminal (`-t`); stdin is always passed (`-i`). */
  tty: boolean;
  command: string[];
}

/**
 * `docker run --rm` of the live image with the app's settings, on the app's networks, with the
 * hardening of the app container (read-only root, /tmp tmpfs, no capabilities, no new
 * privileges, the image's own non-root user) and its limits. The exit code is the command's.
 */
export function runOneOff(s: OneOffSpec): RemoteCommand {
  // prettier-ignore
  return docker('oneoff.run', 'run',
    '--rm',
    '--name', s.name,
    '-i',
    ...(s.tty ? ['-t'] : []),
    '--network', projectNetwork(s.env),
    '--network', s.sharedNetwork,
    '--env-file', s.envFile,
    '--label', `${LABEL_ONEOFF}=${s.env}`,
    '--read-only',
    '--tmpfs', '/tmp:size=64m',
    '--cap-drop', 'ALL',
    '--security-opt', 'no-new-privileges=true',
    '--memory', '512m',
    '--pids-limit', '256',
    '--log-driver', 'none',
    s.image,
    ...s.command,
  );
}

/** Removes a one-off container whatever state it is in (after an interrupt). */
export const removeOneOff = (name: string): RemoteCommand =>
  docker('oneoff.remove', 'rm', '-f', name);
