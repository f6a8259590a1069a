// The deploy lock: an atomic mkdir, as Kamal does; the holder file says who and since when.
import { EXIT } from '../limits.js';
import { sh, type RemoteCommand } from './command.js';

/**
 * Exit 0 = taken; exit EXIT.lockHeld = held by someone else, whose holder line is printed; any
 * other failure (permissions, a full or read-only disk) exits 1 with mkdir's own message. The
 * environment's directory is made first: a first deploy to an environment nobody set up.
 */
export const takeLock = (lockDir: string, holder: string): RemoteCommand =>
  sh(
    'lock.take',
    `mkdir -p "$(dirname "$1")" || exit 1; if err=$(mkdir "$1" 2>&1); then printf "%s\\n" "$2" > "$1/holder"; elif [ -d "$1" ]; then cat "$1/holder" 2>/dev/null || echo "someone (no holder file yet)"; exit ${EXIT.lockHeld}; else echo "$err" >&2; exit 1; fi`,
    lockDir,
    holder,
  );

/** Removes the lock only if it is still ours (same holder line, which carries a random token). */
export const releaseLock = (lockDir: string, holder: string): RemoteCommand =>
  sh(
    'lock.release',
    '[ "$(cat "$1/holder" 2>/dev/null)" = "$2" ] && rm -rf "$1"; exit 0',
    lockDir,
    holder,
  );

/** Breaks whatever lock there is; prints the holder it removed, or nothing. */
export const breakLock = (lockDir: string): RemoteCommand =>
  sh(
    'lock.break',
    '[ -d "$1" ] || exit 0; cat "$1/holder" 2>/dev/null || echo "unknown holder"; rm -rf "$1"',
    lockDir,
  );

/** Prints the holder line, or nothing when the environment is not locked. */
export const showLock = (lockDir: string): RemoteCommand =>
  sh(
    'lock.show',
    '[ -d "$1" ] || exit 0; cat "$1/holder" 2>/dev/null || echo "someone (no holder file yet)"',
    lockDir,
  );
