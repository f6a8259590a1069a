// The HTTPS edge's part of a switch, for an environment with a domain (APP_DOMAIN in its .env).
// nginx keeps the environment's own port; the edge (one Caddy per VM, docker-compose.edge.yml)
// serves the domain. Both must name the same container before the old one stops: the switch
// points nginx first, then the edge, and puts nginx back when the edge cannot follow.
// Without APP_DOMAIN nothing here runs; with it but no edge running, the run says so once.
import { randomBytes } from 'node:crypto';
import {
  acmeIssuer,
  parseRoute,
  readDomain,
  readConfig,
  readIssuer,
  sameIssuer,
  validateSettings,
  readRoute,
  readUpstream,
  switchUpstream,
  loadConfig,
  upsertSite,
  edgeSettingsFromEnv,
  EDGE_CONTAINER,
  type Json,
} from '../../edge/caddy.js';
import { APP_LISTEN_PORT } from '../commands/app.js';
import { joinShared } from './container.js';
import {
  breakEdgeLock,
  EDGE_LOCK_WAIT_S,
  edgeAdmin,
  edgeRunning,
  edgeSettingKeys,
  lockEdge,
  readEdgeSettings,
  switchEdge,
  unlockEdge,
} from '../commands/edge.js';
import { EXIT, TIMEOUT_MS } from '../limits.js';
import { SshError } from '../ssh.js';
import { lastLine, together, type Live, type Run } from './run.js';
import { sleep } from '../time.js';

export const edgeUpstream = (name: string): string => `${name}:${APP_LISTEN_PORT}`;

/** The edge's settings file on the VM (init_setup.sh's edge directory). */
export const edgeEnvFile = (remoteDir: string): string =>
  `${remoteDir === '/' ? '' : remoteDir}/edge/.env`;

const domainOf = (run: Run): string | undefined => run.tuning.APP_DOMAIN?.trim() || undefined;

/** The environment has a domain and prepare found the edge running: the switch includes the edge. */
export const edgeWanted = (run: Run): boolean => !!domainOf(run) && run.edge?.up === true;

// edgeUp and edgeVars answer from what prepare read (run.edge, set by readEdge): the switch
// needs the same answers, and every round trip to the VM is paid again while it serves load.
async function edgeUp(run: Run): Promise<boolean> {
  if (run.edge) return run.edge.up;
  const r = await run.must(
    edgeRunning(),
    'cannot tell whether the HTTPS edge runs',
    TIMEOUT_MS.quick,
  );
  return r.stdout.trim() === 'running';
}

/** JSON answers of the admin API; undefined when it answered with an error (e.g. 404: no such @id). */
async function ask<T>(run: Run, req: Parameters<typeof edgeAdmin>[0]): Promise<T | undefined> {
  const r = await run.run(edgeAdmin(req), TIMEOUT_MS.quick);
  if (r.code !== 0) return undefined;
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    return undefined;
  }
}

async function send(run: Run, req: Parameters<typeof edgeAdmin>[0], what: string): Promise<void> {
  const r = await run.run(edgeAdmin(req), TIMEOUT_MS.command);
  if (r.code !== 0)
    throw new Error(`${what}: ${lastLine(r.stderr) || lastLine(r.stdout) || `exit ${r.code}`}`);
}

/** Where the edge sends the environment's host now, or undefined when it has no route for it. */
async function currentRoute(run: Run): Promise<{ upstream: string; domain?: string } | undefined> {
  return parseRoute(await ask<Json>(run, readRoute(run.env)), run.env);
}

