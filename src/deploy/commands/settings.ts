// The app's settings on the VM. app.env is what the live version runs with; the next container is
// created from a staged copy (settings/staged), which becomes app.env, and that version's snapshot
// (settings/<digest12>.env), only once it serves. Every file is private from its first byte
// (umask 077) and replaced by rename; values travel on stdin, never as arguments.
import { sh, type RemoteCommand } from './command.js';

/** Heads the lines a deploy writes into app.env, so the next deploy can tell them apart. */
export const CI_MARKER = '# from CI (DEPLOY_APP_SETTINGS): rewritten by every deploy';

/** What CI adds to app.env: the marker, then KEY=VALUE per setting, the value verbatim. */
export function ciSettingsText(values: Record<string, string>): string {
  const names = Object.keys(values);
  if (names.length === 0) return '';
  return `${[CI_MARKER, ...names.map((n) => `${n}=${values[n]}`)].join('\n')}\n`;
}

/**
 * Lines of app.env that CI owns: its keys (KEY=... or a bare KEY, leading blanks as docker
 * allows). Names are validated in config.ts ([A-Za-z0-9_]), so they are safe in the pattern.
 */
export const ciKeysPattern = (names: string[]): string => `^[[:space:]]*(${names.join('|')})(=|$)`;

const PRIVATE_DIR = 'umask 077; d=$(dirname "$out"); mkdir -p "$d" && chmod 700 "$d" || exit 1';

/**
 * Stages a deploy's settings: app.env without CI's old lines (the marker and its keys), then CI's
 * lines from stdin. Hand-kept keys stay as they are. With no CI settings: app.env as it is.
 */
export function stageDeploySettings(
  appEnv: string,
  staged: string,
  values: Record<string, string>,
): RemoteCommand {
  const names = Object.keys(values);
  const script = [
    'src=$1 out=$2 marker=$3 keys=$4',
    PRIVATE_DIR,
    '[ -r "$src" ] || { echo "cannot read $src" >&2; exit 1; }',
    'tmp="$out.tmp.$$"',
    // grep ends every line it prints with a newline, so CI's lines never join the last one.
    'if [ -n "$keys" ]; then { grep -v -x -F -e "$marker" "$src" | grep -v -E -e "$keys"; cat; } > "$tmp"',
    'else cat "$src" > "$tmp"; fi',
    'rc=$?; [ $rc -eq 0 ] && chmod 600 "$tmp" && mv -f "$tmp" "$out" || { rm -f "$tmp"; exit 1; }',
  ].join('\n');
  return {
    ...sh(
      'settings.stage',
      script,
      appEnv,
      staged,
      CI_MARKER,
      names.length > 0 ? ciKeysPattern(names) : '',
    ),
    stdin: ciSettingsText(values),
  };
}

/**
 * Stages a rollback's settings: the snapshot its version was last started with, else (a version
 * from before snapshots) app.env as it is. Prints `snapshot` or `current`.
 */
export const stageSnapshot = (snapshot: string, appEnv: string, staged: string): RemoteCommand =>
  sh(
    'settings.stageSnapshot',
    [
      'snap=$1 src=$2 out=$3',
      PRIVATE_DIR,
      'if [ -f "$snap" ]; then from=$snap what=snapshot; else from=$src what=current; fi',
      'tmp="$out.tmp.$$"',
      'cp "$from" "$tmp" && chmod 600 "$tmp" && mv -f "$tmp" "$out" || { rm -f "$tmp"; exit 1; }',
      'echo "$what"',
    ].join('\n'),
    snapshot,
    appEnv,
    staged,
  );

/**
 * Once the new container serves: its staged settings become its version's snapshot and app.env.
 * The app.env they replace, when different, stays as app.env.previous (hand edits not yet deployed).
 */
export const keepSettings = (staged: string, snapshot: string, appEnv: string): RemoteCommand =>
  sh(
    'settings.keep',
    [
      'umask 077; staged=$1 snap=$2 live=$3',
      'cp "$staged" "$snap.tmp.$$" && mv -f "$snap.tmp.$$" "$snap" || exit 1',
      'if [ -f "$live" ] && ! cmp -s "$live" "$staged"; then cp -p "$live" "$live.previous.tmp.$$" && mv -f "$live.previous.tmp.$$" "$live.previous" || exit 1; fi',
      'mv -f "$staged" "$live"',
    ].join('\n'),
    staged,
    snapshot,
    appEnv,
  );

/** Removes every snapshot but those of `keep` (digest12s); prints the names it removed. */
export const pruneSettings = (settingsDir: string, keep: string[]): RemoteCommand =>
  sh(
    'settings.prune',
    [
      'cd "$1" 2>/dev/null || exit 0; shift',
      'for f in *.env; do [ -f "$f" ] || continue; k=; for t; do [ "$f" = "$t.env" ] && k=1; done',
      '[ -n "$k" ] || { rm -f -- "$f" && echo "$f"; }; done; exit 0',
    ].join('\n'),
    settingsDir,
    ...keep,
  );
