// A steady stream of GETs against the environment's public port while a deploy runs: the
// contract promises zero failed requests during a healthy deploy and during a rejected one.
// Used by the scenarios (failures must be 0) and by bench/deploy.ts (which also prints figures).
//
// The client behaves like a browser: persistent (keep-alive) connections, and an idempotent
// request that meets a reset on a *reused* idle connection before any response byte is sent
// again on a new one (RFC 9110 9.2.2; Node's docs describe the same race under
// `request.reusedSocket`). A proxy may close an idle connection at any moment (nginx's old
// workers do so on a reload), so such a retry is normal client behaviour, not a failed request.
// They are counted separately; everything else (refused connections, resets on fresh
// connections, timeouts, non-200 answers) is a failure.
//
// Whether a connection was reused is the client's own record (watchReuse), not Node's
// `request.reusedSocket`, which misses a request that waited in the agent's queue: a reset there
// once read as a new connection lost (the "open problem" of earlier stops at nginx's reload).
import http from 'node:http';
import https from 'node:https';
import { watchReuse } from '../../helpers/keep-alive.js';

export interface PollResult {
  sent: number;
  failed: number;
  /** Requests sent again because an idle keep-alive connection was closed under them. */
  retriedOnStaleConnection: number;
  /** Status codes or error messages of the failures, at most 20. */
  failures: string[];
  /** Longest time between two successful responses, ms. */
  longestGapMs: number;
  /**
   * Versions in the order they answered, without repeats (e.g. ['1.0.0', '2.0.0']). A request
   * sent before a switch may be answered by the old version after the first new answer (requests
   * in flight finish): that shows here as a flip, and is allowed; `oldAfterNew` is what is not.
   */
  versions: string[];
  /** Each version once, in the order of its first answer: what the tests compare. */
  served: string[];
  /** The same, each with when it began to be answered (seconds since the poller started). */
  changes: { version: string; atS: number }[];
  /**
   * Answers from a version older than one that had already answered when the request was sent:
   * what the switch must never do. `versions` alone cannot tell this from a request sent before
   * the switch that was answered (by the old version, as it should be) after a newer answer.
   */
  oldAfterNew: number;
}

export interface Poller {
  stop: () => Promise<PollResult>;
}

export interface Answer {
  status: number;
  body: string;
}

export class StaleConnection extends Error {}

/**
 * One GET through `agent`. Rejects with StaleConnection when a connection that had already
 * carried an answer is reset before any byte of this one's: the race a client sends again.
 */
export function getOnce(
  url: string,
  agent: http.Agent,
  headers: Record<string, string>,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const get = url.startsWith('https:') ? https.get : http.get;
    const req = get(url, { agent, headers, timeout: 5000 }, (res) => {
      answered = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    const reused = watchReuse(req);
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', (err: NodeJS.ErrnoException) => {
      const stale = reused() && !answered && (err.code === 'ECONNRESET' || err.code === 'EPIPE');
      if (stale) reject(new StaleConnection(err.message));
      // Which connection failed, and how far the exchange got: what tells a closed keep-alive
      // race from a refused or dropped new connection when a failure is read back.
      else
        reject(
          new Error(
            `${err.message} (${reused() ? 'kept-alive' : 'new'} connection${answered ? ', answer begun' : ''})`,
          ),
        );
    });
  });
}

/**
 * Runs `concurrency` request loops against `url` (with `headers`, e.g. a Host for the edge) until stopped. Each loop waits for its answer
 * before sending the next, so this measures availability, not throughput.
 */
export function startPoller(
  url: string,
  concurrency = 2,
  headers: Record<string, string> = {},
  /** For an https:// url: the name to ask for (SNI, and the certificate's) and the only root trusted. */
  tls?: { servername: string; ca: string },
): Poller {
  let running = true;
  const agentFor = (keepAlive: boolean): http.Agent =>
    tls
      ? new https.Agent({ keepAlive, maxSockets: concurrency, ...tls })
      : new http.Agent({ keepAlive, maxSockets: concurrency });
  const agent = agentFor(true);
  const freshConnection = agentFor(false);
  const result: PollResult = {
    sent: 0,
    failed: 0,
    retriedOnStaleConnection: 0,
    failures: [],
    longestGapMs: 0,
    versions: [],
    served: [],
    changes: [],
    oldAfterNew: 0,
  };
  let lastOk = performance.now();
  const begun = lastOk;

  // Each version's rank (order of first answer) and when it first answered.
  const firstAnswered = new Map<string, { rank: number; at: number }>();
  const recordOk = (body: string, sentAt: number): void => {
    const now = performance.now();
    result.longestGapMs = Math.max(result.longestGapMs, now - lastOk);
    lastOk = now;
    let version: string | undefined;
    try {
      version = (JSON.parse(body) as { version?: string }).version;
    } catch {
      version = undefined;
    }
    if (version === undefined) return;
    const seen = firstAnswered.get(version);
    if (!seen) firstAnswered.set(version, { rank: firstAnswered.size, at: now });
    else if ([...firstAnswered.values()].some((v) => v.rank > seen.rank && v.at < sentAt))
      result.oldAfterNew += 1;
    if (result.changes.at(-1)?.version !== version)
      result.changes.push({ version, atS: (now - begun) / 1000 });
  };
  // When, since the poller started: to line a failure up with a deploy's step times.
  const recordFailure = (what: string): void => {
    result.failed += 1;
    if (result.failures.length < 20)
      result.failures.push(`${what} (at ${((performance.now() - begun) / 1000).toFixed(2)} s)`);
  };

  const request = async (): Promise<Answer> => {
    try {
      return await getOnce(url, agent, headers);
    } catch (err) {
      if (!(err instanceof StaleConnection)) throw err;
      // Once, on a new connection: the other idle ones in the pool may be just as stale.
      result.retriedOnStaleConnection += 1;
      return getOnce(url, freshConnection, headers).catch((again: Error) => {
        throw new Error(`sent again after ${err.message}: ${again.message}`);
      });
    }
  };

  const loop = async (): Promise<void> => {
    while (running) {
      result.sent += 1;
      const sentAt = performance.now();
      try {
        const answer = await request();
        if (answer.status === 200) recordOk(answer.body, sentAt);
        else recordFailure(`HTTP ${answer.status}`);
      } catch (err) {
        recordFailure((err as Error).message);
      }
    }
  };
  const loops = Array.from({ length: concurrency }, loop);

  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      freshConnection.destroy();
      result.longestGapMs = Math.round(Math.max(result.longestGapMs, performance.now() - lastOk));
      result.versions = result.changes.map((c) => c.version);
      result.served = [...firstAnswered.keys()];
      return result;
    },
  };
}
