// The app's settings files on the VM, through a real sh: CI's values on stdin only, hand-kept
// keys untouched, every file 0600 in a 0700 directory, and snapshots kept and pruned by version.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { toShell } from '../../../src/deploy/commands/command.js';
import * as c from '../../../src/deploy/commands/settings.js';
import { envPaths, settingsSnapshot } from '../../../src/deploy/paths.js';
import { awkwardSettings, awkwardSettingsFile } from '../../helpers/settings.js';
import { runLocally as sh } from '../../helpers/remote-shell.js';

const mode = (f: string) => (statSync(f).mode & 0o777).toString(8);
const digest = (c0: string) => `sha256:${c0.repeat(64)}`;

function scratchEnv() {
  const dir = execFileSync('mktemp', ['-d']).toString().trim();
  const p = envPaths(dir, 'staging');
  mkdirSync(p.dir);
  return p;
}

describe('the lines CI writes', () => {
  it('the marker, then KEY=VALUE verbatim, in allow-list order; nothing without settings', () => {
    expect(c.ciSettingsText({ B: 'x=y', A: ' $a ' })).toBe(`${c.CI_MARKER}\nB=x=y\nA= $a \n`);
    expect(c.ciSettingsText({})).toBe('');
  });

  it('values travel on stdin only: never in the command line', () => {
    const p = scratchEnv();
    const cmd = c.stageDeploySettings(p.appEnv, p.stagedSettings, awkwardSettings);
    expect(cmd.name).toBe('settings.stage');
    expect(cmd.stdin).toBe(`${c.CI_MARKER}\n${awkwardSettingsFile}\n`);
    for (const value of Object.values(awkwardSettings).filter((v) => v.length > 3))
      expect(toShell(cmd)).not.toContain(value);
    expect(cmd.argv.at(-1)).toBe(`^[[:space:]]*(${Object.keys(awkwardSettings).join('|')})(=|$)`);
  });
});

describe('settings scripts in a real shell', () => {
  it("stage: hand-kept keys stay, CI's old lines go, CI's new ones follow byte for byte; 0600 in a 0700 dir", () => {
    const p = scratchEnv();
    // No newline at the end: CI's first line must not join the last hand-kept one.
    writeFileSync(
      p.appEnv,
      `# mine\nHAND=1\n  BERTH_T_DOLLAR=old\nBERTH_T_HASH\n${c.CI_MARKER}\nBERTH_T_EMPTY=old\nBERTH_T_DOLLARS=not-a-ci-key`,
      { mode: 0o600 },
    );
    const r = sh(c.stageDeploySettings(p.appEnv, p.stagedSettings, awkwardSettings), 'umask 022; ');
    expect(r.code).toBe(0);
    expect(readFileSync(p.stagedSettings, 'utf8')).toBe(
      `# mine\nHAND=1\nBERTH_T_DOLLARS=not-a-ci-key\n${c.CI_MARKER}\n${awkwardSettingsFile}\n`,
    );
    expect(mode(p.stagedSettings)).toBe('600');
    expect(mode(p.settingsDir)).toBe('700');
    expect(readdirSync(p.settingsDir)).toEqual(['staged']);
  });

  it('stage without CI settings: app.env as it is', () => {
    const p = scratchEnv();
    writeFileSync(p.appEnv, `A=1\n${c.CI_MARKER}\nB=2`);
    expect(sh(c.stageDeploySettings(p.appEnv, p.stagedSettings, {})).code).toBe(0);
    expect(readFileSync(p.stagedSettings, 'utf8')).toBe(`A=1\n${c.CI_MARKER}\nB=2`);
  });

  it('stage refuses a missing app.env and leaves nothing staged', () => {
    const p = scratchEnv();
    const r = sh(c.stageDeploySettings(p.appEnv, p.stagedSettings, { A: 'x' }));
    expect(r.code).not.toBe(0);
    expect(existsSync(p.stagedSettings)).toBe(false);
  });

  it('snapshot: a version with one is staged from it, one without from app.env, and it says which', () => {
    const p = scratchEnv();
    writeFileSync(p.appEnv, 'NOW=1\n');
    mkdirSync(p.settingsDir);
    const snap = settingsSnapshot(p, digest('a'));
    writeFileSync(snap, 'THEN=1\n');
    expect(sh(c.stageSnapshot(snap, p.appEnv, p.stagedSettings)).out).toBe('snapshot\n');
    expect(readFileSync(p.stagedSettings, 'utf8')).toBe('THEN=1\n');
    expect(mode(p.stagedSettings)).toBe('600');
    const none = settingsSnapshot(p, digest('b'));
    expect(sh(c.stageSnapshot(none, p.appEnv, p.stagedSettings)).out).toBe('current\n');
    expect(readFileSync(p.stagedSettings, 'utf8')).toBe('NOW=1\n');
  });

  it('keep: staged becomes the snapshot and app.env (0600); a different app.env stays as app.env.previous', () => {
    const p = scratchEnv();
    writeFileSync(p.appEnv, 'HAND=edited\n', { mode: 0o600 });
    mkdirSync(p.settingsDir, { mode: 0o700 });
    writeFileSync(p.stagedSettings, 'NEW=1\n', { mode: 0o600 });
    const snap = settingsSnapshot(p, digest('c'));
    expect(sh(c.keepSettings(p.stagedSettings, snap, p.appEnv), 'umask 022; ').code).toBe(0);
    expect(readFileSync(p.appEnv, 'utf8')).toBe('NEW=1\n');
    expect(readFileSync(snap, 'utf8')).toBe('NEW=1\n');
    expect(readFileSync(`${p.appEnv}.previous`, 'utf8')).toBe('HAND=edited\n');
    expect([mode(p.appEnv), mode(snap), mode(`${p.appEnv}.previous`)]).toEqual([
      '600',
      '600',
      '600',
    ]);
    expect(existsSync(p.stagedSettings)).toBe(false);
  });

  it('prune: removes every snapshot but the kept versions, never the staged file', () => {
    const p = scratchEnv();
    mkdirSync(p.settingsDir);
    for (const f of ['aaaaaaaaaaaa.env', 'bbbbbbbbbbbb.env', 'cccccccccccc.env', 'staged'])
      writeFileSync(path.join(p.settingsDir, f), 'X=1\n');
    const r = sh(c.pruneSettings(p.settingsDir, ['aaaaaaaaaaaa', 'cccccccccccc']));
    expect(r).toEqual({ code: 0, out: 'bbbbbbbbbbbb.env\n' });
    expect(readdirSync(p.settingsDir).sort()).toEqual([
      'aaaaaaaaaaaa.env',
      'cccccccccccc.env',
      'staged',
    ]);
    // No directory yet (nothing deployed since the upgrade): nothing to do.
    expect(sh(c.pruneSettings(path.join(p.dir, 'nope'), [])).code).toBe(0);
  });
});
