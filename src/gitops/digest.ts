// GitOps mode of the deploy: the image a pipeline pushed is pinned by digest in the values
// file of one environment, and Argo CD rolls it out from git. Pure text-in, text-out
// functions: the workflow step and the tests share them, only cli.ts touches files.
import { isMap, parseDocument } from 'yaml';
import {
  environments,
  environmentInfo,
  envByAnyName,
  type EnvName,
} from '../deploy/environments.js';

import { DIGEST_PATTERN } from '../deploy/digest.js';

export { DIGEST_PATTERN };

export class GitopsError extends Error {
  override name = 'GitopsError';
}

/** Accepts an environment, its short name (prod, dev) or its branch (main, staging, testing). */
export function environmentOf(name: string): EnvName {
  const env = envByAnyName(name);
  if (env === undefined) {
    throw new GitopsError(
      `unknown environment ${JSON.stringify(name)}: use ${environments.slice(0, -1).join(', ')} or ${environments.at(-1)}`,
    );
  }
  return env;
}

/** Path of the environment's values file, relative to the repository root. */
export function valuesFileFor(name: string): string {
  return environmentInfo[environmentOf(name)].valuesFile;
}

export function assertDigest(digest: string): string {
  if (!DIGEST_PATTERN.test(digest)) {
    throw new GitopsError(
      `not an image digest: ${JSON.stringify(digest)} (expected sha256: and 64 hex digits)`,
    );
  }
  return digest;
}

function parseValues(text: string, what: string) {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    throw new GitopsError(
      `${what} is not valid YAML: ${doc.errors[0]?.message ?? 'unknown error'}`,
    );
  }
  if (doc.contents !== null && !isMap(doc.contents)) {
    throw new GitopsError(`${what} must be a YAML mapping at the top level`);
  }
  return doc;
}

/** The pinned digest, or '' when the file pins none. */
export function readImageDigest(valuesYaml: string, what = 'values file'): string {
  const value: unknown = parseValues(valuesYaml, what).getIn(['image', 'digest']);
  if (value === undefined || value === null || value === '') return '';
  if (typeof value !== 'string') throw new GitopsError(`${what}: image.digest must be a string`);
  return assertDigest(value);
}

/**
 * Returns the values file with image.digest set, everything else (comments, order, other
 * keys) untouched. Throws before changing anything when the digest or the file is bad.
 */
export function writeImageDigest(valuesYaml: string, digest: string, what = 'values file'): string {
  assertDigest(digest);
  const doc = parseValues(valuesYaml, what);
  doc.setIn(['image', 'digest'], digest);
  return doc.toString();
}

/**
 * Promotion copies what the source environment runs, it never rebuilds: the target file gets
 * exactly the source file's digest.
 */
export function promoteImageDigest(
  fromYaml: string,
  toYaml: string,
  from = 'source',
  to = 'target',
): { digest: string; yaml: string } {
  const digest = readImageDigest(fromYaml, from);
  if (digest === '') throw new GitopsError(`${from} pins no image digest: nothing to promote`);
  return { digest, yaml: writeImageDigest(toYaml, digest, to) };
}
