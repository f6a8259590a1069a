// The values table in charts/berth/README.md, generated from the `# --` comments in
// charts/berth/values.yaml (the helm-docs convention, without needing helm-docs).
//   npx tsx scripts/chart-values-table.ts           print the table
//   npx tsx scripts/chart-values-table.ts --write   rewrite it in the chart README
// test/k8s/values-doc.test.ts fails when the README and values.yaml disagree.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const TABLE_START = '<!-- values-table:start -->';
export const TABLE_END = '<!-- values-table:end -->';

export type ValueDoc = { key: string; type: string; default: unknown; description: string };

function typeOf(value: unknown): string {
  if (Array.isArray(value)) return 'list';
  if (value === null) return 'null';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float';
  if (typeof value === 'object') return 'object';
  return typeof value;
}

function lookup(values: unknown, keyPath: string[]): unknown {
  return keyPath.reduce<unknown>((node, key) => (node as Record<string, unknown>)[key], values);
}

/**
 * Walks values.yaml line by line: a `# -- text` comment documents the key right below it (and
 * that key's children). An undocumented key is fine only when it is a mapping whose own keys
 * are documented; anything else throws, naming the key.
 */
export function documentValues(valuesYaml: string): ValueDoc[] {
  const values: unknown = parse(valuesYaml);
  const docs: ValueDoc[] = [];
  const stack: { indent: number; key: string; documented: boolean }[] = [];
  let pending: string[] | undefined;

  for (const line of valuesYaml.split('\n')) {
    const comment = /^\s*# -- (.*)$/.exec(line);
    if (comment) {
      pending = [comment[1]!.trim()];
      continue;
    }
    const keyLine = /^(\s*)([A-Za-z0-9_]+):(.*)$/.exec(line);
    if (!keyLine) {
      if (pending && /^\s*#\s{2,}\S/.test(line)) pending.push(line.replace(/^\s*#\s+/, '').trim());
      else if (!/^\s*#/.test(line)) pending = pending && line.trim() === '' ? undefined : pending;
      continue;
    }
    const indent = keyLine[1]!.length;
    while (stack.length > 0 && stack[stack.length - 1]!.indent >= indent) stack.pop();
    const keyPath = [...stack.map((s) => s.key), keyLine[2]!];
    const insideDocumented = stack.some((s) => s.documented);
    const value = lookup(values, keyPath);
    if (pending && !insideDocumented) {
      docs.push({
        key: keyPath.join('.'),
        type: typeOf(value),
        default: value,
        description: pending.join(' '),
      });
    } else if (!insideDocumented && typeOf(value) !== 'object') {
      throw new Error(`values.yaml: ${keyPath.join('.')} has no "# --" comment`);
    }
    stack.push({ indent, key: keyLine[2]!, documented: pending !== undefined || insideDocumented });
    pending = undefined;
  }
  return docs;
}

const cell = (text: string) => text.replace(/\|/g, '\\|');

export function valuesTable(valuesYaml: string): string {
  const rows = documentValues(valuesYaml).map(
    (d) =>
      `| \`${d.key}\` | ${d.type} | \`${cell(JSON.stringify(d.default))}\` | ${cell(d.description)} |`,
  );
  return ['| Key | Type | Default | Description |', '| --- | --- | --- | --- |', ...rows].join(
    '\n',
  );
}

/** The README text with the table between the markers replaced. */
export function withValuesTable(readme: string, table: string): string {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  if (start < 0 || end < start)
    throw new Error(`README has no ${TABLE_START} ... ${TABLE_END} block`);
  return `${readme.slice(0, start + TABLE_START.length)}\n${table}\n${readme.slice(end)}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const chart = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'charts', 'berth');
  const table = valuesTable(readFileSync(path.join(chart, 'values.yaml'), 'utf8'));
  if (process.argv.includes('--write')) {
    const readmePath = path.join(chart, 'README.md');
    writeFileSync(readmePath, withValuesTable(readFileSync(readmePath, 'utf8'), table));
    console.log(`wrote the values table into ${path.relative(process.cwd(), readmePath)}`);
  } else {
    console.log(table);
  }
}
