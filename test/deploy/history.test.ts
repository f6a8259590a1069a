// history.log lines: written, read back, and what rollback picks from them.
import { describe, expect, it } from 'vitest';
import {
  findVersion,
  formatEntry,
  parseHistory,
  parseLine,
  previousHealthy,
  replay,
  repositoryOf,
  type HistoryEntry,
} from '../../src/deploy/history.js';
import { historyTable } from '../../src/deploy/status.js';

describe('history', () => {
  const e = (
    digest: string,
    result: HistoryEntry['result'],
    image = `r/b:${digest}`,
  ): HistoryEntry => ({
    time: '2026-01-01T00:00:00Z',
    action: 'deploy',
    env: 'production',
    image,
    digest: `sha256:${digest.padEnd(64, '0')}`,
    result,
    who: 'ci@x',
  });
  const log = [e('aa', 'ok'), e('bb', 'ok'), e('cc', 'failed'), e('dd', 'ok')];

  it('round-trips a line, quoting a reason with spaces', () => {
    const entry = { ...e('aa', 'failed'), reason: 'GET /health "500" in 5 s' };
    expect(parseLine(formatEntry(entry))).toEqual(entry);
    expect(formatEntry(entry)).toMatch(
      /^time=2026-01-01T00:00:00Z action=deploy env=production image=r\/b:aa digest=sha256:aa0+ result=failed who=ci@x reason="GET \/health \\"500\\" in 5 s"$/,
    );
  });
  it('rollback goes to the last healthy digest that is not serving now', () => {
    expect(previousHealthy(log, log[3]?.digest)?.digest).toBe(log[1]?.digest);
    expect(previousHealthy(log, undefined)?.digest).toBe(log[3]?.digest);
    expect(previousHealthy([e('aa', 'ok')], log[0]?.digest)).toBeUndefined();
  });
  it('walks back on every rollback, never forth to the version just rolled away from', () => {
    const rolledBack = (entry: HistoryEntry): HistoryEntry => ({ ...entry, action: 'rollback' });
    const [a, b, c] = [e('aa', 'ok'), e('bb', 'ok'), e('cc', 'ok')];
    const walk: HistoryEntry[] = [a, b, c];
    // Serving C: back to B; then (B serving after a rollback) back to A; then nothing earlier.
    expect(previousHealthy(walk, c.digest)?.digest).toBe(b.digest);
    walk.push(rolledBack(b));
    expect(previousHealthy(walk, b.digest)?.digest).toBe(a.digest);
    walk.push(rolledBack(a));
    expect(previousHealthy(walk, a.digest)).toBeUndefined();
    // A version deployed again counts from its newest deploy; once rolled away from, its older
    // copy is skipped too (no bouncing back to it), until it is named or deployed again.
    const again: HistoryEntry[] = [a, b, a];
    expect(previousHealthy(again, a.digest)?.digest).toBe(b.digest);
    again.push(rolledBack(b));
    expect(previousHealthy(again, b.digest)).toBeUndefined();
    again.push(rolledBack(a));
    expect(previousHealthy(again, a.digest)).toBeUndefined();
    // After a rollback, a new deploy rolls back to what served before it, not to what was left.
    const after: HistoryEntry[] = [a, b, rolledBack(a), c];
    expect(previousHealthy(after, c.digest)?.digest).toBe(a.digest);
  });
  it('marks the version a rollback left (its from=, else what served) and skips it until it is deployed again', () => {
    const [a, b, c, d] = [e('aa', 'ok'), e('bb', 'ok'), e('cc', 'ok'), e('dd', 'ok')];
    const back = (to: HistoryEntry, from?: HistoryEntry): HistoryEntry => ({
      ...to,
      action: 'rollback',
      ...(from ? { from: from.digest } : {}),
    });
    // Named from C back to A: C is left; B was skipped over, not left.
    const named = [a, b, c, back(a, c)];
    expect([...replay(named).left]).toEqual([c]);
    expect([...replay(named).away]).toEqual([c.digest]);
    // D deployed, then a rollback: back to A, never to C (rolled away from), nor B (skipped over).
    expect(previousHealthy([...named, d], d.digest)?.digest).toBe(a.digest);
    // With nothing recorded as serving now (a hand-started container), C is still skipped.
    expect(previousHealthy([...named, d], undefined)?.digest).toBe(d.digest);
    expect(previousHealthy([...named, d], 'sha256:unknown')?.digest).toBe(d.digest);
    expect(previousHealthy([...named], 'sha256:unknown')?.digest).toBe(a.digest);
    // A rollback named to a version from outside the stack still leaves what served.
    const x = e('ee', 'ok');
    const outside = [x, a, back(x, a), b, back(a, b)];
    expect([...replay(outside).away]).toEqual([b.digest]);
    // Deployed again: no longer skipped.
    expect(previousHealthy([...named, c, d], d.digest)?.digest).toBe(c.digest);
    // It stays reachable by name.
    expect(findVersion(named, 'cc')?.digest).toBe(c.digest);
    // The mark survives a round trip through history.log.
    expect(parseLine(formatEntry(back(a, c)))?.from).toBe(c.digest);
  });
  it('finds a named version by digest, digest prefix, image or tag, never a failed one', () => {
    expect(findVersion(log, log[0]?.digest ?? '')?.image).toBe('r/b:aa');
    expect(findVersion(log, 'bb00000')?.image).toBe('r/b:bb');
    expect(findVersion(log, 'r/b:dd')?.image).toBe('r/b:dd');
    expect(findVersion(log, 'dd')?.image).toBe('r/b:dd');
    expect(findVersion(log, 'cc')).toBeUndefined();
  });
  it('skips lines it cannot read', () => {
    expect(parseHistory('garbage\n\ntime=x digest=y result=ok\n')).toHaveLength(1);
  });
  it('knows a registry port from a tag', () => {
    expect(repositoryOf('127.0.0.1:5000/berth-e2e:v1')).toBe('127.0.0.1:5000/berth-e2e');
    expect(repositoryOf('127.0.0.1:5000/berth-e2e@sha256:ab')).toBe('127.0.0.1:5000/berth-e2e');
    expect(repositoryOf('ghcr.io/acme/berth')).toBe('ghcr.io/acme/berth');
  });
});

describe('history view', () => {
  it('marks the versions a rollback left, in the table and the JSON rows', () => {
    const line = (action: string, d: string, from = '') =>
      `time=2026-01-01T00:00:0${d.length}Z action=${action} env=staging image=r/b:${d} digest=sha256:${d.padEnd(64, '0')} result=ok who=t${from ? ` from=sha256:${from.padEnd(64, '0')}` : ''}`;
    const entries = parseHistory(
      [line('deploy', 'aa'), line('deploy', 'bb'), line('rollback', 'aa', 'bb')].join('\n'),
    );
    const { left } = replay(entries);
    const rows = entries.map((e) => ({ ...e, rolledAway: left.has(e) }));
    expect(rows.map((r) => r.rolledAway)).toEqual([false, true, false]);
    const table = historyTable('staging', rows).split('\n');
    expect(table[2]).toMatch(/deploy\s+ok, rolled away\s+sha256:bb0000000000/);
    expect(table[3]).toMatch(/rollback\s+ok\s+sha256:aa0000000000/);
  });
});
