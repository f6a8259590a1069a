#!/usr/bin/env -S npx tsx
// Entry point of `npm run deploy -- <command>`: loads .env (the environment wins), runs the typed
// deploy tool in src/deploy and exits with its code. Run with tsx (the package script does).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import dotenv from 'dotenv';
import { main } from '../src/deploy/cli.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
dotenv.config({ path: process.env.DEPLOY_ENV_FILE ?? path.join(process.cwd(), '.env'), quiet: true });

process.exitCode = await main(process.argv.slice(2), { env: process.env, repoRoot, signals: process });
