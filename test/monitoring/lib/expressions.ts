// Every PromQL expression the project ships, with where it comes from, so tests can parse each
// one with promtool and run each dashboard query against a real Prometheus.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from '../../helpers/real-tools.js';

export const prometheusDir = path.join(repoRoot, 'prometheus');
export const rulesDir = path.join(prometheusDir, 'rules');
export const ruleTestsDir = path.join(prometheusDir, 'tests');
export const alertmanagerDir = path.join(repoRoot, 'alertmanager');
export const dashboardsDir = path.join(repoRoot, 'grafana', 'dashboards');
export const composeFile = path.join(repoRoot, 'docker-compose.monitoring.yml');

export type Rule = {
  file: string;
  group: string;
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
};

export type DashboardQuery = { dashboard: string; panel: string; expr: string };

export type Dashboard = {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; query?: unknown }[] };
  annotations: { list: { name: string; expr?: string; datasource?: { uid?: string } }[] };
};
export type Panel = {
  id: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: { expr: string; refId: string; datasource?: { uid?: string } }[];
};

export function ruleFiles(): string[] {
  return readdirSync(rulesDir)
    .filter((f) => f.endsWith('.yml'))
    .sort()
    .map((f) => path.join(rulesDir, f));
}

export function ruleTestFiles(): string[] {
  return readdirSync(ruleTestsDir)
    .filter((f) => f.endsWith('.test.yml'))
    .sort()
    .map((f) => path.join(ruleTestsDir, f));
}

export function loadRules(): Rule[] {
  return ruleFiles().flatMap((file) => {
    const doc = parse(readFileSync(file, 'utf8')) as {
      groups: { name: string; rules: Omit<Rule, 'file' | 'group'>[] }[];
    };
    return doc.groups.flatMap((g) =>
      g.rules.map((r) => ({ ...r, file: path.basename(file), group: g.name })),
    );
  });
}

export function loadDashboards(): Dashboard[] {
  return readdirSync(dashboardsDir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(path.join(dashboardsDir, f), 'utf8')) as Dashboard);
}

export function dashboardQueries(dashboards = loadDashboards()): DashboardQuery[] {
  return dashboards.flatMap((d) => [
    ...d.panels.flatMap((p) =>
      (p.targets ?? []).map((t) => ({ dashboard: d.uid, panel: p.title, expr: t.expr })),
    ),
    ...d.annotations.list
      .filter((a) => a.expr !== undefined)
      .map((a) => ({ dashboard: d.uid, panel: `annotation ${a.name}`, expr: a.expr as string })),
  ]);
}

/**
 * Grafana's variables are not PromQL; replace them with what Grafana would send (`env` = the
 * regex for the chosen environments, `$__rate_interval` = a range that spans several scrapes).
 */
export function toPromQL(expr: string, vars: { env: string; rateInterval: string }): string {
  return expr
    .replaceAll('$__rate_interval', vars.rateInterval)
    .replaceAll('$__interval', vars.rateInterval)
    .replaceAll('$env', vars.env);
}

/** Metric names an expression reads (identifiers that are not functions, keywords or labels). */
export function metricNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const withoutMatchers = withoutStrings.replace(/\{[^}]*\}/g, '{}');
  const withoutGrouping = withoutMatchers
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\boffset\s+-?\w+/g, '')
    .replace(/(^|[^A-Za-z0-9_:])\d[\w.]*/g, '$1');
  const keywords = new Set(['and', 'or', 'unless', 'offset', 'bool', 'inf', 'nan']);
  const names = new Set<string>();
  for (const m of withoutGrouping.matchAll(
    /[A-Za-z_:][A-Za-z0-9_:]*(?=\s*(\(|\{|\[|\)|\s|$|[-+*/<>=!,]))/g,
  )) {
    const name = m[0];
    const next = withoutGrouping.slice((m.index ?? 0) + name.length).trimStart();
    if (next.startsWith('(') || keywords.has(name.toLowerCase()) || /^\d/.test(name)) continue;
    names.add(name);
  }
  return [...names].sort();
}
