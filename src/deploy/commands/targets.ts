// The environment's entries in the monitoring stack's scrape targets on the VM: one file_sd file
// for its app (job berth-app) and one for its public URL (job blackbox-http). Prometheus re-reads
// them on change, so a deploy can add an environment and a teardown can remove it without a
// reload, and an environment that was never deployed has no file and can never page.
import { appAlias, type EnvName } from '../environments.js';
import { EXIT } from '../limits.js';
import { APP_LISTEN_PORT } from './app.js';
import { sh, type RemoteCommand } from './command.js';

/** Where init_setup.sh puts the monitoring stack's targets (mounted into Prometheus). */
export const targetsDir = (remoteDir: string): string =>
  `${remoteDir === '/' ? '' : remoteDir}/monitoring/prometheus/targets`;

export const targetFiles = (
  dir: string,
  env: EnvName,
): { app: string; probe: string; database: string } => ({
  app: `${dir}/app-${env}.yml`,
  probe: `${dir}/probe-${env}.yml`,
  // Written by init_setup.sh (it holds no secret, but only init_setup knows the exporter runs).
  database: `${dir}/postgres-${env}.yml`,
});

/** Where `down` parks the database's target: not `*.yml`, so Prometheus no longer reads it. */
export const parked = (file: string): string => `${file}.down`;

/** What the target files are made from: the environment's settings on the VM. */
export interface EnvSettings {
  /** BASE_PATH from app.env: '' or /prefix (the app serves /prefix/metrics, /prefix/health). */
  basePath: string;
  /** APP_PORT and APP_BIND from .env: where the proxy publishes the environment. */
  port: number;
  bind: string;
  /** APP_DOMAIN: the edge serves the environment over HTTPS under this name. */
  domain?: string;
}

/** The keys read from each file; everything else in them (secrets) never leaves the VM. */
export const SETTINGS_KEYS = {
  dotEnv: ['APP_PORT', 'APP_BIND', 'APP_DOMAIN'],
  // APP_DOMAIN only from .env, where the edge switch (flow/edge.ts) reads it too.
  appEnv: ['BASE_PATH'],
} as const;
const SEPARATOR = '--- app.env';

/** Prints the .env keys, a separator line, then the app.env keys; a missing file prints nothing. */
export const readSettings = (dotEnv: string, appEnv: string): RemoteCommand =>
  sh(
    'targets.readSettings',
    `[ ! -r "$1" ] || grep -E '^(${SETTINGS_KEYS.dotEnv.join('|')})=' "$1"; echo '${SEPARATOR}'; [ ! -r "$2" ] || grep -E '^(${SETTINGS_KEYS.appEnv.join('|')})=' "$2"; exit 0`,
    dotEnv,
    appEnv,
  );

export class SettingsError extends Error {
  override name = 'SettingsError';
}

const BASE_PATH = /^(\/[A-Za-z0-9._~-]+)*$/;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;
const ADDRESS = /^[0-9a-f.:]+$/i;

