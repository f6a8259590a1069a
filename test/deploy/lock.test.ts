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
  it('says what the holder is doing: the image deployed or the version rolled back to', () => {
    const line = holderLine({
      who: 'ci@github-actions',
      action: 'rollback',
      what: 'reg.example/berth:v 1',
      since: '2026-01-01T10:00:00Z',
      pid: 7,
      token: 't',
    });
    expect(describeHolder(line, new Date('2026-01-01T10:00:05Z'))).toBe(
      'ci@github-actions (rollback of reg.example/berth:v_1 since 2026-01-01T10:00:00Z, 5 s ago)',
    );
  });
});
