// Runs a RemoteCommand in a real local sh, the way the VM would (stdin included).
import { execFileSync } from 'node:child_process';
import { toShell, type RemoteCommand } from '../../src/deploy/commands/command.js';

export function runLocally(cmd: RemoteCommand, prefix = ''): { code: number; out: string } {
  try {
    return {
      code: 0,
      out: execFileSync('sh', ['-c', `${prefix}${toShell(cmd)}`], {
        input: cmd.stdin ?? '',
      }).toString(),
    };
  } catch (err) {
    const e = err as { status: number; stdout: Buffer };
    return { code: e.status, out: e.stdout.toString() };
  }
}