/** The edge's settings file on the VM, only its known keys (there are no secrets in it). */
async function edgeVars(run: Run): Promise<Record<string, string>> {
  if (run.edge) return run.edge.vars;
  const file = edgeEnvFile(run.cfg.remoteDir);
  const text = (
    await run.must(
      readEdgeSettings(file),
      `cannot read the edge's settings (${file})`,
      TIMEOUT_MS.quick,
    )
  ).stdout;
  const vars: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m?.[1] && (edgeSettingKeys as readonly string[]).includes(m[1]))
      vars[m[1]] = (m[2] ?? '').replace(/^(['"])(.*)\1$/, '$2');
  }
  return vars;
}

export async function withEdgeLock<T>(run: Run, body: () => Promise<T>): Promise<T> {
  // Kept on the run: a clean-up after a lost connection frees the lock only if it is this one.
  run.edgeLock ??= randomBytes(6).toString('hex');
  for (let waited = 0; ; waited++) {
    const got = await run.run(lockEdge(run.edgeLock), TIMEOUT_MS.quick);
    if (got.code === 0) break;
    if (got.code !== 75)
      throw new Error(`cannot take the edge's lock: ${lastLine(got.stderr) || `exit ${got.code}`}`);
    if (waited >= EDGE_LOCK_WAIT_S)
      throw new Error(
        `another deploy held the edge's lock for ${EDGE_LOCK_WAIT_S} s (if none runs: ${breakEdgeLock})`,
      );
    await sleep(1000);
  }
  try {
    return await body();
  } finally {
    await run.run(unlockEdge(run.edgeLock), TIMEOUT_MS.quick).catch(() => undefined);
  }
}

/**
 * Points the site at `upstream` and reads it back. Only the one `dial` changes when the route
 * exists with this domain; otherwise the site is added (or its domain changed) in the running
 * config, loaded back whole. With `putBack`, a failure puts the upstream it had back, still
 * holding the lock, so no other deploy's change falls in between.
 */
async function setUpstream(
  run: Run,
  domain: string,
  upstream: string,
  o: { putBack?: boolean } = {},
): Promise<void> {
  await withEdgeLock(run, async () => {
    const before = await currentRoute(run);
    try {
      await change(run, domain, upstream, before);
    } catch (err) {
      if (o.putBack && before)
        await change(run, domain, before.upstream, before).catch(() => undefined);
      throw err;
    }
  });
}

/** One change of the site's upstream, under the caller's lock; `before` is the route it found. */
async function change(
  run: Run,
  domain: string,
  upstream: string,
  before: { upstream: string; domain?: string } | undefined,
): Promise<void> {
  const vars = await edgeVars(run);
  // Grafana's site rides along: whichever deploy touches the edge first adds it (or its new domain).
  const grafana = vars.GRAFANA_DOMAIN?.trim();
  const grafanaOk = !grafana || (await ask<string>(run, readDomain('grafana'))) === grafana;
  const issuerOk = !run.edge?.issuerStale || (await issuerFollows(run, vars));
  if (before?.domain === domain && grafanaOk && issuerOk) {
    await send(run, switchUpstream(run.env, upstream), 'the edge refused the switch');
  } else {
    const config = await ask<Json>(run, readConfig());
    if (!config) throw new Error('cannot read the edge’s running config');
    const settings = edgeSettingsFromEnv(vars, []);
    let next = upsertSite(config, settings, { name: run.env, domain, upstream });
    const site = settings.sites.find((x) => x.name === 'grafana');
    if (!grafanaOk && site) next = upsertSite(next, settings, site);
    const siteOk = before?.domain === domain && grafanaOk;
    await send(
      run,
      loadConfig(next),
      siteOk
        ? 'the edge refused the certificate issuer of its settings'
        : 'the edge refused the new site',
    );
    if (!issuerOk) {
      run.edge!.issuerStale = false;
      const { ca, email } = settings.acme;
      run.report.info(
        `the edge's certificate issuer now follows its settings (ACME_CA ${ca}, ACME_EMAIL ${email ?? 'none'})`,
      );
    }
  }
  const now = await ask<string>(run, readUpstream(run.env));
  if (now !== upstream)
    throw new Error(
      `the edge sends ${domain} to ${now ?? 'nothing'} after the switch, not to ${upstream}`,
    );
}

/**
 * The edge's part of switching to `name`: undefined when the environment has no domain or no
 * edge runs (said in the run's output), else how it went. Throws when the edge does not follow;
 * the edge is then back on what it served before.
 */
export async function pointEdgeAt(run: Run, name: string): Promise<string | undefined> {
  const domain = domainOf(run);
  if (!domain) return undefined;
  if (!(await edgeUp(run))) {
    run.report.warn(
      `APP_DOMAIN=${domain}, but no edge runs on this VM (${EDGE_CONTAINER}): ${run.env} is served on its own port over plain HTTP only; init_setup.sh starts the edge`,
    );
    return undefined;
  }
  // The edge reaches apps on the shared network: the new container joins it before traffic moves
  // (begun by the switch beside nginx's part).
  await joinShared(run, name);
  const upstream = edgeUpstream(name);
  const grafanaDomain = (await edgeVars(run)).GRAFANA_DOMAIN?.trim() || undefined;
  // The common case, the site already there, in one round trip; a new or changed site takes the
  // longer way below (read the whole config, add the site, load it back).
  const fast = await run.run(
    switchEdge({ env: run.env, domain, grafanaDomain, upstream, healthPath: run.cfg.healthPath }),
    (EDGE_LOCK_WAIT_S + 10) * 1000,
  );
  const said = lastLine(fast.stdout) || lastLine(fast.stderr) || `exit ${fast.code}`;
  switch (fast.code) {
    case EXIT.edge.ok:
      return `edge: ${domain} -> ${name}`;
    case EXIT.edge.needsConfig:
      break;
    case EXIT.edge.unreachable:
      throw new Error(`${said} on the ${run.cfg.network} network`);
    case EXIT.edge.stuck:
      // nginx goes back to the old container; the next run's reconcile step moves the edge there.
      throw new Error(`${said}; the next deploy or rollback puts the edge on what nginx serves`);
    default:
      throw new Error(said);
  }
  // The program checked that the edge reaches the new container before it found the site missing.
  await setUpstream(run, domain, upstream, { putBack: true });
  return `edge: ${domain} -> ${name} (site added to the edge)`;
}

/**
 * For an environment with a domain: whether the edge runs, its settings and the domain's route,
 * all at once (prepare runs this beside its other reads); nothing without a domain.
 */
export async function readEdge(run: Run): Promise<void> {
  if (!domainOf(run)) return;
  const [up, vars, route, issuer] = await together([
    edgeUp(run),
    edgeVars(run),
    currentRoute(run),
    ask<Json>(run, readIssuer()),
  ]);
  // No issuer yet (no site on this edge) is not stale: the first site brings the settings' one.
  // Nor are settings that are not valid: the deploy keeps the issuer that works, and says why.
  const wanted = wantedIssuer(vars);
  if (up && issuer != null && wanted instanceof Error)
    run.report.warn(
      `the edge's settings are not valid (${wanted.message}): its certificate issuer stays as it is; fix ${edgeEnvFile(run.cfg.remoteDir)}`,
    );
  const issuerStale =
    up && issuer != null && !(wanted instanceof Error) && !sameIssuer(issuer, wanted);
  run.edge = {
    up,
    vars,
    ...(up && route ? { route } : {}),
    ...(issuerStale ? { issuerStale } : {}),
  };
}

/** The issuer the edge's settings ask for, or why they are not valid. */
function wantedIssuer(vars: Record<string, string>): Json | Error {
  try {
    const settings = edgeSettingsFromEnv(vars, []);
    validateSettings(settings);
    return acmeIssuer(settings);
  } catch (err) {
    return err as Error;
  }
}

/**
 * Under the edge's lock: is the issuer the settings ask for in force after all (another
 * environment's deploy may have put it in since prepare looked)?
 */
async function issuerFollows(run: Run, vars: Record<string, string>): Promise<boolean> {
  const wanted = wantedIssuer(vars);
  const follows = wanted instanceof Error || sameIssuer(await ask<Json>(run, readIssuer()), wanted);
  if (follows) run.edge!.issuerStale = false;
  return follows;
}

/**
 * Before a run changes anything: the edge must send the domain to what nginx serves (a run cut
 * off between the two switches, a domain set since the last deploy, an edge started later), with
 * the certificate issuer its settings ask for.
 */
export async function edgeFollowsLive(run: Run, live: Live | undefined): Promise<void> {
  const domain = domainOf(run);
  if (!domain || !live || live.state?.status !== 'running' || !(await edgeUp(run))) return;
  const route = run.edge?.route;
  const routed = route?.domain === domain && route.upstream === edgeUpstream(live.name);
  if (routed) {
    // Only the issuer to put in, with the route as it is and before anything moves. The edge
    // serves as it did when it will not take it: a warning, not a failed deploy.
    if (!run.edge?.issuerStale) return;
    await setUpstream(run, domain, edgeUpstream(live.name)).catch((err: Error) => {
      if (err instanceof SshError) throw err;
      run.report.warn(
        `${err.message}: it keeps the issuer it has; check ${edgeEnvFile(run.cfg.remoteDir)} and docker logs ${EDGE_CONTAINER}`,
      );
    });
    return;
  }
  await joinShared(run, live.name);
  await setUpstream(run, domain, edgeUpstream(live.name));
  run.report.info(
    `the edge sent ${domain} to ${route?.upstream ?? 'nothing'}: now to ${live.name}, which the proxy serves`,
  );
}

/**
 * For a clean-up after a switch was cut off, in a run that involves the edge: does the edge send
 * the domain to `name`? Undefined when the edge cannot be asked.
 */
export async function edgeSendsTo(run: Run, name: string): Promise<boolean | undefined> {
  const r = await run.run(edgeAdmin(readRoute(run.env)), TIMEOUT_MS.quick).catch(() => undefined);
  if (r?.code !== 0) return undefined;
  try {
    return parseRoute(JSON.parse(r.stdout), run.env)?.upstream === edgeUpstream(name);
  } catch {
    return undefined;
  }
}

/**
 * For a clean-up, under the edge's lock (the caller holds it): the edge back on `name`, what
 * nginx serves again; false when it would not go.
 */
export async function edgeBackTo(run: Run, name: string): Promise<boolean> {
  const domain = domainOf(run);
  if (!domain) return true;
  return change(run, domain, edgeUpstream(name), await currentRoute(run)).then(
    () => true,
    () => false,
  );
}
