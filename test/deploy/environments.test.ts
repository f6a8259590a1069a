// src/deploy/environments.ts is THE table of environments. The copies that cannot import it
// (shell and YAML) are read here and compared with it, so none of them can drift alone.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  envByAnyName,
  envForBranch,
  environmentInfo,
  environments,
  portsWithOffset,
  type EnvName,
} from '../../src/deploy/environments.js';
import { repoRoot } from '../helpers/real-tools.js';

const read = (file: string) => readFileSync(path.join(repoRoot, file), 'utf8');
const workflow = (file: string) =>
  parse(read(`.github/workflows/${file}`)) as {
    on: Record<string, unknown>;
    jobs: Record<string, { steps?: { id?: string; run?: string }[] }>;
  };
const branches = environments.map((env) => environmentInfo[env].branch);

/** Runs a shell snippet with bash and returns its stdout, or undefined when it fails. */
function bash(
  script: string,
  env: Record<string, string> = {},
  ...args: string[]
): string | undefined {
  const r = spawnSync('bash', ['--noprofile', '--norc', '-c', script, 'bash', ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
  });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

describe('the environment table', () => {
  it('maps branches to environments and ports', () => {
    expect(envForBranch('refs/heads/main')).toBe('production');
    expect(envForBranch('staging')).toBe('staging');
    expect(envForBranch('feature/x')).toBeUndefined();
    expect(Object.values(environmentInfo).map((e) => e.port)).toEqual([8000, 8001, 8002]);
  });
  it('knows an environment by name, alias or branch', () => {
    expect(['production', 'prod', 'main', 'dev', 'testing'].map(envByAnyName)).toEqual([
      'production',
      'production',
      'production',
      'testing',
      'testing',
    ]);
    expect(envByAnyName('qa')).toBeUndefined();
  });
  it('gives test runs ports apart from the real ones', () => {
    expect(portsWithOffset(10_000)).toEqual({ production: 18000, staging: 18001, testing: 18002 });
  });
  it('promotes testing -> staging -> production, each name once', () => {
    expect(
      environments
        .filter((env) => environmentInfo[env].promotesTo)
        .map((env) => [env, environmentInfo[env].promotesTo]),
    ).toEqual([
      ['staging', 'production'],
      ['testing', 'staging'],
    ]);
  });
});

describe('init_setup.sh', () => {
  const text = read('init_setup.sh');
  it("gives each environment the table's port", () => {
    const ports = bash(
      `${/^declare -A APP_PORTS=.*$/m.exec(text)?.[0] ?? ''}\nfor e in "\${!APP_PORTS[@]}"; do echo "$e=\${APP_PORTS[$e]}"; done | sort`,
    );
    expect(ports?.split('\n')).toEqual(
      environments.map((env) => `${env}=${environmentInfo[env].port}`).sort(),
    );
  });
  it('sets up every environment by default', () => {
    expect(/BERTH_ENVIRONMENTS:-([^}]*)\}/.exec(text)?.[1]?.split(' ')).toEqual([...environments]);
  });
});

describe('the workflows', () => {
  it('deploy.yml deploys every branch of the table, and ci.yml leaves those branches to it', () => {
    expect((workflow('deploy.yml').on.push as { branches: string[] }).branches).toEqual(branches);
    expect(
      (workflow('ci.yml').on.push as { 'branches-ignore': string[] })['branches-ignore'],
    ).toEqual(branches);
  });
  it("deploy.yml maps each branch to the table's environment (its own plan script)", () => {
    const script = workflow('deploy.yml').jobs.plan?.steps?.find((s) => s.id === 'env')?.run ?? '';
    // The step appends to $GITHUB_OUTPUT: a temporary file stands in for it.
    const plan = (branch: string) =>
      bash(`GITHUB_OUTPUT=$(mktemp)\n${script}\ncat "$GITHUB_OUTPUT"; rm -f "$GITHUB_OUTPUT"`, {
        BRANCH: branch,
      });
    for (const env of environments)
      expect(plan(environmentInfo[env].branch), env).toBe(`environment=${env}`);
    expect(plan('feature/x')).toBeUndefined();
  });
  it("promote.yml offers the table's promotions and fetches the target's branch", () => {
    const inputs = (
      workflow('promote.yml').on.workflow_dispatch as {
        inputs: Record<string, { options?: string[] }>;
      }
    ).inputs;
    const from = environments.filter((env) => environmentInfo[env].promotesTo);
    expect(new Set(inputs.from?.options)).toEqual(new Set(from));
    expect(new Set(inputs.to?.options)).toEqual(
      new Set(from.map((env) => environmentInfo[env].promotesTo)),
    );
    const fetch =
      /git fetch --quiet origin "(\$\(.*\))"$/m.exec(read('.github/workflows/promote.yml'))?.[1] ??
      '';
    for (const env of environments)
      expect(bash(`echo "${fetch}"`, { TO: env }), env).toBe(environmentInfo[env].branch);
  });
  it('rollback.yml offers every environment', () => {
    const inputs = (
      workflow('rollback.yml').on.workflow_dispatch as {
        inputs: Record<string, { options?: string[] }>;
      }
    ).inputs;
    expect(inputs.environment?.options).toEqual([...environments]);
  });
});

describe('scripts/gitops-publish.sh', () => {
  const fn = /^branch_of\(\) \{[\s\S]*?^\}/m.exec(read('scripts/gitops-publish.sh'))?.[0] ?? '';
  it.each(environments.map((env): [EnvName, string] => [env, environmentInfo[env].branch]))(
    'commits %s to branch %s',
    (env, branch) => {
      expect(bash(`die() { exit 2; }\n${fn}\nbranch_of "$1"`, {}, env)).toBe(branch);
    },
  );
});
