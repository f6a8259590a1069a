// Where an environment keeps its files on the VM: one directory per environment.
import { hex12 } from './digest.js';
import type { EnvName } from './environments.js';

export interface EnvPaths {
  dir: string;
  compose: string;
  /** compose's settings (APP_PORT, limits): never given to the app */
  env: string;
  /** the app's settings, passed raw (`docker create --env-file`, compose `format: raw`) */
  appEnv: string;
  /** 0700: a snapshot of app.env per deployed version (`<digest12>.env`), and the staged file */
  settingsDir: string;
  /** the settings the next container is created from; becomes app.env once it serves */
  stagedSettings: string;
  proxyDir: string;
  nginxConf: string;
  upstream: string;
  lock: string;
  history: string;
  state: string;
}

export function envPaths(remoteDir: string, env: EnvName): EnvPaths {
  const dir = `${remoteDir === '/' ? '' : remoteDir}/${env}`;
  return {
    dir,
    compose: `${dir}/docker-compose.yml`,
    env: `${dir}/.env`,
    appEnv: `${dir}/app.env`,
    settingsDir: `${dir}/settings`,
    stagedSettings: `${dir}/settings/staged`,
    proxyDir: `${dir}/proxy`,
    nginxConf: `${dir}/proxy/nginx.conf`,
    upstream: `${dir}/proxy/upstream.conf`,
    lock: `${dir}/.deploy-lock`,
    history: `${dir}/history.log`,
    state: `${dir}/current`,
  };
}

/** The app.env a version was last started with (kept as long as its image, see retention.ts). */
export const settingsSnapshot = (p: EnvPaths, digest: string): string =>
  `${p.settingsDir}/${hex12(digest)}.env`;
