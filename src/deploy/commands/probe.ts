// The app's health over HTTP, asked from outside its container: remote/http-probe.sh, run by
// remote/proxy.sh (`probe`) in the environment's proxy or a one-off container of its image, on the
// project network. The app's image needs no shell, node or curl: only an HTTP port.
import { projectName, type EnvName } from '../environments.js';
import { program } from '../remote/programs.js';
import { APP_LISTEN_PORT, projectNetwork } from './app.js';
import { STARTUP_POLL_S } from '../limits.js';
import { shellProgram, type RemoteCommand } from './command.js';

/** The app container by name, as Docker's DNS on the project network knows it. */
export const appUrl = (name: string, path: string): string =>
  `http://${name}:${APP_LISTEN_PORT}${path}`;

const probe = (cmd: string, env: EnvName, ...args: string[]): RemoteCommand =>
  // prettier-ignore
  shellProgram(cmd, 'proxy.sh', 'probe',
    projectName(env), projectNetwork(env), program('http-probe.sh'), ...args);

export interface HealthOptions {
  path: string;
  timeoutS: number;
  intervalS: number;
  successes: number;
}

/**
 * Polls until `successes` answers in a row are 2xx; the last line is what src/deploy/health.ts
 * reads. Until the first 2xx it asks every STARTUP_POLL_S at most: a deploy waits for the app's
 * first answer, not for the next tick of a slower interval.
 */
export const healthCheck = (env: EnvName, name: string, o: HealthOptions): RemoteCommand =>
  // prettier-ignore
  probe('probe.health', env, 'health', appUrl(name, o.path),
    String(Math.ceil(o.timeoutS)), String(o.intervalS), String(o.successes),
    String(Math.min(o.intervalS, STARTUP_POLL_S)));

/** One GET, printing `STATUS BODY` (`0 WHY` when nothing answered): for `status`. */
export const probeOnce = (env: EnvName, name: string, path: string): RemoteCommand =>
  probe('probe.once', env, 'get', appUrl(name, path));
