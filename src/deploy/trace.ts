// --verbose: every command run on the VM as it ends, with its duration and (when not 0) its exit
// code, under the name it has in commands/. A slow or stuck deploy then shows which command the
// time went to, without reading the remote programs.
import type { StreamingExecutor } from './ssh.js';

export function traced(exec: StreamingExecutor, write: (line: string) => void): StreamingExecutor {
  const timed = async <T extends { code: number | null }>(
    name: string,
    body: () => Promise<T>,
  ): Promise<T> => {
    const started = performance.now();
    try {
      const res = await body();
      write(traceLine(name, performance.now() - started, res.code));
      return res;
    } catch (err) {
      write(traceLine(name, performance.now() - started, (err as Error).message));
      throw err;
    }
  };
  return {
    target: exec.target,
    close: () => exec.close(),
    run: (cmd, opts) => timed(cmd.name, () => exec.run(cmd, opts)),
    stream: (cmd, opts) => timed(cmd.name, () => exec.stream(cmd, opts)),
  };
}

export function traceLine(name: string, ms: number, outcome: number | null | string): string {
  const how =
    outcome === 0 ? '' : typeof outcome === 'string' ? `  ${outcome}` : `  exit ${outcome}`;
  return `    · ${name.padEnd(22)} ${String(Math.round(ms)).padStart(6)} ms${how}`;
}
