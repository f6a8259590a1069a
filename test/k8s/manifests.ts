// Rendering and schema validation shared by the test/k8s files: `helm template` (the real
// binary scripts/test-env/k8s-tools.sh installs) and the @kubernetes-models validators, which
// carry the OpenAPI schemas of the core kinds and of the Argo CD, Argo Rollouts and
// Prometheus Operator CRDs.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { loadTestEnv, onPath, repoRoot } from '../helpers/real-tools.js';

export const chartDir = path.join(repoRoot, 'charts', 'berth');

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
  [field: string]: unknown;
};

export function helmBin(): string {
  return loadTestEnv().HELM_BIN ?? 'helm';
}

export function helmAvailable(): boolean {
  const bin = helmBin();
  return bin.includes('/') ? onPath(bin) || existsExecutable(bin) : onPath(bin);
}

function existsExecutable(file: string): boolean {
  try {
    execFileSync(file, ['version', '--short'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export type HelmResult = { ok: boolean; stdout: string; stderr: string };

export function helm(args: string[]): HelmResult {
  try {
    const stdout = execFileSync(helmBin(), args, {
      cwd: repoRoot,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { ok: true, stdout, stderr: '' };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return { ok: false, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

export function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0)
        throw new Error(`rendered YAML does not parse: ${doc.errors[0]?.message}`);
      return doc.toJS() as K8sObject | null;
    })
    .filter((obj): obj is K8sObject => obj !== null);
}

/** `helm template` of the chart with the given values files and --set flags. Throws with helm's stderr. */
export function render(
  opts: { valuesFiles?: string[]; set?: string[]; namespace?: string } = {},
): K8sObject[] {
  const args = ['template', 'berth', chartDir, '--namespace', opts.namespace ?? 'berth-test'];
  for (const file of opts.valuesFiles ?? []) args.push('--values', path.join(chartDir, file));
  for (const s of opts.set ?? []) args.push('--set', s);
  const result = helm(args);
  if (!result.ok) throw new Error(`helm ${args.join(' ')} failed:\n${result.stderr}`);
  return parseManifests(result.stdout);
}

// apiVersion group -> the package that carries its schemas.
const PACKAGES: Record<string, string[]> = {
  'argoproj.io': ['@kubernetes-models/argo-rollouts', '@kubernetes-models/argo-cd'],
  'monitoring.coreos.com': ['@kubernetes-models/prometheus-operator'],
};

type Model = { validate(): void };
type ModelClass = new (data: unknown) => Model;

/** The module of the kind's model, e.g. kubernetes-models/apps/v1/Deployment. */
function modelModule(apiVersion: string, kind: string): string {
  const group = apiVersion.includes('/') ? apiVersion.split('/')[0]! : '';
  const candidates = (PACKAGES[group] ?? ['kubernetes-models']).map(
    (pkg) => `${pkg}/${apiVersion}/${kind}`,
  );
  const found = candidates.find((m) =>
    existsSync(path.join(repoRoot, 'node_modules', `${m}.d.ts`)),
  );
  if (!found) throw new Error(`no schema for ${apiVersion} ${kind} in ${candidates.join(', ')}`);
  return found;
}

async function modelFor(apiVersion: string, kind: string): Promise<ModelClass> {
  const mod = (await import(modelModule(apiVersion, kind))) as Record<string, ModelClass>;
  if (!mod[kind]) throw new Error(`${modelModule(apiVersion, kind)} exports no ${kind}`);
  return mod[kind];
}

/** Validates one object against its schema; returns the problems (empty when valid). */
export async function schemaErrors(obj: K8sObject): Promise<string[]> {
  const Model = await modelFor(obj.apiVersion, obj.kind);
  try {
    new Model(obj).validate();
    return [];
  } catch (error) {
    return [
      `${obj.kind}/${obj.metadata.name}: ${error instanceof Error ? error.message : String(error)}`,
    ];
  }
}

export function only(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

export function one(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.filter(
    (o) => o.kind === kind && (name === undefined || o.metadata.name === name),
  );
  if (found.length !== 1)
    throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0]!;
}

/**
 * The schemas above check types, required fields and enums, but like the API server's OpenAPI
 * they let unknown fields through, so a typo such as `redinessProbe` would pass. TypeScript's
 * excess property check on the models' interfaces catches those: every object becomes a typed
 * object literal, one per line, and tsc's errors are mapped back to the object. Returns the
 * problems (empty when every field is known).
 */
export function unknownFieldErrors(objects: K8sObject[]): string[] {
  // Inside the repository, so the models resolve from its node_modules.
  mkdirSync(path.join(repoRoot, '.test-env'), { recursive: true });
  const dir = mkdtempSync(path.join(repoRoot, '.test-env', 'k8s-fields-'));
  try {
    const modules = [...new Set(objects.map((o) => modelModule(o.apiVersion, o.kind)))];
    const imports = modules.map(
      (m, i) => `import type { I${path.basename(m)} as T${i} } from '${m}';`,
    );
    const header = imports.length;
    const lines = objects.map(
      (o, i) =>
        `export const o${i}: T${modules.indexOf(modelModule(o.apiVersion, o.kind))} = ${JSON.stringify(o)};`,
    );
    writeFileSync(path.join(dir, 'objects.ts'), [...imports, ...lines].join('\n'));
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          skipLibCheck: true,
          types: [],
        },
        files: ['objects.ts'],
      }),
    );
    const tsc = spawnSync(
      process.execPath,
      [path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir],
      { encoding: 'utf8' },
    );
    if (tsc.status === 0) return [];
    const errors = tsc.stdout.split('\n').filter((l) => l.includes('error TS'));
    if (errors.length === 0)
      throw new Error(`tsc failed without type errors:\n${tsc.stdout}${tsc.stderr}`);
    return errors.map((line) => {
      const row = Number(/\((\d+),\d+\)/.exec(line)?.[1] ?? 0) - header - 1;
      const obj = objects[row];
      return `${obj ? `${obj.kind}/${obj.metadata.name}` : 'objects.ts'}: ${line.replace(/^.*error TS\d+: /, '')}`;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
