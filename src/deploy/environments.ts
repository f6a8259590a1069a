// The three environments Berth knows, the branch each one follows and its public port on the VM.
// One table, so the CI workflow, the deploy and the docs cannot disagree.

export const environments = ['production', 'staging', 'testing'] as const;
export type EnvName = (typeof environments)[number];

interface EnvironmentInfo {
  branch: string;
  /** Default public port (APP_PORT) when the environment's .env on the VM does not set one. */
  port: number;
}

export const environmentInfo: Record<EnvName, EnvironmentInfo> = {
  production: { branch: 'main', port: 8000 },
  staging: { branch: 'staging', port: 8001 },
  testing: { branch: 'testing', port: 8002 },
};

export function isEnvName(value: unknown): value is EnvName {
  return typeof value === 'string' && (environments as readonly string[]).includes(value);
}

export function envForBranch(branch: string): EnvName | undefined {
  const name = branch.replace(/^refs\/heads\//, '');
  return environments.find((env) => environmentInfo[env].branch === name);
}

/** Compose project, network alias and local image repository are all named after the environment. */
export const projectName = (env: EnvName): string => `berth-${env}`;
export const appAlias = (env: EnvName): string => `berth-${env}-app`;
/** Local repository for this environment's own tags (`:stable`, one tag per kept deploy). */
export const envRepository = (env: EnvName): string => `berth-${env}`;
export const stableRef = (env: EnvName): string => `${envRepository(env)}:stable`;
