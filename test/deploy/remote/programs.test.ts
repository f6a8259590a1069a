// The programs that run on the VM are real files: shellcheck reads the shell ones, ESLint the
// JavaScript ones (eslint.config.js), and their exit codes are the ones limits.ts names.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../../src/deploy/limits.js';
import { repoRoot, requireTool } from '../../helpers/real-tools.js';

const remoteDir = path.join(repoRoot, 'src/deploy/remote');
const shellFiles = readdirSync(remoteDir).filter((f) => f.endsWith('.sh'));
const hasShellcheck = requireTool('shellcheck', 'apt-get install shellcheck');

describe('remote programs', () => {
  it.skipIf(!hasShellcheck)('pass shellcheck', () => {
    expect(shellFiles).toContain('proxy.sh');
    // Throws with shellcheck's findings when there are any.
    execFileSync('shellcheck', ['--shell=sh', ...shellFiles.map((f) => path.join(remoteDir, f))], {
      encoding: 'utf8',
    });
  });
  it('proxy.sh exits only with the codes EXIT.proxy names (1: a file it cannot write, 2: an unknown action)', () => {
    const text = readFileSync(path.join(remoteDir, 'proxy.sh'), 'utf8');
    const codes = new Set([...text.matchAll(/\bexit (\d+)/g)].map((m) => Number(m[1])));
    expect([...codes].sort()).toEqual([1, 2, ...Object.values(EXIT.proxy)].sort());
    // The header lists them too.
    for (const [what, code] of Object.entries(EXIT.proxy)) expect(text, what).toContain(`${code} `);
  });
  it('edge-switch.sh exits only with the codes EXIT.edge names, and its header lists them', () => {
    const text = readFileSync(path.join(remoteDir, 'edge-switch.sh'), 'utf8');
    const codes = new Set([...text.matchAll(/\bexit (\d+)/g)].map((m) => Number(m[1])));
    expect([...codes].sort()).toEqual([...new Set(Object.values(EXIT.edge))].sort());
    const header = text.slice(0, text.indexOf('\nget()'));
    for (const [what, code] of Object.entries(EXIT.edge))
      expect(header, what).toContain(`${code} `);
  });
});
