// The lanes of test/lanes.ts stay right as files are added: a file that deploys to the test VM or
// starts the monitoring stack in compose must be in the `vm` lane (or `alone`), never beside it.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { alone, vmLane } from '../lanes.js';
import { repoRoot } from '../helpers/real-tools.js';

/** The lanes' globs use only `**\/` and `*`. */
const matcher = (glob: string): RegExp =>
  new RegExp(
    `^${glob
      .replace(/[.+?^${}()|[\]\\]/g, '\\$&')
      .replace(/\*\*\//g, '(?:.*/)?')
      .replace(/\*/g, '[^/]*')}$`,
  );
const inLane = (file: string, globs: string[]) => globs.some((g) => matcher(g).test(file));

const intFiles = (readdirSync(path.join(repoRoot, 'test'), { recursive: true }) as string[])
  .map((f) => `test/${f.split(path.sep).join('/')}`)
  .filter((f) => f.endsWith('.int.test.ts'));

/** What makes a file use the VM or the stack's fixed ports. */
const usesVm = /e2e\/harness|vm-edge|compose-stack|'rehearse'/;

describe('test lanes (test/lanes.ts)', () => {
  it('finds the files the globs name', () => {
    expect(intFiles.filter((f) => inLane(f, alone))).toEqual(alone);
    expect(intFiles.filter((f) => inLane(f, vmLane)).length).toBeGreaterThan(10);
  });

  it('puts every file that uses the test VM or the compose stack in the vm lane or alone', () => {
    const astray = intFiles.filter(
      (f) =>
        usesVm.test(readFileSync(path.join(repoRoot, f), 'utf8')) &&
        !inLane(f, vmLane) &&
        !inLane(f, alone),
    );
    expect(astray).toEqual([]);
  });
});
