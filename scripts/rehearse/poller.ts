// Asks an environment's public port for /health over and over while something happens to it,
// and tells afterwards how many answers there were, how many failed, and which versions served.

export interface PollReport {
  requests: number;
  failures: number;
  versions: string[];
}

export function startPoller(url: string, everyMs = 50): { stop: () => Promise<PollReport> } {
  const report: PollReport = { requests: 0, failures: 0, versions: [] };
  let running = true;
  const loop = (async () => {
    while (running) {
      report.requests += 1;
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
        const body = (await res.json()) as { version?: string };
        if (res.status !== 200) report.failures += 1;
        else if (body.version && !report.versions.includes(body.version)) report.versions.push(body.version);
      } catch {
        report.failures += 1;
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return report;
    },
  };
}
