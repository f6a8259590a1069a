#!/usr/bin/env node
// Entry point of `npm run deploy -- <command>`: loads .env (the environment wins), names who
// deploys (zx asks git), runs the typed deploy tool in src/deploy and exits with its code.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import dotenv from 'dotenv';

const repoRoot = path.resolve(import.meta.dirname, '..');

// The compiled tool (`npm run build`: dist/) when it is newer than every source file it is built
// from, as make decides; otherwise the sources through tsx. Loading tsx and compiling on the fly
// cost about 1 s per run on a 2-core machine, 3 s while it serves load (bench:deploy): the CI
// workflows build first.
const compiled = path.join(repoRoot, 'dist/deploy/cli.js');
const sources = ['src/deploy', 'src/edge'].map((dir) => path.join(repoRoot, dir));
const { main } = isNewer(compiled, sources)
  ? await import(compiled)
  : await (async () => {
      const { register } = await import('tsx/esm/api');
      register();
      return import('../src/deploy/cli.ts');
    })();
dotenv.config({
  path: process.env.DEPLOY_ENV_FILE ?? path.join(process.cwd(), '.env'),
  quiet: true,
});

// The deploy history records who deployed. CI names itself (GITHUB_ACTOR); from a laptop the git
// identity says more than the login name, as Kamal's audit log does.
// zx is loaded only then: it takes 0.15 s to load, which CI need not pay.
if (!process.env.DEPLOY_WHO && !process.env.GITHUB_ACTOR) {
  const { $ } = await import('zx');
  const name = (await $({ nothrow: true, quiet: true })`git config user.name`).stdout.trim();
  if (name) process.env.DEPLOY_WHO = name;
}

process.exitCode = await main(process.argv.slice(2), {
  env: process.env,
  repoRoot,
  signals: process,
});

function mtime(file) {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

function isNewer(file, dirs) {
  const built = mtime(file);
  if (built === undefined) return false;
  const newest = (dir) =>
    Math.max(
      ...readdirSync(dir, { withFileTypes: true }).map((e) => {
        const p = path.join(dir, e.name);
        return e.isDirectory() ? newest(p) : (mtime(p) ?? Infinity);
      }),
    );
  return dirs.every((dir) => newest(dir) < built);
}
