// --verbose: the executor wrapper prints each remote command as it ends, by name, with its
// duration and how it ended, and changes nothing the flow sees.
import { describe, expect, it } from 'vitest';
import { SshError, type StreamingExecutor } from '../../src/deploy/ssh.js';
import { traced, traceLine } from '../../src/deploy/trace.js';

const inner: StreamingExecutor = {
  target: 'berth@vm:22',
  close: () => undefined,
  run: async (cmd) => {
    await new Promise((r) => setTimeout(r, 30));
    if (cmd.name === 'lost.one') throw new SshError('lost', 'the SSH connection was lost');
    return { code: cmd.name === 'files.read' ? 1 : 0, stdout: 'out', stderr: '' };
  },
  stream: () => Promise.resolve({ code: 0, aborted: false }),
};

describe('traced', () => {
  it('prints one line per command, passing results and errors through unchanged', async () => {
    const lines: string[] = [];
    const exec = traced(inner, (l) => lines.push(l));
    expect(await exec.run({ name: 'files.write', argv: ['true'] })).toEqual({
      code: 0,
      stdout: 'out',
      stderr: '',
    });
    expect((await exec.run({ name: 'files.read', argv: ['false'] })).code).toBe(1);
    await expect(exec.run({ name: 'lost.one', argv: [] })).rejects.toThrow(/lost/);
    await exec.stream({ name: 'app.logs', argv: [] }, { onStdout() {}, onStderr() {} });
    expect(exec.target).toBe('berth@vm:22');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^ {4}· files\.write +\d+ ms$/);
    expect(Number(/(\d+) ms/.exec(lines[0]!)?.[1])).toBeGreaterThanOrEqual(25);
    expect(lines[1]).toMatch(/· files\.read +\d+ ms {2}exit 1$/);
    expect(lines[2]).toMatch(/· lost\.one +\d+ ms {2}the SSH connection was lost$/);
    expect(lines[3]).toMatch(/· app\.logs +\d+ ms$/);
  });

  it('lines up names and durations', () => {
    expect(traceLine('probe.health', 1809.4, 0)).toBe('    · probe.health             1809 ms');
    expect(traceLine('app.start', 12, null)).toBe(
      '    · app.start                  12 ms  exit null',
    );
  });
});
