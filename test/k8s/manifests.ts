// Rendering and schema validation shared by the test/k8s files: `helm template` (the real
// binary scripts/test-env/k8s-tools.sh installs) and the @kubernetes-models validators, which
// carry the OpenAPI schemas of the core kinds and of the Argo CD, Argo Rollouts and
// Prometheus Operator CRDs.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { loadTestEnv, onPath, repoRoot } from '../helpers/real-tools.js';

export const chartDir = path.join(repoRoot, 'charts', 'berth');

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
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
    const stdout = execFileSync(helmBin(), args, { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { ok: true, stdout, stderr: '' };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return { ok: false, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

export function parseManifests(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]?.message}`);
      return doc.toJS() as K8sObject | null;
    })
    .filter((obj): obj is K8sObject => obj !== null);
}

/** `helm template` of the chart with the given values files and --set flags. Throws with helm's stderr. */
export function render(opts: { valuesFiles?: string[]; set?: string[]; namespace?: string } = {}): K8sObject[] {
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

async function modelFor(apiVersion: string, kind: string): Promise<ModelClass> {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const candidates = PACKAGES[group!]?.map((pkg) => `${pkg}/${apiVersion}/${kind}`) ?? [
    group === '' ? `kubernetes-models/${version}/${kind}` : `kubernetes-models/${apiVersion}/${kind}`,
  ];
  for (const specifier of candidates) {
    try {
      const mod = (await import(specifier)) as Record<string, ModelClass>;
      if (mod[kind]) return mod[kind];
    } catch {
      // not in this package: try the next one
    }
  }
  throw new Error(`no schema for ${apiVersion} ${kind} in ${candidates.join(', ')}`);
}

/** Validates one object against its schema; returns the problems (empty when valid). */
export async function schemaErrors(obj: K8sObject): Promise<string[]> {
  const Model = await modelFor(obj.apiVersion, obj.kind);
  try {
    new Model(obj).validate();
    return [];
  } catch (error) {
    return [`${obj.kind}/${obj.metadata.name}: ${error instanceof Error ? error.message : String(error)}`];
  }
}

export function only(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

export function one(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0]!;
}
