// `npm run rehearse` as a user runs it: the whole pipeline with real parts (engine, registry,
// test VM over SSH, the real Dockerfile and deploy CLI). Its own checks decide; this test reads
// its JSON report and re-checks the promises that matter most from the outside.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTestEnv, repoRoot, requirePart } from '../helpers/real-tools.js';

const env = loadTestEnv();
const ok = requirePart(
  'the rehearsal parts (engine, registry, test VM, deploy CLI)',
  () =>
    ['DOCKER_HOST', 'REGISTRY', 'VM_HOST'].every((k) => env[k]) &&
    existsSync(path.join(repoRoot, 'scripts', 'deploy.mjs')),
  'run `bash scripts/test-env/setup.sh` as root',
);

interface Report {
  ok: boolean;
  digest: string;
  commit: string;
  checks: { name: string; ok: boolean; detail: string }[];
  rows: { step: string; env: string; digest: string; result: string; seconds: number }[];
  error?: string;
}

describe.skipIf(!ok)('npm run rehearse', () => {
  it('builds once, promotes the same digest through every environment, rejects a broken build', () => {
    const r = spawnSync('npm', ['run', '--silent', 'rehearse', '--', '--json'], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 900_000,
    });
    const last = r.stdout.trim().split('\n').pop() ?? '';
    const report = JSON.parse(last) as Report;
    const failed = report.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
    expect({ failed, error: report.error }, r.stderr).toEqual({ failed: [], error: undefined });
    expect(r.status).toBe(0);
    expect(report.ok).toBe(true);

    expect(report.rows.map((row) => `${row.step} -> ${row.env}`)).toEqual([
      'build + push -> -',
      'deploy -> testing',
      'promote from testing -> staging',
      'promote from staging -> production',
      'deploy broken build -> testing',
    ]);
    const [build, testing, staging, production, broken] = report.rows;
    expect(report.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    for (const row of [build, testing, staging, production])
      expect(row?.digest).toBe(report.digest);
    expect(broken?.digest).not.toBe(report.digest);
    expect(broken?.result).toMatch(/^rejected, 0\/\d+ failed requests$/);

    // The table a person reads, on stderr when --json is given.
    expect(r.stderr).toContain('| step ');
    expect(r.stderr).toMatch(/^rehearsal passed: \d+ of \d+ checks held/m);
    // A fresh CI machine builds the image without a layer cache.
  }, 900_000);
});
