// Where an environment keeps its files on the VM: one directory per environment.
import type { EnvName } from './environments.js';

export interface EnvPaths {
  dir: string;
  compose: string;
  /** compose's settings (APP_PORT, limits): never given to the app */
  env: string;
  /** the app's settings, passed raw (`docker create --env-file`, compose `format: raw`) */
  appEnv: string;
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
    proxyDir: `${dir}/proxy`,
    nginxConf: `${dir}/proxy/nginx.conf`,
    upstream: `${dir}/proxy/upstream.conf`,
    lock: `${dir}/.deploy-lock`,
    history: `${dir}/history.log`,
    state: `${dir}/current`,
  };
}
