// The new container's name.
import { describe, expect, it } from 'vitest';
import { containerName } from '../../../src/deploy/flow/container.js';

describe('containers', () => {
  it('names containers so they sort by age and resolve in DNS', () => {
    const name = containerName('staging', new Date('2026-03-04T05:06:07Z'));
    expect(name).toMatch(/^berth-staging-app-20260304050607-[0-9a-f]{4}$/);
  });
});
