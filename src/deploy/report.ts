// What the operator sees: one line per step with its duration, then either a success line or
// ONE `deploy failed: <what happened>. <what to do>` line plus the new container's last log lines.
// Also the --json result line and the GitHub step summary.
import { appendFileSync } from 'node:fs';
import { shortDigest } from './digest.js';

export interface StepRecord {
  name: string;
  ms: number;
  ok: boolean;
}

export interface Result {
  ok: boolean;
  action: string;
  env: string;
  image: string;
  digest?: string;
  rolledBack: boolean;
  reason?: string;
  advice?: string;
  steps: StepRecord[];
}

export interface Output {
  out(line: string): void;
  err(line: string): void;
  /** Raw output as it arrives (a one-off command's prompt has no newline); lines via out/err without it. */
  write?(to: 'out' | 'err', chunk: string): void;
}

export const consoleOutput: Output = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  write: (to, chunk) => (to === 'out' ? process.stdout : process.stderr).write(chunk),
};

export const formatMs = (ms: number): string =>
  ms < 1000 ? `${(ms / 1000).toFixed(2)}s` : `${(ms / 1000).toFixed(1)}s`;

export function stepLine(s: StepRecord, note?: string): string {
  return `${s.ok ? '✓' : '✗'} ${s.name} ${formatMs(s.ms)}${note ? `  ${note}` : ''}`;
}

export const failureLine = (r: Pick<Result, 'action' | 'reason' | 'advice'>): string =>
  `${r.action} failed: ${(r.reason ?? 'unknown error').replace(/\.$/, '')}. ${r.advice ?? ''}`.trim();

export class Reporter {
  readonly steps: StepRecord[] = [];
  constructor(private readonly io: Output = consoleOutput) {}

  /** Runs one named step, timing it; a throw marks the step failed and propagates. */
  async step<T>(
    name: string,
    fn: () => Promise<T>,
    note?: (value: T) => string | undefined,
  ): Promise<T> {
    const started = performance.now();
    try {
      const value = await fn();
      const rec = { name, ms: Math.round(performance.now() - started), ok: true };
      this.steps.push(rec);
      this.io.out(stepLine(rec, note?.(value)));
      return value;
    } catch (err) {
      const rec = { name, ms: Math.round(performance.now() - started), ok: false };
      this.steps.push(rec);
      this.io.out(stepLine(rec));
      throw err;
    }
  }

  info(line: string): void {
    this.io.out(line);
  }

  warn(line: string): void {
    this.io.err(`warning: ${line}`);
  }

  finish(
    r: Result,
    opts: { json: boolean; logs?: string; logsOf?: string; summaryFile?: string },
  ): void {
    if (r.ok) {
      this.io.out(
        `${r.action === 'rollback' ? 'rolled back' : 'deployed'} ${r.env}: ${r.image} (${shortDigest(r.digest)}) is serving`,
      );
    } else {
      if (opts.logs?.trim()) {
        this.io.err(`--- last log lines of ${opts.logsOf ?? 'the new container'} ---`);
        for (const line of opts.logs.trimEnd().split('\n')) this.io.err(line);
        this.io.err('---');
      }
      this.io.err(failureLine(r));
    }
    if (opts.summaryFile) {
      try {
        appendFileSync(opts.summaryFile, summaryMarkdown(r));
      } catch (err) {
        this.warn(`cannot write GITHUB_STEP_SUMMARY: ${(err as Error).message}`);
      }
    }
    if (opts.json) {
      const { ok, env, image, digest, rolledBack, steps, reason, action } = r;
      this.io.out(JSON.stringify({ ok, action, env, image, digest, rolledBack, reason, steps }));
    }
  }
}

export function summaryMarkdown(r: Result): string {
  const rows = r.steps
    .map((s) => `| ${s.ok ? '✅' : '❌'} ${s.name} | ${formatMs(s.ms)} |`)
    .join('\n');
  return [
    `### ${r.action} to ${r.env}: ${r.ok ? 'healthy ✅' : 'failed ❌'}`,
    '',
    '| | |',
    '| --- | --- |',
    `| environment | ${r.env} |`,
    `| image | \`${r.image}\` |`,
    `| digest | \`${r.digest ?? '-'}\` |`,
    `| health | ${r.ok ? 'passed' : 'failed'} |`,
    `| rolled back to :stable | ${r.rolledBack ? 'yes' : 'no'} |`,
    ...(r.ok ? [] : [`| reason | ${failureLine(r).replace(/\|/g, '\\|')} |`]),
    '',
    '| step | time |',
    '| --- | --- |',
    rows,
    '',
  ].join('\n');
}
