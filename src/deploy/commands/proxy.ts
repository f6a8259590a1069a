// The environment's nginx proxy: what upstream.conf says, and the programs of remote/proxy.sh
// that switch it, ask it where it routes, and reload it.
import { projectName, type EnvName } from '../environments.js';
import { addressFormat, APP_LISTEN_PORT } from './app.js';
import { docker, shellProgram, type RemoteCommand } from './command.js';

const NGINX = ['nginx', '-e', 'stderr', '-c', '/etc/nginx/berth/nginx.conf'];

/** Where the proxy listens inside its container (proxy/nginx.conf `listen`). */
export const PROXY_LISTEN_PORT = 8080;

/** The proxy's loopback-only port that names the upstream which answered (proxy/nginx.conf). */
export const PROXY_CHECK_PORT = 8081;

/**
 * The live container by name, never by address: nginx resolves the name through Docker's
 * embedded DNS whenever it starts, so after a reboot (new container addresses) it still reaches
 * the right container, where an address could name a dead or another one.
 */
export function upstreamConf(container: string, note: string): string {
  return `# Written by the deploy (${note}). The live app container; replaced on every switch.\nserver ${container}:${APP_LISTEN_PORT};\n`;
}

const UPSTREAM_SERVER = new RegExp(
  `^\\s*server\\s+([A-Za-z0-9_.-]+):${APP_LISTEN_PORT}\\s*;(?:\\s*#\\s*([A-Za-z0-9_.-]+))?`,
  'm',
);

/** The container upstream.conf names (older deploys could write `server ADDRESS:8000;  # NAME`). */
export function parseUpstream(text: string): string | undefined {
  const m = UPSTREAM_SERVER.exec(text);
  return m?.[2] ?? m?.[1];
}

export interface SwitchSpec {
  env: EnvName;
  upstreamFile: string;
  /** The new upstream.conf. */
  conf: string;
  /** The container that must get the traffic. */
  app: string;
  path: string;
  /** Makes the probe's request ids unique to this run. */
  token: string;
  tries: number;
  /** The app's address on the project network when already known (else the program reads it). */
  address?: string;
  /** The running proxy container prepare found (else the program looks for it). */
  proxy?: string;
}

/** The whole switch as one remote program (see `switch_to` in remote/proxy.sh); exit codes EXIT.proxy. */
export function switchProxy(s: SwitchSpec): RemoteCommand {
  // prettier-ignore
  return shellProgram('proxy.switch', 'proxy.sh', 'switch',
    projectName(s.env), s.upstreamFile, s.app, addressFormat(s.env), s.path, s.token, String(s.tries),
    String(PROXY_CHECK_PORT), String(APP_LISTEN_PORT), s.address ?? '', s.conf, s.proxy ?? '', ...NGINX);
}

/**
 * Asks the running proxy which upstream address serves a request sent through it now (from inside
 * it). Prints that address (empty when the proxy logged none); exit EXIT.proxy.notRunning when no
 * proxy runs.
 */
export const routedAddress = (env: EnvName, path: string, requestId: string): RemoteCommand =>
  // prettier-ignore
  shellProgram('proxy.routedAddress', 'proxy.sh', 'routed-address',
    projectName(env), path, requestId, String(PROXY_LISTEN_PORT));

/** `nginx -t`, then a graceful reload; exit EXIT.proxy.notRunning when the proxy is not running. */
export const reloadProxy = (env: EnvName): RemoteCommand =>
  shellProgram('proxy.reload', 'proxy.sh', 'reload', projectName(env), ...NGINX);

export const proxyRunning = (env: EnvName): RemoteCommand =>
  docker(
    'proxy.running',
    'ps',
    '-q',
    '--filter',
    `label=com.docker.compose.project=${projectName(env)}`,
    '--filter',
    'label=com.docker.compose.service=proxy',
  );
