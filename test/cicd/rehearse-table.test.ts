import { describe, expect, it } from 'vitest';
import { formatTable, shortDigest } from '../../scripts/rehearse/table.js';

describe('rehearsal summary table', () => {
  const digest = `sha256:${'0123456789ab'}${'f'.repeat(52)}`;

  it('shortens digests to what people compare by eye, leaving anything else alone', () => {
    expect(shortDigest(digest)).toBe('sha256:0123456789ab');
    expect(shortDigest('?')).toBe('?');
  });

  it('lines up columns under their headers', () => {
    const table = formatTable([
      { step: 'build + push', env: '-', digest, result: 'pushed', seconds: 41.234 },
      { step: 'promote from testing', env: 'staging', digest, result: 'healthy', seconds: 6 },
    ]);
    expect(table.split('\n')).toEqual([
      '| step                 | environment | digest              | result  | time  |',
      '|----------------------|-------------|---------------------|---------|-------|',
      '| build + push         | -           | sha256:0123456789ab | pushed  | 41.2s |',
      '| promote from testing | staging     | sha256:0123456789ab | healthy | 6.0s  |',
    ]);
  });
});
