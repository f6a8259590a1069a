// The one documented way the end-to-end test adapts the shipped monitoring configuration to
// local processes: it changes addresses (service names -> 127.0.0.1 ports, container paths ->
// temp files) and intervals (scrape, evaluation, `for:`, Alertmanager grouping), and nothing
// else. Every function is pure: parsed YAML in, a new object out, the input untouched.
// `changedPaths` lists what differs, so a unit test can prove nothing else moved.

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Obj = { [key: string]: Json };

function clone<T>(value: T): T {
  return structuredClone(value);
}

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function objAt(parent: Obj, key: string, what: string): Obj {
  const value = parent[key];
  if (!isObj(value)) throw new Error(`${what}: expected a mapping at "${key}"`);
  return value;
}

function listAt(parent: Obj, key: string, what: string): Json[] {
  const value = parent[key];
  if (!Array.isArray(value)) throw new Error(`${what}: expected a list at "${key}"`);
  return value;
}

export type PrometheusLocal = {
  scrapeInterval: string;
  evaluationInterval: string;
  /** Absolute paths of the (localized) rule files. */
  ruleFiles: string[];
  /** host:port of each Alertmanager. */
  alertmanagers: string[];
  /**
   * For every job in the shipped config: its local static targets, or for a file_sd job the
   * path of a local targets file (see localizeTargetsFile), or null to leave the job out (a part
   * that cannot run at all). A job missing from this map is an error, so a new job in
   * prometheus.yml forces a decision here. `probeVia` is the local address of the exporter a
   * probe job sends its targets to (the relabelling that sets __address__).
   */
  jobs: Record<string, { targets: string[] } | { file: string; probeVia?: string } | null>;
};

export function localizePrometheusConfig(shipped: unknown, local: PrometheusLocal): Obj {
  if (!isObj(shipped)) throw new Error('prometheus.yml: expected a mapping');
  const config = clone(shipped);
  const global = objAt(config, 'global', 'prometheus.yml');
  global.scrape_interval = local.scrapeInterval;
  global.evaluation_interval = local.evaluationInterval;
  // A timeout may not exceed its interval; it is an interval too.
  global.scrape_timeout = local.scrapeInterval;
  config.rule_files = [...local.ruleFiles];

  for (const am of listAt(
    objAt(config, 'alerting', 'prometheus.yml'),
    'alertmanagers',
    'prometheus.yml',
  )) {
    if (!isObj(am)) throw new Error('prometheus.yml: alertmanagers entries must be mappings');
    am.static_configs = [{ targets: [...local.alertmanagers] }];
  }

  const kept: Json[] = [];
  for (const job of listAt(config, 'scrape_configs', 'prometheus.yml')) {
    if (!isObj(job) || typeof job.job_name !== 'string')
      throw new Error('prometheus.yml: scrape config without job_name');
    const name = job.job_name;
    if (!(name in local.jobs))
      throw new Error(`prometheus.yml: job "${name}" has no local address; add it to jobs`);
    const target = local.jobs[name];
    if (target === null || target === undefined) continue;
    if ('targets' in target) {
      if (!('static_configs' in job))
        throw new Error(`prometheus.yml: job "${name}" is not a static job`);
      job.static_configs = [{ targets: [...target.targets] }];
    } else {
      if (!('file_sd_configs' in job))
        throw new Error(`prometheus.yml: job "${name}" is not a file_sd job`);
      job.file_sd_configs = [{ files: [target.file] }];
      if (target.probeVia !== undefined) {
        const toExporter = (Array.isArray(job.relabel_configs) ? job.relabel_configs : []).filter(
          (r): r is Obj => isObj(r) && r.target_label === '__address__',
        );
        if (toExporter.length !== 1)
          throw new Error(`prometheus.yml: job "${name}" has no single relabelling to __address__`);
        (toExporter[0] as Obj).replacement = target.probeVia;
      }
    }
    kept.push(job);
  }
  config.scrape_configs = kept;
  return config;
}

/** Maps each address in a file_sd targets file to a local one; labels stay as shipped. */
export function localizeTargetsFile(shipped: unknown, addresses: Record<string, string>): Json[] {
  if (!Array.isArray(shipped)) throw new Error('targets file: expected a list of target groups');
  return clone(shipped as Json[]).map((group) => {
    if (!isObj(group)) throw new Error('targets file: target group must be a mapping');
    group.targets = listAt(group, 'targets', 'targets file').map((address) => {
      const local = typeof address === 'string' ? addresses[address] : undefined;
      if (local === undefined)
        throw new Error(`targets file: no local address for ${String(address)}`);
      return local;
    });
    return group;
  });
}

