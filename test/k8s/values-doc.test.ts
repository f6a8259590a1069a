// The chart's values table is generated from values.yaml; the README must carry the current one.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  TABLE_END,
  TABLE_START,
  documentValues,
  valuesTable,
  withValuesTable,
} from '../../scripts/chart-values-table.js';
import { repoRoot } from '../helpers/real-tools.js';

const chart = path.join(repoRoot, 'charts', 'berth');
const valuesYaml = readFileSync(path.join(chart, 'values.yaml'), 'utf8');
const readme = readFileSync(path.join(chart, 'README.md'), 'utf8');

describe('values documentation', () => {
  it('the README table is the one values.yaml generates (npx tsx scripts/chart-values-table.ts --write)', () => {
    const start = readme.indexOf(TABLE_START) + TABLE_START.length;
    const current = readme.slice(start, readme.indexOf(TABLE_END)).trim();
    expect(current).toBe(valuesTable(valuesYaml));
  });

  it('documents every value: each top-level key is covered by a row', () => {
    const keys = Object.keys(parse(valuesYaml) as object);
    const rows = documentValues(valuesYaml).map((d) => d.key);
    for (const key of keys)
      expect(
        rows.some((r) => r === key || r.startsWith(`${key}.`)),
        key,
      ).toBe(true);
    expect(rows.length).toBeGreaterThan(50);
  });

  it('every documented key exists in values.schema.json', () => {
    const schema = JSON.parse(readFileSync(path.join(chart, 'values.schema.json'), 'utf8')) as {
      properties: Record<string, unknown>;
    };
    for (const { key } of documentValues(valuesYaml)) {
      let node: { properties?: Record<string, unknown> } | undefined = schema;
      for (const part of key.split('.')) node = node?.properties?.[part] as typeof node;
      expect(node, `values.schema.json has ${key}`).toBeDefined();
    }
  });

  it('fails on an undocumented value, naming it', () => {
    expect(() => documentValues('# -- documented\na: 1\nb:\n  c: 2\n')).toThrow(
      'values.yaml: b.c has no "# --" comment',
    );
  });

  it('reads multi-line comments, and documented objects as one row', () => {
    const docs = documentValues(
      'group:\n  # -- first line\n  #   second line\n  leaf: x\n# -- whole object\nobj:\n  a: 1\n',
    );
    expect(docs).toEqual([
      { key: 'group.leaf', type: 'string', default: 'x', description: 'first line second line' },
      { key: 'obj', type: 'object', default: { a: 1 }, description: 'whole object' },
    ]);
  });

  it('replaces only the table between the markers', () => {
    const doc = `intro\n${TABLE_START}\nold\n${TABLE_END}\noutro\n`;
    expect(withValuesTable(doc, 'new')).toBe(`intro\n${TABLE_START}\nnew\n${TABLE_END}\noutro\n`);
    expect(() => withValuesTable('no markers', 'new')).toThrow(/values-table:start/);
  });
});
