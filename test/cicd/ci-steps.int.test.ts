// The check steps of ci.yml, run here exactly as written (the step's own script, bash -e -o
// pipefail, the step's env): shellcheck over every tracked script, and `docker compose config`
// over every compose file with .env.example as the .env, with the same compose v2 plugin as
// GitHub's runner (scripts/test-env/engine.sh installs it).
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { onPath, repoRoot, requirePart, requireTool } from '../helpers/real-tools.js';
import { loadWorkflow } from './workflows.js';

const checks = loadWorkflow('ci.yml').jobs.checks?.steps ?? [];
const stepNamed = (prefix: string) => {
  const step = checks.find((s) => s.name?.startsWith(prefix));
  if (!step?.run) throw new Error(`ci.yml has no step "${prefix}..."`);
  return step;
};

function runStep(script: string, cwd: string, env: Record<string, unknown> = {}) {
  const r = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', script], {
    cwd,
    env: {
      ...process.env,
      ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])),
    },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

const hasShellcheck = requireTool(
  'shellcheck',
  'apt-get install shellcheck (scripts/test-env/cicd.sh up)',
);
const hasCompose = requirePart(
  '`docker compose`',
  () => onPath('docker') && spawnSync('docker', ['compose', 'version']).status === 0,
  'run `bash scripts/test-env/engine.sh up` (it installs the compose v2 plugin)',
);

describe.skipIf(!hasShellcheck)('ci.yml shellcheck step', () => {
  it('passes on every tracked shell script', () => {
    const r = runStep(stepNamed('shellcheck').run ?? '', repoRoot);
    expect(r.output).toBe('');
    expect(r.code).toBe(0);
  });

  it('really lints (a script with an unquoted variable fails it)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'berth-sc-'));
    try {
      writeFileSync(path.join(dir, 'bad.sh'), '#!/bin/sh\nls $1\n');
      runStep('git init -q && git add bad.sh', dir);
      const r = runStep(stepNamed('shellcheck').run ?? '', dir);
      expect(r.code).not.toBe(0);
      expect(r.output).toContain('SC2086');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!hasCompose)('ci.yml compose config step', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-compose-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('validates every compose file with .env.example as .env', () => {
    const composeFiles = readdirSync(repoRoot).filter((f) => /^docker-compose.*\.yml$/.test(f));
    expect(composeFiles).toContain('docker-compose.monitoring.yml');
    for (const item of [
      ...composeFiles,
      '.env.example',
      'proxy',
      'edge',
      'prometheus',
      'alertmanager',
      'grafana',
    ]) {
      if (existsSync(path.join(repoRoot, item)))
        cpSync(path.join(repoRoot, item), path.join(dir, item), { recursive: true });
    }
    const step = stepNamed('compose config');
    const r = runStep(step.run ?? '', dir, step.env);
    expect(r.output).toBe(composeFiles.map((f) => `docker compose -f ${f} config\n`).join(''));
    expect(r.code).toBe(0);
  });
});
