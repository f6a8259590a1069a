// A steady stream of GETs against the environment's public port while a deploy runs: the
// contract promises zero failed requests during a healthy deploy and during a rejected one.
// Used by the scenarios (failures must be 0) and by bench/deploy.ts (which also prints figures).

export interface PollResult {
  sent: number;
  failed: number;
  /** Status codes or error messages of the failures, at most 20. */
  failures: string[];
  /** Longest time between two successful responses, ms. */
  longestGapMs: number;
  /** Versions seen, in order, without repeats (e.g. ['1.0.0', '2.0.0']). */
  versions: string[];
}

export interface Poller {
  stop: () => Promise<PollResult>;
}

/**
 * Runs `concurrency` request loops against `url` until stopped. Each loop waits for its answer
 * before sending the next, so this measures availability, not throughput.
 */
export function startPoller(url: string, concurrency = 2): Poller {
  let running = true;
  const result: PollResult = { sent: 0, failed: 0, failures: [], longestGapMs: 0, versions: [] };
  let lastOk = performance.now();

  const recordOk = (version: string | undefined): void => {
    const now = performance.now();
    result.longestGapMs = Math.max(result.longestGapMs, now - lastOk);
    lastOk = now;
    if (version !== undefined && result.versions.at(-1) !== version) result.versions.push(version);
  };
  const recordFailure = (what: string): void => {
    result.failed += 1;
    if (result.failures.length < 20) result.failures.push(what);
  };

  const loop = async (): Promise<void> => {
    while (running) {
      result.sent += 1;
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
        const body = (await res.json().catch(() => ({}))) as { version?: string };
        if (res.status === 200) recordOk(body.version);
        else recordFailure(`HTTP ${res.status}`);
      } catch (err) {
        recordFailure((err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message);
      }
    }
  };
  const loops = Array.from({ length: concurrency }, loop);

  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      result.longestGapMs = Math.round(Math.max(result.longestGapMs, performance.now() - lastOk));
      return result;
    },
  };
}
