// Tests that drive real parts (Docker Engine, sshd, Prometheus, ...) call these at module level.
// In CI a missing part is a failure, never a silent skip; on a developer's machine the test
// skips with one line saying how to get the part.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

export const repoRoot = path.resolve(import.meta.dirname, '..', '..');
export const testEnvDir = path.join(repoRoot, '.test-env');

export function onPath(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v "$1"`, 'sh', command], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * True when `check()` passes. Otherwise: throws under CI=true, and outside CI prints a one-line
 * hint and returns false so the caller can `describe.skipIf(!ok)`.
 */
export function requirePart(what: string, check: () => boolean, howToInstall: string): boolean {
  if (check()) return true;
  const message = `${what} is not available: ${howToInstall}`;
  if (process.env.CI === 'true') throw new Error(`CI=true and ${message}`);
  console.warn(`skipping: ${message}`);
  return false;
}

export function requireTool(command: string, howToInstall: string): boolean {
  return requirePart(`'${command}'`, () => onPath(command), howToInstall);
}

/**
 * Reads the KEY=VALUE files that scripts/test-env/*.sh write into .test-env/ (for example
 * DOCKER_HOST for the engine socket), so tests use exactly what the set-up scripts started.
 */
export function loadTestEnv(): Record<string, string> {
  const vars: Record<string, string> = {};
  if (!existsSync(testEnvDir)) return vars;
  for (const file of readdirSync(testEnvDir)
    .filter((f) => f.endsWith('.env'))
    .sort()) {
    for (const line of readFileSync(path.join(testEnvDir, file), 'utf8').split('\n')) {
      const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
      if (match?.[1] !== undefined) vars[match[1]] = match[2] ?? '';
    }
  }
  return vars;
}
