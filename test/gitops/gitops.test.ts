// gitops/: the Argo CD objects validate against the Argo CD CRD schemas, and say what the
// README promises: one repository, three namespaces, the chart with each environment's values
// file from that environment's branch, automated sync for testing and staging, manual for production.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../helpers/real-tools.js';
import { schemaErrors, unknownFieldErrors, type K8sObject } from '../k8s/manifests.js';

const gitopsDir = path.join(repoRoot, 'gitops');
const files = [
  path.join(gitopsDir, 'bootstrap.yaml'),
  ...readdirSync(path.join(gitopsDir, 'apps')).map((f) => path.join(gitopsDir, 'apps', f)),
];
const objects = files.flatMap((f) =>
  parseAllDocuments(readFileSync(f, 'utf8')).map((d) => d.toJS() as K8sObject),
);

type AppSpec = {
  project: string;
  source: {
    repoURL: string;
    targetRevision: string;
    path: string;
    helm?: { releaseName: string; valueFiles: string[] };
    directory?: unknown;
  };
  destination: { server: string; namespace: string };
  syncPolicy?: { automated?: { prune?: boolean; selfHeal?: boolean }; syncOptions?: string[] };
};
type ProjectSpec = {
  sourceRepos: string[];
  destinations: { server: string; namespace: string }[];
  syncWindows?: { kind: string; applications: string[]; manualSync: boolean }[];
};

const apps = objects.filter((o) => o.kind === 'Application');
const app = (name: string) => {
  const found = apps.find((a) => a.metadata.name === name);
  if (!found) throw new Error(`no Application ${name}`);
  return found.spec as unknown as AppSpec;
};
const project = objects.find((o) => o.kind === 'AppProject' && o.metadata.name === 'berth')!;
const projectSpec = project.spec as unknown as ProjectSpec;

const ENVIRONMENTS = [
  { env: 'testing', branch: 'testing', values: 'values-dev.yaml', automated: true },
  { env: 'staging', branch: 'staging', values: 'values-staging.yaml', automated: true },
  { env: 'production', branch: 'main', values: 'values-prod.yaml', automated: false },
];

describe('gitops/ Argo CD objects', () => {
  it('every object validates against its Argo CD schema', async () => {
    expect(objects.map((o) => o.kind).sort()).toEqual([
      'AppProject',
      'Application',
      'Application',
      'Application',
      'Application',
    ]);
    expect((await Promise.all(objects.map(schemaErrors))).flat()).toEqual([]);
  });

  it('no object has a field its kind does not know', () => {
    expect(unknownFieldErrors(objects)).toEqual([]);
  });

  it('the project allows only this repository and the three namespaces', () => {
    expect(projectSpec.sourceRepos).toHaveLength(1);
    expect(projectSpec.destinations).toEqual(
      ENVIRONMENTS.map(({ env }) => ({
        server: 'https://kubernetes.default.svc',
        namespace: `berth-${env}`,
      })),
    );
  });

  it.each(ENVIRONMENTS)(
    '$env: the chart with $values from branch $branch into berth-$env',
    ({ env, branch, values, automated }) => {
      const spec = app(`berth-${env}`);
      expect(spec.project).toBe('berth');
      expect(spec.source).toEqual({
        repoURL: projectSpec.sourceRepos[0],
        targetRevision: branch,
        path: 'charts/berth',
        helm: { releaseName: 'berth', valueFiles: [values] },
      });
      expect(existsSync(path.join(repoRoot, spec.source.path, values))).toBe(true);
      expect(projectSpec.destinations).toContainEqual(spec.destination);
      expect(spec.syncPolicy?.syncOptions).toContain('CreateNamespace=true');
      if (automated) expect(spec.syncPolicy?.automated).toEqual({ prune: true, selfHeal: true });
      else expect(spec.syncPolicy?.automated).toBeUndefined();
    },
  );

  it('production cannot be synced automatically even if someone switches it on', () => {
    expect(projectSpec.syncWindows).toEqual([
      expect.objectContaining({
        kind: 'deny',
        applications: ['berth-production'],
        manualSync: true,
      }),
    ]);
  });

  it('the bootstrap app of apps manages gitops/apps from main', () => {
    const spec = app('berth-apps');
    expect(spec.source).toMatchObject({
      repoURL: projectSpec.sourceRepos[0],
      targetRevision: 'main',
      path: 'gitops/apps',
    });
    expect(spec.destination.namespace).toBe('argocd');
    const managed = readdirSync(path.join(repoRoot, spec.source.path));
    expect(managed.sort()).toEqual([
      'berth-production.yaml',
      'berth-staging.yaml',
      'berth-testing.yaml',
      'project.yaml',
    ]);
  });

  it('a broken Application is caught by the schema (the check can fail)', async () => {
    const broken = structuredClone(apps[0]!);
    (broken.spec as { destination: unknown }).destination = 'berth-testing';
    expect((await schemaErrors(broken))[0]).toContain('destination must be object');
  });
});

