// The lock scripts in a real shell: taken once, holder named, released only by its owner.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as c from '../../../src/deploy/commands/lock.js';
import { EXIT } from '../../../src/deploy/limits.js';
import { runLocally as sh } from '../../helpers/remote-shell.js';

describe('lock scripts in a real shell', () => {
  const tmp = execFileSync('mktemp', ['-d']).toString().trim();
  it('the lock is taken once, names its holder to the next one, and is released only by its owner', () => {
    const lock = path.join(tmp, 'lock');
    expect(sh(c.takeLock(lock, 'who=a token=1')).code).toBe(0);
    expect(sh(c.takeLock(lock, 'who=b token=2'))).toEqual({
      code: EXIT.lockHeld,
      out: 'who=a token=1\n',
    });
    sh(c.releaseLock(lock, 'who=b token=2'));
    expect(sh(c.takeLock(lock, 'who=b token=2')).code).toBe(EXIT.lockHeld);
    expect(sh(c.breakLock(lock)).out).toBe('who=a token=1\n');
    expect(sh(c.breakLock(lock))).toEqual({ code: 0, out: '' });
    expect(sh(c.takeLock(lock, 'who=b token=2')).code).toBe(0);
    sh(c.releaseLock(lock, 'who=b token=2'));
    expect(sh(c.takeLock(lock, 'who=c token=3')).code).toBe(0);
  });
  it('says why when the lock cannot be made at all, instead of calling it held', () => {
    const r = sh(c.takeLock('/proc/berth-cannot/.deploy-lock', 'who=a token=1'));
    expect(r.code).toBe(1);
    expect(r.code).not.toBe(EXIT.lockHeld);
  });
  it('shows the holder line, or nothing when free', () => {
    const lock = path.join(tmp, 'shown');
    expect(sh(c.showLock(lock))).toEqual({ code: 0, out: '' });
    sh(c.takeLock(lock, 'who=a action=deploy token=1'));
    expect(sh(c.showLock(lock))).toEqual({ code: 0, out: 'who=a action=deploy token=1\n' });
    sh(c.breakLock(lock));
    expect(sh(c.showLock(lock)).out).toBe('');
  });
  it('is taken in an environment whose directory does not exist yet (a first deploy there)', () => {
    const lock = path.join(tmp, 'never-set-up', '.deploy-lock');
    expect(sh(c.takeLock(lock, 'who=a token=1'))).toEqual({ code: 0, out: '' });
    expect(sh(c.breakLock(lock)).out).toBe('who=a token=1\n');
  });
});
