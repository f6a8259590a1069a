// Finds the environment variables the project reads, by kind of file. Pure functions over text,
// so each pattern is tested on its own; the file walk is the only side effect.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

export interface EnvRead {
  name: string;
  file: string;
  line: number;
}

const NAME = '[A-Z][A-Z0-9_]*';

function matchAll(text: string, pattern: RegExp): { name: string; line: number }[] {
  const found: { name: string; line: number }[] = [];
  for (const m of text.matchAll(pattern)) {
    const name = m.groups?.name;
    if (name) found.push({ name, line: text.slice(0, m.index).split('\n').length });
  }
  return found;
}

/**
 * TypeScript/JavaScript: process.env.X, process.env['X'], env.X / env['X'] (an env parameter),
 * `const { X } = process.env`, and the ALL_CAPS keys of a schema in a file that validates the
 * environment (src/service/config.ts reads through zod: `PORT: integer(...)`).
 */
export function scanCode(text: string): { name: string; line: number }[] {
  const found = [
    ...matchAll(text, new RegExp(`\\b(?:process\\.)?env\\??\\.(?<name>${NAME})\\b`, 'g')),
    ...matchAll(
      text,
      new RegExp(`\\b(?:process\\.)?env\\??\\.?\\[\\s*['"\`](?<name>${NAME})['"\`]\\s*\\]`, 'g'),
    ),
  ];
  for (const m of text.matchAll(/const\s*\{([^}]*)\}\s*=\s*process\.env/g)) {
    const line = text.slice(0, m.index).split('\n').length;
    for (const part of (m[1] ?? '').split(',')) {
      const name = /^\s*([A-Z][A-Z0-9_]*)/.exec(part)?.[1];
      if (name) found.push({ name, line });
    }
  }
  // A file that takes the environment (process.env, or an `env: Record<string, ...>` parameter
  // as src/deploy/config.ts does) and validates it with a schema keyed by variable name.
  if (/process\.env|NodeJS\.ProcessEnv|\benv\s*:\s*Record<string/.test(text)) {
    found.push(...matchAll(text, new RegExp(`^\\s*(?<name>${NAME}):\\s*(?:z\\b|[a-z]+\\()`, 'gm')));
  }
  return found;
}

/** Shell: variables taken from the environment with a default or a demand, ${X:-d} ${X-d} ${X:?msg}. */
export function scanShell(text: string): { name: string; line: number }[] {
  return matchAll(text, new RegExp(`\\$\\{(?<name>${NAME}):?[-?]`, 'g'));
}

/** Compose and config files: every ${X...} (compose's $$ escapes a literal $) and Grafana's $__env{X}. */
export function scanConfig(text: string): { name: string; line: number }[] {
  const withoutEscapes = text.replace(/\$\$/g, '');
  const withoutComments = withoutEscapes
    .split('\n')
    .map((l) => (/^\s*#/.test(l) ? '' : l))
    .join('\n');
  return [
    ...matchAll(withoutComments, new RegExp(`\\$\\{(?<name>${NAME})(?:[:?}-])`, 'g')),
    ...matchAll(withoutComments, new RegExp(`\\$__env\\{(?<name>${NAME})\\}`, 'g')),
  ];
}

/** Variables a .env.example lists, set or commented out (`# APP_VERSION=...`). */
export function listedIn(envExample: string): Set<string> {
  return new Set(
    matchAll(envExample, new RegExp(`^#?\\s*(?<name>${NAME})=`, 'gm')).map((m) => m.name),
  );
}

/** Variables set (not commented out) more than once. */
export function duplicatesIn(envExample: string): string[] {
  const names = matchAll(envExample, new RegExp(`^(?<name>${NAME})=`, 'gm')).map((m) => m.name);
  return [...new Set(names.filter((n, i) => names.indexOf(n) !== i))];
}

function walk(dir: string, keep: (file: string) => boolean): string[] {
  let out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out = out.concat(walk(full, keep));
    else if (keep(full)) out.push(full);
  }
  return out;
}

export interface ScanScope {
  code: string[];
  shell: string[];
  config: string[];
}

/**
 * What the product reads, relative to the repository root. Left out on purpose: test/ and
 * scripts/test-env/ (the test harness's own knobs), and alertmanager/entrypoint.sh (it runs in
 * the container and gets only what the monitoring compose file passes, which is scanned).
 */
export function productFiles(root: string): ScanScope {
  const rel = (f: string) => path.relative(root, f);
  const notHarness = (f: string) => !rel(f).startsWith('scripts/test-env/');
  return {
    code: [
      ...walk(path.join(root, 'src'), (f) => /\.(ts|mts|js|mjs)$/.test(f)),
      ...walk(path.join(root, 'scripts'), (f) => /\.(ts|mts|js|mjs)$/.test(f) && notHarness(f)),
    ].map(rel),
    shell: [
      path.join(root, 'init_setup.sh'),
      ...walk(path.join(root, 'scripts'), (f) => f.endsWith('.sh') && notHarness(f)),
    ]
      .filter((f) => statSync(f, { throwIfNoEntry: false }))
      .map(rel),
    config: [
      ...readdirSync(root)
        .filter((f) => /^docker-compose.*\.ya?ml$/.test(f))
        .map((f) => path.join(root, f)),
      ...walk(
        path.join(root, 'prometheus'),
        (f) => /\.ya?ml$/.test(f) && !f.includes(`${path.sep}tests${path.sep}`),
      ),
      ...walk(path.join(root, 'alertmanager'), (f) => /\.ya?ml$/.test(f)),
      ...walk(path.join(root, 'grafana'), (f) => /\.ya?ml$/.test(f)),
    ].map(rel),
  };
}

export function scanProduct(root: string): EnvRead[] {
  const scope = productFiles(root);
  const read = (f: string) => readFileSync(path.join(root, f), 'utf8');
  return [
    ...scope.code.flatMap((file) => scanCode(read(file)).map((r) => ({ ...r, file }))),
    ...scope.shell.flatMap((file) => scanShell(read(file)).map((r) => ({ ...r, file }))),
    ...scope.config.flatMap((file) => scanConfig(read(file)).map((r) => ({ ...r, file }))),
  ];
}
