// The app containers: one per deploy, named by its creation time, next to the live one until the
// switch. They publish no port: the proxy reaches them on the project network.
import { appAlias, projectName, type EnvName } from '../environments.js';
import { STOP_GRACE_S } from '../limits.js';
import { docker, sh, type RemoteCommand } from './command.js';
import type { Tuning } from './files.js';

export const LABEL_ENV = 'berth.env';
export const LABEL_DIGEST = 'berth.digest';
export const LABEL_IMAGE = 'berth.image';

/** The port the app listens on inside its container, whatever .env says: the proxy and Prometheus use it. */
export const APP_LISTEN_PORT = 8000;

/** Network compose gives the project (v1 and v2 both name it `<project>_default`); the proxy lives there. */
export const projectNetwork = (env: EnvName): string => `${projectName(env)}_default`;

export interface AppSpec {
  env: EnvName;
  name: string;
  /** What to run: an image id or a reference the engine has locally. */
  image: string;
  /** What the user asked for (a tag or a digest reference), for labels and history. */
  source: string;
  digest: string;
  envFile: string;
  tuning: Tuning;
}

/**
 * `docker create` with the hardening of the `app` service in docker-compose.yml (a unit test
 * holds the two together). The container joins the compose project by label, so `docker compose
 * ps` lists it, but gets its own name: the proxy's upstream points at exactly this container.
 */
export function createApp(spec: AppSpec): RemoteCommand {
  const t = spec.tuning;
  // prettier-ignore
  return docker('app.create', 'create',
    '--name', spec.name,
    '--network', projectNetwork(spec.env),
    '--env-file', spec.envFile,
    '--env', `PORT=${APP_LISTEN_PORT}`,
    '--env', 'HOST=0.0.0.0',
    '--expose', String(APP_LISTEN_PORT),
    '--label', `com.docker.compose.project=${projectName(spec.env)}`,
    '--label', 'com.docker.compose.service=app',
    // compose v2 lists only containers marked as not one-off.
    '--label', 'com.docker.compose.oneoff=False',
    '--label', `${LABEL_ENV}=${spec.env}`,
    '--label', `${LABEL_DIGEST}=${spec.digest}`,
    '--label', `${LABEL_IMAGE}=${spec.source}`,
    '--restart', 'unless-stopped',
    // No --health-*: the image's own HEALTHCHECK, if it has one (Berth's does). Forcing one here
    // would need a program inside every image; the deploy's own gate probes from outside.
    '--stop-timeout', String(STOP_GRACE_S),
    '--read-only',
    '--tmpfs', '/tmp:size=64m',
    '--cap-drop', 'ALL',
    '--security-opt', 'no-new-privileges=true',
    '--memory', t.APP_MEMORY_LIMIT || '512m',
    '--cpus', t.APP_CPUS || '1.0',
    '--pids-limit', '256',
    '--log-driver', 'json-file',
    '--log-opt', `max-size=${t.LOG_MAX_SIZE || '10m'}`,
    '--log-opt', `max-file=${t.LOG_MAX_FILE || '5'}`,
    spec.image,
  );
}

/** The network shared with monitoring (BERTH_NETWORK); created once, by whichever deploy comes first. */
export const ensureNetwork = (name: string): RemoteCommand =>
  sh(
    'app.ensureNetwork',
    'docker network inspect "$1" >/dev/null 2>&1 || docker network create "$1" >/dev/null',
    name,
  );

/**
 * The shared `berth` network, where Prometheus finds the app as berth-<env>-app and the edge by
 * its name. Joined once: before the switch when the edge needs it, else after; again is a no-op.
 */
export const joinSharedNetwork = (network: string, env: EnvName, name: string): RemoteCommand =>
  sh(
    'app.joinNetwork',
    'out=$(docker network connect --alias "$2" "$1" "$3" 2>&1) || case "$out" in *"already exists"*) ;; *) printf "%s\\n" "$out" >&2; exit 1 ;; esac',
    network,
    appAlias(env),
    name,
  );

export const startContainer = (name: string): RemoteCommand => docker('app.start', 'start', name);

/** SIGTERM, then up to `seconds` for the service to drain before SIGKILL. */
export const stopContainer = (name: string, seconds = STOP_GRACE_S): RemoteCommand =>
  docker('app.stop', 'stop', '-t', String(seconds), name);

export const removeContainers = (names: string[]): RemoteCommand =>
  docker('app.remove', 'rm', '-f', ...names);

export const containerLogs = (name: string, lines: number): RemoteCommand =>
  docker('app.logs', 'logs', '--tail', String(lines), name);

// The last field: NETWORK=ADDRESS for each network (the switch needs the project network's).
export const CONTAINER_FORMAT = `{{.State.Status}}\t{{.State.ExitCode}}\t{{.RestartCount}}\t{{.State.StartedAt}}\t{{.Image}}\t{{index .Config.Labels "${LABEL_DIGEST}"}}\t{{index .Config.Labels "${LABEL_IMAGE}"}}\t{{range $net, $s := .NetworkSettings.Networks}}{{$net}}={{$s.IPAddress}} {{end}}`;
/** Exit 1 with nothing on stdout when the container does not exist. */
export const inspectContainer = (name: string): RemoteCommand =>
  docker('app.inspect', 'container', 'inspect', '--format', CONTAINER_FORMAT, name);

/** All app containers of the environment, running or not: `NAME STATE DIGEST` per line (digest from the label). */
export const listAppContainers = (env: EnvName): RemoteCommand =>
  docker(
    'app.list',
    'ps',
    '-a',
    '--no-trunc',
    '--filter',
    `label=${LABEL_ENV}=${env}`,
    '--format',
    `{{.Names}} {{.State}} {{.Label "${LABEL_DIGEST}"}}`,
  );

/** A container's address on the project network (the one the proxy shares), as `docker inspect` formats it. */
export const addressFormat = (env: EnvName): string =>
  `{{(index .NetworkSettings.Networks "${projectNetwork(env)}").IPAddress}}`;

export const containerAddress = (name: string, env: EnvName): RemoteCommand =>
  docker('app.address', 'container', 'inspect', '--format', addressFormat(env), name);
