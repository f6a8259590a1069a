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

/**
 * What `rollback` goes back to. The history replays as a stack of what served: a deploy pushes its
 * version, a rollback pops back down to the version it went to (or pushes it, when it was named
 * from further away). The answer is the entry under the top, so rollbacks walk back (deploy A,
 * deploy B, rollback to A, rollback again: what served before A), never forth to the version just
 * rolled away from. With nothing recorded as serving `current`, the newest healthy other version.
 */
export function previousHealthy(
  entries: HistoryEntry[],
  current: string | undefined,
): HistoryEntry | undefined {
  const served: HistoryEntry[] = [];
  for (const e of entries) {
    if (e.result !== 'ok') continue;
    const at = e.action === 'rollback' ? served.map((s) => s.digest).lastIndexOf(e.digest) : -1;
    if (at >= 0) served.length = at + 1;
    else if (served.at(-1)?.digest !== e.digest) served.push(e);
  }
  if (current !== undefined && served.at(-1)?.digest === current) {
    return [...served].reverse().find((e) => e.digest !== current);
  }
  return [...entries].reverse().find((e) => e.result === 'ok' && e.digest !== current);
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