/** Sets every rule's `for:` to `forDuration` (only rules that have one). */
export function localizeRules(shipped: unknown, forDuration: string): Obj {
  if (!isObj(shipped)) throw new Error('rule file: expected a mapping');
  const rules = clone(shipped);
  for (const group of listAt(rules, 'groups', 'rule file')) {
    if (!isObj(group)) throw new Error('rule file: group must be a mapping');
    for (const rule of listAt(group, 'rules', 'rule file')) {
      if (isObj(rule) && 'for' in rule) rule.for = forDuration;
    }
  }
  return rules;
}

export type AlertmanagerLocal = {
  /** Path that replaces every Slack api_url_file. */
  webhookFile: string;
  /** Directory holding the shipped *.tmpl files. */
  templatesDir: string;
  groupWait: string;
  groupInterval: string;
  repeatInterval: string;
  /**
   * Intervals of the route to the `heartbeat` receiver (the Watchdog's pings). Without it that
   * route is retimed like the others.
   */
  heartbeat?: { groupInterval: string; repeatInterval: string };
};

export function localizeAlertmanagerConfig(shipped: unknown, local: AlertmanagerLocal): Obj {
  if (!isObj(shipped)) throw new Error('alertmanager.yml: expected a mapping');
  const config = clone(shipped);
  config.templates = [`${local.templatesDir}/*.tmpl`];

  const retime = (route: Obj, isRoot: boolean): void => {
    if (route.receiver === 'heartbeat' && local.heartbeat !== undefined) {
      // group_wait stays as shipped (0s: the first ping goes out at once).
      route.group_interval = local.heartbeat.groupInterval;
      route.repeat_interval = local.heartbeat.repeatInterval;
    } else {
      if (isRoot || 'group_wait' in route) route.group_wait = local.groupWait;
      if (isRoot || 'group_interval' in route) route.group_interval = local.groupInterval;
      if (isRoot || 'repeat_interval' in route) route.repeat_interval = local.repeatInterval;
    }
    for (const child of Array.isArray(route.routes) ? route.routes : []) {
      if (isObj(child)) retime(child, false);
    }
  };
  retime(objAt(config, 'route', 'alertmanager.yml'), true);

  for (const receiver of listAt(config, 'receivers', 'alertmanager.yml')) {
    if (!isObj(receiver)) continue;
    for (const slack of Array.isArray(receiver.slack_configs) ? receiver.slack_configs : []) {
      if (isObj(slack)) slack.api_url_file = local.webhookFile;
    }
  }
  return config;
}

/** Paths (a.b[2].c) whose values differ between two parsed documents. */
export function changedPaths(before: unknown, after: unknown, at = ''): string[] {
  if (Array.isArray(before) && Array.isArray(after)) {
    const paths: string[] = [];
    for (let i = 0; i < Math.max(before.length, after.length); i++) {
      paths.push(...changedPaths(before[i], after[i], `${at}[${i}]`));
    }
    return paths;
  }
  if (isObj(before) && isObj(after)) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    return [...keys].flatMap((key) =>
      changedPaths(before[key], after[key], at === '' ? key : `${at}.${key}`),
    );
  }
  return Object.is(before, after) ? [] : [at];
}

/** Compose-style interpolation of one value: ${VAR}, ${VAR:-default}, ${VAR:?error}, $$. */
export function interpolate(value: string, env: Record<string, string | undefined>): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}/g,
    (match, name?: string, op?: string, arg?: string) => {
      if (match === '$$') return '$';
      const set = name === undefined ? undefined : env[name];
      if (set !== undefined && set !== '') return set;
      if (op === ':-') return arg ?? '';
      if (op === ':?') throw new Error(`${name}: ${arg}`);
      return '';
    },
  );
}

/**
 * The command-line flags a compose service runs with, interpolated, minus the flags that name
 * container paths or addresses (the caller passes local ones instead).
 */
export function composeFlags(
  command: unknown,
  drop: string[],
  env: Record<string, string | undefined>,
): string[] {
  if (!Array.isArray(command) || !command.every((a) => typeof a === 'string')) {
    throw new Error('compose command: expected a list of strings');
  }
  return command
    .map((arg) => interpolate(arg, env))
    .filter((arg) => !drop.some((flag) => arg === flag || arg.startsWith(`${flag}=`)));
}
