// Files in the environment's directory on the VM.
import { sh, type RemoteCommand } from './command.js';

/**
 * The environment's directory and proxy/, modes set explicitly whatever the deploy user's umask:
 * proxy/ is mounted into a container whose nginx runs as uid 101 (755); the directory holds the
 * settings and stays 750, as init_setup.sh makes it (a re-run of init_setup then changes nothing).
 */
export const makeEnvDirs = (dir: string, proxyDir: string): RemoteCommand =>
  sh('files.makeDirs', 'mkdir -p "$1" "$2" && chmod 750 "$1" && chmod 755 "$2"', dir, proxyDir);

/**
 * Replaces a file atomically (write beside it, then rename): readers never see half a file.
 * World-readable (644) unless told otherwise, whatever the umask: nginx (uid 101) reads proxy/.
 */
export function writeFile(path: string, content: string, mode = '644'): RemoteCommand {
  return {
    ...sh(
      'files.write',
      'cat > "$1.tmp.$$" && chmod "$2" "$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"',
      path,
      mode,
    ),
    stdin: content,
  };
}

/** Creates a file readable only by the deploy user, unless it exists (the user's .env is never overwritten). */
export function writeFileIfMissing(path: string, content: string): RemoteCommand {
  return {
    ...sh(
      'files.writeIfMissing',
      '[ -e "$1" ] && exit 0; umask 077; cat > "$1.tmp.$$" && mv "$1.tmp.$$" "$1" && echo created',
      path,
    ),
    stdin: content,
  };
}

/**
 * Creates the app's settings file unless it exists: a byte-for-byte copy of the environment's .env
 * when there is one (a VM from before the split, whose app was given .env itself), else `defaults`
 * from stdin. Prints `copied` or `created`; private (077) either way.
 */
export function seedAppSettings(appEnv: string, dotEnv: string, defaults: string): RemoteCommand {
  const script = [
    '[ -e "$1" ] && exit 0',
    'umask 077',
    'if [ -f "$2" ]; then cp "$2" "$1.tmp.$$" && mv "$1.tmp.$$" "$1" && echo copied',
    'else cat > "$1.tmp.$$" && mv "$1.tmp.$$" "$1" && echo created; fi',
  ].join('; ');
  return { ...sh('files.seedAppSettings', script, appEnv, dotEnv), stdin: defaults };
}

/** Prints the file, or nothing when it does not exist. */
export const readFile = (path: string): RemoteCommand =>
  sh('files.read', '[ ! -e "$1" ] || cat "$1"', path);

export const appendLine = (path: string, line: string): RemoteCommand =>
  sh('files.appendLine', 'printf "%s\\n" "$2" >> "$1"', path, line);

/** Only the tuning keys the app container needs, so the rest of .env (secrets) never leaves the VM. */
export const tuningKeys = [
  'APP_MEMORY_LIMIT',
  'APP_CPUS',
  'LOG_MAX_SIZE',
  'LOG_MAX_FILE',
  // Not for the container: the environment's host name on the HTTPS edge (flow/edge.ts).
  'APP_DOMAIN',
] as const;
export const readTuning = (envFile: string): RemoteCommand =>
  sh('files.readTuning', `grep -E '^(${tuningKeys.join('|')})=' "$1" || true`, envFile);

/** Settings read from the environment's .env (see tuningKeys); defaults match docker-compose.yml. */
export type Tuning = Partial<Record<(typeof tuningKeys)[number], string>>;

export function parseTuning(text: string): Tuning {
  const tuning: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m?.[1] && (tuningKeys as readonly string[]).includes(m[1]))
      tuning[m[1]] = (m[2] ?? '').replace(/^(['"])(.*)\1$/, '$2').trim();
  }
  return tuning;
}

export const removeFiles = (...paths: string[]): RemoteCommand =>
  sh('files.remove', 'rm -f -- "$@"', ...paths);

/** Exit 0 when the path exists. */
export const exists = (path: string): RemoteCommand => sh('files.exists', '[ -e "$1" ]', path);
