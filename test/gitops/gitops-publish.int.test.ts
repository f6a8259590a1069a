// scripts/gitops-publish.sh against real git: a bare `origin` with the three environment
// branches and a working clone, as the deploy workflow's gitops job has after checkout.
// (Opening the pull request is one `gh pr create` line in the workflow: GitHub is the outer edge.)
import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { repoRoot, requireTool } from '../helpers/real-tools.js';

const hasGit = requireTool('git', 'apt-get install git');
const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;

let dir = '';
let origin = '';
let work = '';

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}

function publish(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync('bash', [path.join(work, 'scripts', 'gitops-publish.sh'), ...args], {
    cwd: work,
    encoding: 'utf8',
    // No global git config, as on a CI runner: the script must bring its own identity.
    env: {
      ...process.env,
      HOME: dir,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_TERMINAL_PROMPT: '0',
      ...env,
    },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** image.digest as committed on an origin branch. */
function digestOn(branch: string, file: string): string {
  const text = git(origin, 'show', `${branch}:charts/berth/${file}`);
  return /^\s*digest:\s*"?([^"\n]*)"?\s*$/m.exec(text)?.[1] ?? '';
}

describe.skipIf(!hasGit)('scripts/gitops-publish.sh', () => {
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'berth-gitops-'));
    origin = path.join(dir, 'origin.git');
    work = path.join(dir, 'work');
    git(dir, 'init', '--quiet', '--bare', '--initial-branch=main', origin);
    mkdirSync(work);
    for (const p of [
      'charts/berth/values-dev.yaml',
      'charts/berth/values-staging.yaml',
      'charts/berth/values-prod.yaml',
      'src/gitops',
      'src/deploy/environments.ts',
      'src/deploy/digest.ts',
      'scripts/gitops-publish.sh',
      'package.json',
    ]) {
      cpSync(path.join(repoRoot, p), path.join(work, p), { recursive: true });
    }
    writeFileSync(path.join(work, '.gitignore'), 'node_modules\n');
    writeFileSync(path.join(work, 'README.md'), 'berth\n');
    symlinkSync(path.join(repoRoot, 'node_modules'), path.join(work, 'node_modules'));
    git(work, 'init', '--quiet', '--initial-branch=main');
    git(work, 'add', '.');
    git(
      work,
      '-c',
      'user.name=t',
      '-c',
      'user.email=t@example.com',
      'commit',
      '--quiet',
      '-m',
      'initial',
    );
    git(work, 'remote', 'add', 'origin', origin);
    for (const b of ['main', 'staging', 'testing'])
      git(work, 'push', '--quiet', 'origin', `HEAD:refs/heads/${b}`);
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('staging: commits the digest on branch staging, and nothing else', () => {
    git(work, 'checkout', '--quiet', '-B', 'staging', 'origin/staging');
    const r = publish(['staging', D1], { SOURCE_SHA: 'abc123' });
    expect(r.stderr).not.toContain('gitops-publish: could not');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('action=commit\n');
    expect(digestOn('staging', 'values-staging.yaml')).toBe(D1);
    expect(git(origin, 'diff', '--name-only', 'main', 'staging')).toBe(
      'charts/berth/values-staging.yaml',
    );
    expect(git(origin, 'log', '-1', '--format=%an|%s|%b', 'staging')).toBe(
      `github-actions[bot]|gitops(staging): pin ${D1.slice(0, 19)}|deploy abc123: image.digest ${D1} in charts/berth/values-staging.yaml`,
    );
    expect(digestOn('main', 'values-prod.yaml')).toBe('');
  });

  it('the same digest again changes nothing', () => {
    git(work, 'checkout', '--quiet', '-B', 'testing', 'origin/testing');
    expect(publish(['testing', D1]).stdout).toBe('action=commit\n');
    const head = git(origin, 'rev-parse', 'testing');
    const again = publish(['testing', D1]);
    expect(again).toMatchObject({ code: 0, stdout: 'action=none\n' });
    expect(again.stderr).toContain('already pins');
    expect(git(origin, 'rev-parse', 'testing')).toBe(head);
  });

  it('a push that only pinned a digest is not published again (no build-pin-build loop)', () => {
    git(work, 'checkout', '--quiet', '-B', 'main', 'origin/main');
    const before = git(work, 'rev-parse', 'HEAD');
    // The merged production pull request: one commit that only changes values-prod.yaml.
    const file = path.join(work, 'charts/berth/values-prod.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('digest: ""', `digest: "${D1}"`));
    git(
      work,
      '-c',
      'user.name=t',
      '-c',
      'user.email=t@example.com',
      'commit',
      '--quiet',
      '-am',
      'merge digest PR',
    );
    git(work, 'push', '--quiet', 'origin', 'HEAD:main');
    const r = publish(['production', D2], { BEFORE: before });
    expect(r).toMatchObject({ code: 0, stdout: 'action=none\n' });
    expect(git(origin, 'branch', '--list', 'gitops/*')).toBe('');
    // A push that changed code is published.
    writeFileSync(path.join(work, 'README.md'), 'berth 2\n');
    git(
      work,
      '-c',
      'user.name=t',
      '-c',
      'user.email=t@example.com',
      'commit',
      '--quiet',
      '-am',
      'code change',
    );
    expect(publish(['production', D2], { BEFORE: before }).stdout).toContain('action=pull-request');
  });

  it('production: pushes a branch for a pull request and leaves main alone', () => {
    git(work, 'checkout', '--quiet', '-B', 'main', 'origin/main');
    const mainBefore = git(origin, 'rev-parse', 'main');
    const r = publish(['production', D2]);
    expect(r.code).toBe(0);
    const branch = `gitops/production-${'2'.repeat(12)}`;
    expect(r.stdout).toBe(`action=pull-request\nbranch=${branch}\n`);
    expect(digestOn(branch, 'values-prod.yaml')).toBe(D2);
    expect(git(origin, 'rev-parse', 'main')).toBe(mainBefore);
  });

  it('promotion copies the digest staging runs into production, without a build', () => {
    git(work, 'checkout', '--quiet', '-B', 'staging', 'origin/staging');
    publish(['staging', D1]);
    git(work, 'checkout', '--quiet', '-B', 'main', 'origin/main');
    const r = publish(['--promote', 'staging', 'production']);
    expect(r.code).toBe(0);
    const branch = `gitops/production-${'1'.repeat(12)}`;
    expect(r.stdout).toBe(`action=pull-request\nbranch=${branch}\n`);
    expect(digestOn(branch, 'values-prod.yaml')).toBe(D1);
    expect(git(origin, 'log', '-1', '--format=%b', branch)).toContain(
      'promote staging to production',
    );
  });

  it('promotion refuses a source that pins nothing', () => {
    const r = publish(['--promote', 'testing', 'staging']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('pins no image digest');
    expect(digestOn('staging', 'values-staging.yaml')).toBe('');
  });

  it('rollback pins the digest from before the current one, or the one given', () => {
    git(work, 'checkout', '--quiet', '-B', 'staging', 'origin/staging');
    publish(['staging', D1]);
    git(work, 'fetch', '--quiet', 'origin');
    git(work, 'checkout', '--quiet', '-B', 'staging', 'origin/staging');
    publish(['staging', D2]);
    expect(digestOn('staging', 'values-staging.yaml')).toBe(D2);
    git(work, 'checkout', '--quiet', '-B', 'main', 'origin/main');
    const back = publish(['--rollback', 'staging']);
    expect(back).toMatchObject({ code: 0, stdout: 'action=commit\n' });
    expect(digestOn('staging', 'values-staging.yaml')).toBe(D1);
    expect(git(origin, 'log', '-1', '--format=%b', 'staging')).toContain(
      `roll back staging from ${D2}`,
    );
    // Explicit digest, and production goes through a pull request like any other change.
    const prod = publish(['--rollback', 'production', `docker.io/acme/berth@${D1}`]);
    expect(prod.stdout).toBe(`action=pull-request\nbranch=gitops/production-${'1'.repeat(12)}\n`);
  });

  it('rollback refuses when there is nothing earlier', () => {
    const r = publish(['--rollback', 'testing']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('nothing to roll back to');
    expect(digestOn('testing', 'values-dev.yaml')).toBe('');
  });

  it('rebases when the branch moved meanwhile, keeping the other change', () => {
    git(work, 'checkout', '--quiet', '-B', 'testing', 'origin/testing');
    const other = path.join(dir, 'other');
    git(dir, 'clone', '--quiet', '--branch', 'testing', origin, other);
    writeFileSync(path.join(other, 'README.md'), 'someone else\n');
    git(
      other,
      '-c',
      'user.name=o',
      '-c',
      'user.email=o@example.com',
      'commit',
      '--quiet',
      '-am',
      'other change',
    );
    git(other, 'push', '--quiet', 'origin', 'testing');
    const r = publish(['testing', D2]);
    expect(r.stderr).toContain('rejected (attempt 1)');
    expect(r).toMatchObject({ code: 0, stdout: 'action=commit\n' });
    expect(digestOn('testing', 'values-dev.yaml')).toBe(D2);
    expect(git(origin, 'show', 'testing:README.md')).toBe('someone else');
  });

  it('refuses a bad digest or environment and pushes nothing', () => {
    const heads = git(origin, 'for-each-ref', '--format=%(objectname) %(refname)');
    for (const args of [['staging', 'sha256:nope'], ['qa', D1], ['staging']]) {
      const r = publish(args);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stdout, args.join(' ')).toBe('');
    }
    expect(publish(['staging', 'sha256:nope']).stderr).toContain('not an image digest');
    expect(publish(['qa', D1]).stderr).toContain("unknown environment 'qa'");
    expect(git(origin, 'for-each-ref', '--format=%(objectname) %(refname)')).toBe(heads);
  });
});
