// `together`: independent remote commands at once; it returns only when all have ended, so a
// failure never leaves one still running behind the flow's back.
import { describe, expect, it } from 'vitest';
import { together } from '../../../src/deploy/flow/run.js';

const after = <T>(ms: number, value: T, fail = false): Promise<T> =>
  new Promise((resolve, reject) =>
    setTimeout(() => (fail ? reject(new Error(String(value))) : resolve(value)), ms),
  );

describe('together', () => {
  it('gives the results in the order given, typed', async () => {
    const [a, b] = await together([after(40, 'text'), after(10, 7)]);
    expect([a.toUpperCase(), b + 1]).toEqual(['TEXT', 8]);
  });

  it('throws the failure of the first command in the list, only after every one has ended', async () => {
    let slowEnded = false;
    const slow = after(80, 'slow').then((v) => ((slowEnded = true), v));
    // 'listed first' fails later in time than 'listed last'.
    await expect(
      together([after(40, 'listed first', true), slow, after(5, 'listed last', true)]),
    ).rejects.toThrow('listed first');
    expect(slowEnded).toBe(true);
  });
});
