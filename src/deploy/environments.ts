// THE table of Berth's environments: everything else derives from it (the deploy tool, the
// GitOps values files, the test harness and the rehearsal) or is tested against it
// (init_setup.sh, scripts/gitops-publish.sh and the workflows' branch mapping:
// test/deploy/environments.test.ts compares them).

export const environments = ['production', 'staging', 'testing'] as const;
export type EnvName = (typeof environments)[number];

interface EnvironmentInfo {
  /** The git branch whose pushes deploy here (deploy.yml). */
  branch: string;
  /** Default public port (APP_PORT) when the environment's .env on the VM does not set one. */
  port: number;
  /** The chart's values file: short names Helm users expect (values-prod, values-dev). */
  valuesFile: string;
  /** Other names the GitOps tool accepts (the values file's short name). */
  aliases: string[];
  /** Where promote.yml takes what this environment runs; undefined for the last one. */
  promotesTo?: EnvName;
}

export const environmentInfo: Record<EnvName, EnvironmentInfo> = {
  production: {
    branch: 'main',
    port: 8000,
    valuesFile: 'charts/berth/values-prod.yaml',
    aliases: ['prod'],
  },
  staging: {
    branch: 'staging',
    port: 8001,
    valuesFile: 'charts/berth/values-staging.yaml',
    aliases: [],
    promotesTo: 'production',
  },
  testing: {
    branch: 'testing',
    port: 8002,
    valuesFile: 'charts/berth/values-dev.yaml',
    aliases: ['dev'],
    promotesTo: 'staging',
  },
};

/** Public ports a test run gives the environments, away from the real ones (`port + offset`). */
export const portsWithOffset = (offset: number): Record<EnvName, number> =>
  Object.fromEntries(
    environments.map((env) => [env, environmentInfo[env].port + offset]),
  ) as Record<EnvName, number>;

/** The promotions that start at `from`, in order: testing -> staging, staging -> production. */
export function promotionsFrom(from: EnvName): [EnvName, EnvName][] {
  const to = environmentInfo[from].promotesTo;
  return to ? [[from, to], ...promotionsFrom(to)] : [];
}

export function isEnvName(value: unknown): value is EnvName {
  return typeof value === 'string' && (environments as readonly string[]).includes(value);
}

export function envForBranch(branch: string): EnvName | undefined {
  const name = branch.replace(/^refs\/heads\//, '');
  return environments.find((env) => environmentInfo[env].branch === name);
}

/** An environment by its name, an alias (prod, dev) or its branch (main); undefined if none. */
export const envByAnyName = (name: string): EnvName | undefined =>
  environments.find(
    (env) =>
      env === name ||
      environmentInfo[env].branch === name ||
      environmentInfo[env].aliases.includes(name),
  );

/** Compose project, network alias and local image repository are all named after the environment. */
export const projectName = (env: EnvName): string => `berth-${env}`;
export const appAlias = (env: EnvName): string => `berth-${env}-app`;
/** Local repository for this environment's own tags (`:stable`, one tag per kept deploy). */
export const envRepository = (env: EnvName): string => `berth-${env}`;
export const stableRef = (env: EnvName): string => `${envRepository(env)}:stable`;
