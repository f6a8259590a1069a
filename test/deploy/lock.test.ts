// The lock's holder line, as the next deploy reads it.
import { describe, expect, it } from 'vitest';
import { describeHolder, holderLine } from '../../src/deploy/lock.js';

describe('lock holder', () => {
  it('says who and since when, and how long ago', () => {
    const line = holderLine({
      who: 'ana@laptop',
      action: 'deploy',
      since: '2026-01-01T10:00:00Z',
      pid: 42,
      token: 'abc',
    });
    expect(describeHolder(line, new Date('2026-01-01T10:01:30Z'))).toBe(
      'ana@laptop (deploy since 2026-01-01T10:00:00Z, 90 s ago)',
    );
    expect(describeHolder('someone (no holder file yet)\n')).toBe('someone (no holder file yet)');
  });
});
