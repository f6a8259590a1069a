// The rehearsal's closing table: pure text formatting, unit-tested.
import { shortDigest } from '../../src/deploy/digest.js';

export { shortDigest };

export interface Row {
  step: string;
  env: string;
  digest: string;
  result: string;
  seconds: number;
}

const HEADERS = ['step', 'environment', 'digest', 'result', 'time'] as const;

export function formatTable(rows: Row[]): string {
  const cells = rows.map((r) => [
    r.step,
    r.env,
    shortDigest(r.digest),
    r.result,
    `${r.seconds.toFixed(1)}s`,
  ]);
  const widths = HEADERS.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]?.length ?? 0)));
  const line = (c: readonly string[]) =>
    `| ${c.map((v, i) => v.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [
    line(HEADERS),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...cells.map(line),
  ].join('\n');
}