/** Last assignment of each key; .env values as compose reads them (quotes, ` # comment`), app.env raw. */
function assignments(text: string, compose: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line);
    if (!m?.[1]) continue;
    let value = m[2] ?? '';
    if (compose) {
      const quoted = /^(['"])(.*)\1\s*$/.exec(value.trim());
      value = quoted ? (quoted[2] ?? '') : value.replace(/\s+#.*$/, '').trim();
    }
    out[m[1]] = value;
  }
  return out;
}

/** The readSettings output as settings; a value that would not make a valid target is refused by name. */
export function parseSettings(text: string, defaultPort: number): EnvSettings {
  const at = text.indexOf(SEPARATOR);
  const dot = assignments(at < 0 ? text : text.slice(0, at), true);
  const app = assignments(at < 0 ? '' : text.slice(at + SEPARATOR.length), false);
  const basePath = app.BASE_PATH ?? '';
  if (!BASE_PATH.test(basePath))
    throw new SettingsError(`BASE_PATH in app.env is not a path like /api (got "${basePath}")`);
  const port = dot.APP_PORT ? Number(dot.APP_PORT) : defaultPort;
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new SettingsError(`APP_PORT in .env is not a port (got "${dot.APP_PORT}")`);
  const bind = dot.APP_BIND || '0.0.0.0';
  if (!ADDRESS.test(bind))
    throw new SettingsError(`APP_BIND in .env is not an IP address (got "${bind}")`);
  const domain = (dot.APP_DOMAIN ?? '').trim();
  if (domain && !DOMAIN.test(domain))
    throw new SettingsError(`APP_DOMAIN is not a host name (got "${domain}")`);
  return { basePath, port, bind, ...(domain ? { domain } : {}) };
}

/**
 * The URL a user reaches the environment by, as seen from the blackbox container: the domain over
 * HTTPS (the certificate is checked too), else the proxy's published port on the VM
 * (host.docker.internal is the VM, docker-compose.monitoring.yml maps it). Undefined when the
 * port is bound to loopback only: no container can reach it, and a probe that can never succeed
 * would page for an environment that works.
 */
export function probeUrl(s: EnvSettings): string | undefined {
  if (s.domain) return `https://${s.domain}${s.basePath}/health`;
  if (/^127\.|^::1$/.test(s.bind)) return undefined;
  const all = s.bind === '0.0.0.0' || s.bind === '::';
  const host = all ? 'host.docker.internal' : s.bind.includes(':') ? `[${s.bind}]` : s.bind;
  return `http://${host}:${s.port}${s.basePath}/health`;
}

const header = (env: EnvName, what: string): string =>
  [
    `# ${what} of Berth's ${env} environment. Written by every deploy of ${env}, removed by`,
    `# \`npm run deploy -- down --env ${env}\`: edits here are overwritten.`,
  ].join('\n');

/** file_sd for job berth-app: the app by its network alias, its env, its metrics path under BASE_PATH. */
export function appTargetsFile(env: EnvName, s: EnvSettings): string {
  return [
    header(env, 'The app (job berth-app)'),
    `- targets: ['${appAlias(env)}:${APP_LISTEN_PORT}']`,
    `  labels: {env: ${env}, __metrics_path__: '${s.basePath}/metrics'}`,
    '',
  ].join('\n');
}

/** file_sd for job blackbox-http: the public URL; undefined when there is none a probe can reach. */
export function probeTargetsFile(env: EnvName, s: EnvSettings): string | undefined {
  const url = probeUrl(s);
  if (!url) return undefined;
  return [
    header(env, 'The public URL (job blackbox-http)'),
    `- targets: ['${url}']`,
    `  labels: {env: ${env}}`,
    '',
  ].join('\n');
}

/** Exit 0: the directory is there and ours to write; else EXIT.targets.missing / notWritable. */
export const checkTargetsDir = (dir: string): RemoteCommand =>
  sh(
    'targets.checkDir',
    `[ -d "$1" ] || exit ${EXIT.targets.missing}; [ -w "$1" ] || exit ${EXIT.targets.notWritable}`,
    dir,
  );

export const removeTargetFiles = (...files: string[]): RemoteCommand =>
  sh('targets.remove', 'rm -f -- "$@"', ...files);

/**
 * `down` stops the environment's database, so its exporter would report it down and page: its
 * target is parked (renamed) instead. Prints `parked` when there was one to park.
 */
export const parkTargetFile = (file: string): RemoteCommand =>
  sh('targets.park', '[ ! -e "$1" ] || { mv -f -- "$1" "$2" && echo parked; }', file, parked(file));

/** A deploy brings a parked target back (its database runs again). Prints `restored` when it did. */
export const unparkTargetFile = (file: string): RemoteCommand =>
  sh(
    'targets.unpark',
    '[ ! -e "$2" ] || { mv -f -- "$2" "$1" && echo restored; }',
    file,
    parked(file),
  );
