// Images: this environment's own tags.
import { describe, expect, it } from 'vitest';
import { envTag, listEnvImages } from '../../../src/deploy/commands/images.js';
import { stableRef } from '../../../src/deploy/environments.js';

describe('images', () => {
  it('tags per environment, so pruning one never touches another', () => {
    expect(envTag('testing', 'sha256:0123456789abcdef')).toBe('berth-testing:0123456789ab');
    expect(stableRef('testing')).toBe('berth-testing:stable');
    expect(listEnvImages('testing').argv.at(-1)).toBe('berth-testing');
  });
});
