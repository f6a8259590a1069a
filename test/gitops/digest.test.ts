// src/gitops/digest.ts: pinning a digest in a values file must change that one value and
// nothing else (comments included), and must refuse anything that is not a digest.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  GitopsError,
  environmentOf,
  promoteImageDigest,
  readImageDigest,
  valuesFileFor,
  writeImageDigest,
} from '../../src/gitops/digest.js';
import { repoRoot } from '../helpers/real-tools.js';

const D1 = `sha256:${'a1'.repeat(32)}`;
const D2 = `sha256:${'b2'.repeat(32)}`;
const staging = readFileSync(path.join(repoRoot, 'charts/berth/values-staging.yaml'), 'utf8');

describe('environments and their values files', () => {
  it.each([
    ['production', 'charts/berth/values-prod.yaml'],
    ['main', 'charts/berth/values-prod.yaml'],
    ['prod', 'charts/berth/values-prod.yaml'],
    ['staging', 'charts/berth/values-staging.yaml'],
    ['testing', 'charts/berth/values-dev.yaml'],
    ['dev', 'charts/berth/values-dev.yaml'],
  ])('%s -> %s', (name, file) => {
    expect(valuesFileFor(name)).toBe(file);
    const values = parse(readFileSync(path.join(repoRoot, file), 'utf8')) as {
      environment: string;
    };
    expect(values.environment).toBe(environmentOf(name));
  });

  it('rejects an unknown environment by name', () => {
    expect(() => valuesFileFor('qa')).toThrow(
      new GitopsError('unknown environment "qa": use production, staging or testing'),
    );
  });
});

describe('writeImageDigest', () => {
  it('changes image.digest and nothing else, comments kept', () => {
    const out = writeImageDigest(staging, D1);
    const before = staging.split('\n');
    const after = out.split('\n');
    expect(after).toHaveLength(before.length);
    const changed = after.flatMap((line, i) => (line === before[i] ? [] : [[before[i], line]]));
    expect(changed).toEqual([['  digest: ""', `  digest: "${D1}"`]]);
    expect(readImageDigest(out)).toBe(D1);
  });

  it('replaces an earlier digest and adds image.digest where there was none', () => {
    expect(readImageDigest(writeImageDigest(writeImageDigest(staging, D1), D2))).toBe(D2);
    const bare = 'environment: testing\nreplicaCount: 1\n';
    const out = writeImageDigest(bare, D1);
    expect(parse(out)).toEqual({ environment: 'testing', replicaCount: 1, image: { digest: D1 } });
  });

  it.each([
    'sha256:abc',
    'latest',
    `sha512:${'a'.repeat(128)}`,
    `SHA256:${'A'.repeat(64)}`,
    `docker.io/acme/berth@${D1}`,
    '',
  ])('refuses %j and leaves the text alone', (bad) => {
    expect(() => writeImageDigest(staging, bad)).toThrow(GitopsError);
  });

  it('refuses a file that is not a YAML mapping', () => {
    expect(() => writeImageDigest('image: [unclosed', D1)).toThrow(/not valid YAML/);
    expect(() => writeImageDigest('- a\n- b\n', D1)).toThrow(/mapping/);
  });
});

describe('readImageDigest and promotion', () => {
  it('reads nothing from an unpinned file and refuses a malformed pin', () => {
    expect(readImageDigest(staging)).toBe('');
    expect(readImageDigest('environment: staging\n')).toBe('');
    expect(() => readImageDigest('image:\n  digest: latest\n')).toThrow(/not an image digest/);
    expect(() => readImageDigest('image:\n  digest: 12\n')).toThrow(/must be a string/);
  });

  it('promotion copies the source digest exactly', () => {
    const prod = readFileSync(path.join(repoRoot, 'charts/berth/values-prod.yaml'), 'utf8');
    const result = promoteImageDigest(writeImageDigest(staging, D1), prod);
    expect(result.digest).toBe(D1);
    expect(readImageDigest(result.yaml)).toBe(D1);
    expect(parse(result.yaml)).toEqual({ ...(parse(prod) as object), image: { digest: D1 } });
  });

  it('promotion refuses a source that pins nothing', () => {
    expect(() => promoteImageDigest(staging, staging, 'values-staging.yaml')).toThrow(
      'values-staging.yaml pins no image digest: nothing to promote',
    );
  });
});