type Job = {
  if?: string;
  needs?: string | string[];
  permissions?: Record<string, string>;
  concurrency?: { group: string };
  steps?: { id?: string; run?: string; env?: Record<string, string>; if?: string }[];
};
const workflowJobs = (file: string) =>
  (
    parseAllDocuments(
      readFileSync(path.join(repoRoot, '.github', 'workflows', file), 'utf8'),
    )[0]!.toJS() as { jobs: Record<string, Job> }
  ).jobs;

describe('deploy.yml GitOps mode', () => {
  const jobs = workflowJobs('deploy.yml');

  it('DEPLOY_MODE=gitops runs the gitops job instead of the VM deploy, never both', () => {
    expect(jobs.deploy?.if).toBe("vars.DEPLOY_MODE != 'gitops'");
    expect(jobs.gitops?.if).toBe("vars.DEPLOY_MODE == 'gitops'");
    expect(jobs.gitops?.needs).toEqual(['plan', 'build']);
  });

  it('pins the digest the build pushed, for the planned environment, one run per environment at a time', () => {
    const publish = jobs.gitops?.steps?.find((s) => s.id === 'publish');
    expect(publish?.env).toMatchObject({
      BERTH_ENV: '${{ needs.plan.outputs.environment }}',
      DIGEST: '${{ needs.build.outputs.digest }}',
      BEFORE: '${{ github.event.before }}',
    });
    expect(publish?.run).toContain('scripts/gitops-publish.sh "$BERTH_ENV" "$DIGEST"');
    expect(jobs.gitops?.concurrency?.group).toBe(
      'berth-gitops-${{ needs.plan.outputs.environment }}',
    );
    const pr = jobs.gitops?.steps?.find((s) => s.run?.includes('gh pr create'));
    expect(pr?.if).toBe("steps.publish.outputs.action == 'pull-request'");
    expect(pr?.run).toContain('--base main');
  });

  it('may write contents and pull requests, nothing more', () => {
    expect(jobs.gitops?.permissions).toEqual({ contents: 'write', 'pull-requests': 'write' });
  });
});

describe('promote.yml GitOps mode', () => {
  const jobs = workflowJobs('promote.yml');

  it('skips the VM jobs and copies the digest between values files, with no build', () => {
    expect(jobs.resolve?.if).toBe("vars.DEPLOY_MODE != 'gitops'");
    expect([jobs.promote?.needs].flat()).toEqual(['resolve']); // so it is skipped with resolve
    expect(jobs.gitops?.if).toBe("vars.DEPLOY_MODE == 'gitops'");
    const publish = jobs.gitops?.steps?.find((s) => s.id === 'publish');
    expect(publish?.run).toContain('scripts/gitops-publish.sh --promote "$FROM" "$TO"');
    expect(JSON.stringify(jobs.gitops)).not.toContain('build-push-action');
    const pr = jobs.gitops?.steps?.find((s) => s.run?.includes('gh pr create'));
    expect(pr?.env?.GH_TOKEN).toBe('${{ github.token }}');
    expect(jobs.gitops?.permissions).toEqual({ contents: 'write', 'pull-requests': 'write' });
  });
});

describe('rollback.yml GitOps mode', () => {
  const jobs = workflowJobs('rollback.yml');

  it('skips the VM rollback and pins the earlier digest through git', () => {
    expect(jobs.rollback?.if).toBe("vars.DEPLOY_MODE != 'gitops'");
    expect(jobs.gitops?.if).toBe("vars.DEPLOY_MODE == 'gitops'");
    const publish = jobs.gitops?.steps?.find((s) => s.id === 'publish');
    expect(publish?.run).toContain(
      'scripts/gitops-publish.sh --rollback "$BERTH_ENV" ${VERSION:+"$VERSION"}',
    );
    expect(jobs.gitops?.concurrency?.group).toBe('berth-gitops-${{ inputs.environment }}');
    expect(jobs.gitops?.permissions).toEqual({ contents: 'write', 'pull-requests': 'write' });
  });
});
