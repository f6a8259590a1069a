// A command for the VM as data: a name (what it does, for the fake VM in the tests and for
// reading logs), an argv array, and stdin when a file or a program travels with it. Nothing here
// touches a host; ssh.ts turns a RemoteCommand into one shell line with `toShell`, the only place
// where quoting happens. Kamal's lib/kamal/commands/* is the model.
import { program, type ProgramFile } from '../remote/programs.js';

export interface RemoteCommand {
  /** `concern.action`, e.g. `files.write`: unique per builder. */
  name: string;
  argv: string[];
  /** Sent on the command's stdin (file contents, programs): never on the command line, where `ps` shows it. */
  stdin?: string;
}

/** POSIX single-quoting: safe for any byte string except NUL. */
export function shellQuote(arg: string): string {
  if (arg === '') return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function toShell(cmd: RemoteCommand): string {
  return cmd.argv.map(shellQuote).join(' ');
}

export const docker = (name: string, ...args: string[]): RemoteCommand => ({
  name,
  argv: ['docker', ...args],
});

/** A one-line shell command with its inputs as positional parameters ($1, $2, ...), never spliced in. */
export const sh = (name: string, script: string, ...args: string[]): RemoteCommand => ({
  name,
  argv: ['sh', '-c', script, 'sh', ...args],
});

/** A shell program from remote/, sent on stdin (`sh -s ARGS`): its arguments become $1, $2, ... */
export const shellProgram = (
  name: string,
  file: ProgramFile,
  ...args: string[]
): RemoteCommand => ({
  name,
  argv: ['sh', '-s', ...args],
  stdin: program(file),
});

/**
 * Runs `cmd` and ends it when our side of the SSH channel goes away. Without a terminal, sshd
 * sends no hangup, so a `docker logs --follow` would stay on the VM until it next wrote a line.
 * This wrapper keeps the channel's stdin open (the executor's `stdin: { hold: true }`), watches it, and
 * stops the command (SIGTERM) as soon as it ends. Its arguments stay arguments ("$@").
 */
export const untilHangup = (cmd: RemoteCommand): RemoteCommand =>
  sh(
    cmd.name,
    'exec 3<&0; "$@" 3<&- & p=$!; (cat <&3 >/dev/null 2>&1; kill "$p" 2>/dev/null) >/dev/null 2>&1 & w=$!; exec 3<&-; wait "$p"; s=$?; kill "$w" 2>/dev/null; exit "$s"',
    ...cmd.argv,
  );
