// `together`: independent remote commands at once; it returns only when all have ended, so a
// failure never leaves one still running behind the flow's back.
import { describe, expect, it } from 'vitest';
import { together } from '../../../src/deploy/flow/run.js';

const after = <T>(ms: number, value: T, fail = false): Promise<T> =>
  new Promise((resolve, reject) =>
    setTimeout(() => (fail ? reject(new Error(String(value))) : resolve(value)), ms),
  );

describe('together', () => {
  it('gives the results in order, typed, taking as long as the slowest', async () => {
    const started = performance.now();
    const [a, b] = await together([after(60, 'text'), after(30, 7)]);
    expect([a.toUpperCase(), b + 1]).toEqual(['TEXT', 8]);
    expect(performance.now() - started).toBeLessThan(110);
  });

  it('throws the first failure, but only after the others have ended', async () => {
    let slowEnded = false;
    const slow = after(80, 'slow').then((v) => ((slowEnded = true), v));
    await expect(
      together([after(10, 'boom', true), slow, after(20, 'late', true)]),
    ).rejects.toThrow('boom');
    expect(slowEnded).toBe(true);
  });
});
