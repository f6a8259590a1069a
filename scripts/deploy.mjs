#!/usr/bin/env -S node --import tsx
// Entry point of `npm run deploy -- <command>` (the package script runs it under node with tsx as
// the TypeScript loader): loads .env (the environment wins), names who deploys (zx asks git), runs
// the typed deploy tool in src/deploy and exits with its code.
import path from 'node:path';
import dotenv from 'dotenv';
import { main } from '../src/deploy/cli.ts';

const repoRoot = path.resolve(import.meta.dirname, '..');
dotenv.config({
  path: process.env.DEPLOY_ENV_FILE ?? path.join(process.cwd(), '.env'),
  quiet: true,
});

// The deploy history records who deployed. CI names itself (GITHUB_ACTOR); from a laptop the git
// identity says more than the login name, as Kamal's audit log does. zx is loaded only then: it
// takes 0.15 s to load, which CI need not pay.
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
