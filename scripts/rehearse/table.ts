// The rehearsal's closing table: pure text formatting, unit-tested.

export interface Row {
  step: string;
  env: string;
  digest: string;
  result: string;
  seconds: number;
}

const HEADERS = ['step', 'environment', 'digest', 'result', 'time'] as const;

/** sha256:0123456789abcdef... -> sha256:0123456789ab (what people compare by eye). */
export function shortDigest(digest: string): string {
  const m = /^sha256:([0-9a-f]{12})[0-9a-f]*$/.exec(digest);
  return m ? `sha256:${m[1]}` : digest;
}

export function formatTable(rows: Row[]): string {
  const cells = rows.map((r) => [r.step, r.env, shortDigest(r.digest), r.result, `${r.seconds.toFixed(1)}s`]);
  const widths = HEADERS.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]?.length ?? 0)));
  const line = (c: readonly string[]) => `| ${c.map((v, i) => v.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  return [line(HEADERS), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.map(line)].join('\n');
}
