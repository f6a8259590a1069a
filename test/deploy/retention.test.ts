// What to prune after a healthy deploy, decided from data only.
import { describe, expect, it } from 'vitest';
import { planRetention } from '../../src/deploy/retention.js';

describe('retention', () => {
  const hex = (n: number) => String(n).repeat(12).slice(0, 12);
  const digest = (n: number) => `sha256:${hex(n)}${'0'.repeat(52)}`;
  const images = [1, 2, 3, 4].map((n) => ({ tag: hex(n), id: `id${n}` }));

  it('keeps the newest N healthy images and always :stable and the live one', () => {
    const plan = planRetention({
      keep: 2,
      images: [...images, { tag: 'stable', id: 'id1' }],
      healthy: [4, 3, 2, 1].map(digest),
      protectedIds: ['id1', 'id4'],
      containers: [],
    });
    expect(plan.untag).toEqual([hex(2)]);
    // A version's settings snapshot stays exactly as long as its image.
    expect(plan.keepSettings.sort()).toEqual([hex(1), hex(3), hex(4)]);
  });
  it('prunes tags it has no history for first', () => {
    const plan = planRetention({
      keep: 1,
      images,
      healthy: [digest(2)],
      protectedIds: [],
      containers: [],
    });
    expect(plan.untag.sort()).toEqual([hex(1), hex(3), hex(4)].sort());
  });
  it('keeps the newest N stopped containers, never the live or a running one', () => {
    const containers = [
      'berth-x-app-20260101000001-a',
      'berth-x-app-20260101000003-a',
      'berth-x-app-20260101000002-a',
      'berth-x-app-20260101000004-a',
    ].map((name) => ({ name, state: 'exited' }));
    containers.push({ name: 'berth-x-app-20260101000000-a', state: 'running' });
    const plan = planRetention({
      keep: 2,
      images: [],
      healthy: [],
      protectedIds: [],
      containers,
      live: 'berth-x-app-20260101000004-a',
    });
    expect(plan.removeContainers).toEqual(['berth-x-app-20260101000001-a']);
  });
  it('removes a version as a pair: its stopped container goes with its image, so rmi is not refused', () => {
    // keep 2 containers by age would keep 0001's container; its image (tag 1) is dropped, so it goes too.
    const containers = [
      { name: 'berth-x-app-20260101000004-a', state: 'running', digest: digest(4) },
      { name: 'berth-x-app-20260101000001-a', state: 'exited', digest: digest(1) },
    ];
    const plan = planRetention({
      keep: 1,
      images,
      healthy: [4, 3, 2, 1].map(digest),
      protectedIds: ['id4'],
      containers,
      live: 'berth-x-app-20260101000004-a',
    });
    expect(plan.untag.sort()).toEqual([hex(1), hex(2), hex(3)]);
    expect(plan.removeContainers).toEqual(['berth-x-app-20260101000001-a']);
  });
  it('removes the registry name a dropped version was deployed by, unless another environment or a hand pull names it', () => {
    const plan = planRetention({
      keep: 1,
      images,
      healthy: [4, 3, 2, 1].map(digest),
      protectedIds: ['id4'],
      containers: [],
      names: {
        id1: ['localhost/berth-x:111111111111', 'reg.example/berth:v1'],
        id2: ['berth-x:222222222222', 'reg.example/berth:v2', 'berth-production:222222222222'],
        id3: ['berth-x:333333333333', 'reg.example/berth:pulled-by-hand'],
      },
      deployedRefs: ['reg.example/berth:v1', 'reg.example/berth:v2', 'reg.example/berth:v4'],
      otherEnvTag: /(^|\/)berth-(production|testing):/,
    });
    expect(plan.removeNames).toEqual(['reg.example/berth:v1']);
  });
  it('keeps the names of a dropped version whose container stays', () => {
    const containers = [
      { name: 'berth-x-app-20260101000002-a', state: 'running', digest: digest(2) },
    ];
    const plan = planRetention({
      keep: 1,
      images,
      healthy: [4, 3, 2, 1].map(digest),
      protectedIds: ['id4'],
      containers,
      names: { id2: ['reg.example/berth:v2'] },
      deployedRefs: ['reg.example/berth:v2'],
    });
    expect(plan.removeNames).toEqual([]);
  });
});
