#!/usr/bin/env node
// Entry point of `npm run deploy -- <command>`: loads .env (the environment wins), names who
// deploys (zx asks git), runs the deploy tool (src/deploy, bundled by scripts/deploy-bundle.mjs)
// and exits with its code.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import dotenv from 'dotenv';
import { deployBundle, dropBundle } from './deploy-bundle.mjs';

const repoRoot = path.resolve(import.meta.dirname, '..');
dotenv.config({
  path: process.env.DEPLOY_ENV_FILE ?? path.join(process.cwd(), '.env'),
  quiet: true,
});

// The deploy history records who deployed. CI names itself (GITHUB_ACTOR); from a laptop the git
// identity says more than the login name, as Kamal's audit log does. Asked while the tool loads
// (zx alone takes 0.15 s to load), and not at all in CI.
const gitName =
  process.env.DEPLOY_WHO || process.env.GITHUB_ACTOR
    ? undefined
    : import('zx').then(async ({ $ }) =>
        (await $({ nothrow: true, quiet: true })`git config user.name`).stdout.trim(),
      );

let tool, runsFrom;
let bundle;
try {
  bundle = await deployBundle(repoRoot);
  tool = await import(pathToFileURL(bundle.file).href);
  runsFrom = `${path.relative(repoRoot, bundle.file)}${bundle.madeMs ? ` (bundled now from src/ in ${Math.round(bundle.madeMs)} ms)` : ''}`;
} catch (err) {
  // No bundle (no esbuild, a read-only checkout, one that would not load): the same sources,
  // loaded more slowly.
  if (bundle) dropBundle(bundle.file);
  const why = String(err?.message ?? err).split('\n')[0];
  console.error(`deploy: running src/ through tsx, slower to start: cannot bundle it (${why})`);
  const { register } = await import('tsx/esm/api');
  register();
  tool = await import('../src/deploy/cli.ts');
  runsFrom = 'src/deploy through tsx';
}

const name = await gitName;
if (name) process.env.DEPLOY_WHO = name;

process.exitCode = await tool.main(process.argv.slice(2), {
  env: process.env,
  repoRoot,
  signals: process,
  runsFrom,
});
