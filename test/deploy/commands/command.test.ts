// Quoting: every RemoteCommand becomes one shell line that a real sh reads back as its argv.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { toShell } from '../../../src/deploy/commands/command.js';

/** Runs the shell line through a real sh and returns argv as the remote side sees it. */
function roundTrip(args: string[]): string[] {
  const line = toShell({ name: 'test.printf', argv: ['printf', '%s\\0', ...args] });
  const out = execFileSync('sh', ['-c', line]);
  return out.toString().split('\0').slice(0, -1);
}

describe('quoting', () => {
  it('survives a real shell for every awkward argument', () => {
    const nasty = [
      "it's",
      'a b',
      '$HOME',
      '`id`',
      '"q"',
      '\\n',
      '',
      '-x',
      '*',
      ';rm -rf /',
      'ünï',
      'a\nb',
    ];
    expect(roundTrip(nasty)).toEqual(nasty);
  });
  it('leaves plain words unquoted so logs stay readable', () => {
    expect(
      toShell({
        name: 'images.pull',
        argv: ['docker', 'pull', '-q', '127.0.0.1:5000/berth@sha256:abc'],
      }),
    ).toBe('docker pull -q 127.0.0.1:5000/berth@sha256:abc');
  });
});
