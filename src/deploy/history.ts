// history.log on the VM: one logfmt line per deploy or rollback (time, action, env, image,
// digest, result, who), like Kamal's audit log. Appended by the deploy, read by `history` and by
// `rollback` to find the previous healthy digest.

export type Action = 'deploy' | 'rollback';
export type Outcome = 'ok' | 'failed';

export interface HistoryEntry {
  time: string;
  action: Action;
  env: string;
  image: string;
  digest: string;
  result: Outcome;
  who: string;
  /** A rollback's: the digest that served before it, i.e. the version rolled away from. */
  from?: string;
  reason?: string;
}

const fieldOrder: (keyof HistoryEntry)[] = [
  'time',
  'action',
  'env',
  'image',
  'digest',
  'result',
  'who',
  'from',
  'reason',
];

function quote(value: string): string {
  const clean = value.replace(/[\r\n]+/g, ' ').trim();
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(clean) ? clean : `"${clean.replace(/["\\]/g, '\\$&')}"`;
}

export function formatEntry(e: HistoryEntry): string {
  return fieldOrder
    .filter((k) => e[k] !== undefined && e[k] !== '')
    .map((k) => `${k}=${quote(String(e[k]))}`)
    .join(' ');
}

export function parseLine(line: string): HistoryEntry | undefined {
  const fields: Record<string, string> = {};
  for (const m of line.matchAll(/([a-z]+)=("((?:[^"\\]|\\.)*)"|\S*)/g)) {
    const key = m[1] ?? '';
    fields[key] = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : (m[2] ?? '');
  }
  if (!fields.time || !fields.digest || !fields.result) return undefined;
  return {
    time: fields.time,
    action: fields.action === 'rollback' ? 'rollback' : 'deploy',
    env: fields.env ?? '',
    image: fields.image ?? '',
    digest: fields.digest,
    result: fields.result === 'ok' ? 'ok' : 'failed',
    who: fields.who ?? '',
    ...(fields.from ? { from: fields.from } : {}),
    reason: fields.reason,
  };
}

export const parseHistory = (text: string): HistoryEntry[] =>
  text
    .split('\n')
    .map(parseLine)
    .filter((e): e is HistoryEntry => e !== undefined);

/** Healthy digests, newest first, each once. */
export function healthyDigests(entries: HistoryEntry[]): string[] {
  const seen: string[] = [];
  for (const e of [...entries].reverse())
    if (e.result === 'ok' && !seen.includes(e.digest)) seen.push(e.digest);
  return seen;
}

export interface Replay {
  /** What served, oldest first: the top is what serves now. */
  served: HistoryEntry[];
  /** The entries a rollback left: what served when someone (or the deploy itself) rolled back. */
  left: Set<HistoryEntry>;
  /** Digests rolled away from and not deployed (or named) since: plain `rollback` skips them. */
  away: Set<string>;
}

/**
 * The history replayed as a stack of what served. A deploy pushes its version. A rollback takes
 * off the version it left (its `from`, else the top), marks that version rolled away, then pops
 * back down to the version it went to, or pushes it when it was named from further away.
 */
export function replay(entries: HistoryEntry[]): Replay {
  const served: HistoryEntry[] = [];
  const left = new Set<HistoryEntry>();
  const away = new Set<string>();
  const lastAt = (digest: string) => served.map((s) => s.digest).lastIndexOf(digest);
  for (const e of entries) {
    if (e.result !== 'ok') continue;
    if (e.action === 'rollback') {
      const from = e.from ?? served.at(-1)?.digest;
      if (from && from !== e.digest) {
        const at = lastAt(from);
        if (at >= 0) left.add(served.splice(at, 1)[0] as HistoryEntry);
        away.add(from);
      }
      const to = lastAt(e.digest);
      if (to >= 0) served.length = to + 1;
      else served.push(e);
    } else if (served.at(-1)?.digest !== e.digest) served.push(e);
    away.delete(e.digest);
  }
  return { served, left, away };
}

/**
 * What `rollback` goes back to: the entry under the top of the stack, so rollbacks walk back
 * (deploy A, deploy B, rollback to A, rollback again: what served before A), never to a version
 * rolled away from (it stays reachable by name). With nothing recorded as serving `current`, the
 * newest healthy other version that was not rolled away from.
 */
export function previousHealthy(
  entries: HistoryEntry[],
  current: string | undefined,
): HistoryEntry | undefined {
  const { served, away } = replay(entries);
  const usable = (e: HistoryEntry) => e.digest !== current && !away.has(e.digest);
  if (current !== undefined && served.at(-1)?.digest === current)
    return [...served].reverse().find(usable);
  return [...entries].reverse().find((e) => e.result === 'ok' && usable(e));
}

/**
 * A VERSION given to `rollback`: a digest (with or without `sha256:`, or its first 7+ hex digits),
 * an image reference, or a tag. Only healthy entries count: rolling back to a refused image is a mistake.
 */
export function findVersion(entries: HistoryEntry[], version: string): HistoryEntry | undefined {
  const v = version.trim();
  const hex = v.replace(/^sha256:/, '').toLowerCase();
  const ok = [...entries].reverse().filter((e) => e.result === 'ok');
  if (/^[0-9a-f]{7,64}$/.test(hex)) {
    const byDigest = ok.find((e) => e.digest.replace(/^sha256:/, '').startsWith(hex));
    if (byDigest) return byDigest;
  }
  return ok.find((e) => e.image === v) ?? ok.find((e) => e.image.endsWith(`:${v}`));
}

/** `repo:tag` or `repo@digest` -> `repo` (a registry port's colon is not a tag). */
export function repositoryOf(ref: string): string {
  const noDigest = ref.split('@')[0] ?? ref;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}
