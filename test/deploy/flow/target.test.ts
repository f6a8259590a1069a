// Which image a run starts: the digest of what was pulled.
import { describe, expect, it } from 'vitest';
import { pickDigest } from '../../../src/deploy/flow/target.js';

describe('target', () => {
  it('picks the digest of the repository that was pulled', () => {
    const d = (x: string) => `sha256:${x.repeat(64)}`;
    expect(pickDigest('reg:5000/a:v1', [`other/b@${d('1')}`, `reg:5000/a@${d('2')}`])).toBe(d('2'));
    expect(pickDigest(`reg:5000/a@${d('3')}`, [`reg:5000/a@${d('2')}`])).toBe(d('3'));
    expect(pickDigest('acme/berth:v1', [`docker.io/acme/berth@${d('4')}`])).toBe(d('4'));
    expect(pickDigest('a:v1', [])).toBeUndefined();
  });
});
