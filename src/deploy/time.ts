// The deploy's ways of dealing with time, each defined once.

/** UTC to the second (2026-01-01T10:00:00Z): history lines, lock holders, notes on the VM. */
export const timestamp = (now = new Date()): string => now.toISOString().replace(/\.\d+Z$/, 'Z');

/** Waits `ms`; an abort ends the wait early (the caller checks the signal afterwards). */
export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

/** A duration for a step's line: 0.4 s. */
export const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
