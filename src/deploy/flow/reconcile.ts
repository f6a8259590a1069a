// Before anything changes: the environment's files in place, and what the VM really holds. An
// earlier run may have been cut off and left containers behind, or an upstream.conf that names a
// container nginx never switched to: what the proxy routes to decides which one is live.
import { listAppContainers, removeContainers, ensureNetwork } from '../commands/app.js';
import { createProxy } from '../commands/compose.js';
import {
  makeEnvDirs,
  parseTuning,
  readFile,
  readTuning,
  seedAppSettings,
  writeFile,
  writeFileIfMissing,
} from '../commands/files.js';
import { healthCheck } from '../commands/probe.js';
import { parseUpstream, proxyRunning, upstreamConf } from '../commands/proxy.js';
import { environmentInfo, type EnvName } from '../environments.js';
import { ROUTE_CHECK_TRIES, TIMEOUT_MS } from '../limits.js';
import { inspect } from './container.js';
import { edgeFollowsLive, readEdge } from './edge.js';
import { together, type Live, type Run } from './run.js';
import { serves } from './switch.js';
import { timestamp } from '../time.js';

export function defaultDotEnv(env: EnvName): string {
  return [
    `# docker compose's settings of Berth's ${env} environment on this VM (APP_PORT, APP_BIND,`,
    '# PROXY_IMAGE, limits). Created by the first deploy; yours to edit, never overwritten. The app',
    '# never sees this file: its settings are in app.env.',
    `APP_PORT=${environmentInfo[env].port}`,
    '',
  ].join('\n');
}

export function defaultAppEnv(env: EnvName): string {
  return [
    `# The app's settings in Berth's ${env} environment on this VM. Created by the first deploy;`,
    '# yours to edit: a deploy rewrites only the keys CI sends (DEPLOY_APP_SETTINGS), a rollback',
    '# puts back the file its version ran with. KEY=VALUE, the value byte for byte: no quotes, no',
    '# $ expansion, no comment after a value. Edits take effect at the next deploy.',
    'LOG_LEVEL=info',
    '',
  ].join('\n');
}

/** Files up, network there, a proxy container, what serves now, leftovers of an interrupted deploy gone. */
export async function prepare(run: Run): Promise<Live | undefined> {
  run.checkInterrupt();
  // The proxy's container first: the health probes run in it, or in a one-off of its image.
  // Looked for while the files are written: every round trip costs more while the VM serves load.
  // What the edge says needs only the environment's .env (APP_DOMAIN): asked as soon as it is read.
  const [, proxy] = await together([
    writeFiles(run, () => readEdge(run)),
    run.must(proxyRunning(run.env), 'cannot look for the proxy'),
  ]);
  run.proxyId = proxy.stdout.trim().split('\n')[0] || undefined;
  if (!run.proxyId)
    await run.must(
      createProxy(run.env, run.paths.dir, run.composeVars),
      'docker compose could not create the proxy',
      TIMEOUT_MS.compose,
    );
  // What serves and what else runs: independent reads, at once.
  const [serving, listed] = await together([
    liveContainer(run),
    run.must(listAppContainers(run.env), 'cannot list containers'),
  ]);
  let live = serving;
  let leftovers = leftoverContainers(listed.stdout, live);
  if (leftovers.length > 0) {
    const routed =
      live && (await serves(run, live.name, ROUTE_CHECK_TRIES))
        ? undefined
        : await firstServing(run, leftovers);
    if (routed) {
      run.report.info(
        `the proxy routes to ${routed}, not to ${live?.name ?? 'what upstream.conf names'}: keeping ${routed}`,
      );
      await run.must(
        writeFile(run.paths.upstream, upstreamConf(routed, `found serving ${timestamp()}`)),
        'cannot write the proxy upstream',
      );
      leftovers = [
        ...leftovers.filter((n) => n !== routed),
        ...(live && live.state?.status === 'running' ? [live.name] : []),
      ];
      live = await liveContainer(run);
    }
  }
  // Before any leftover goes: the edge may still send the domain to one of them.
  await edgeFollowsLive(run, live);
  if (leftovers.length > 0) {
    await run.must(
      removeContainers(leftovers),
      'cannot remove containers left by an interrupted deploy',
    );
    run.report.info(
      `removed ${leftovers.length} container(s) left by an interrupted deploy: ${leftovers.join(', ')}`,
    );
  }
  run.live = live;
  return live;
}

/**
 * The compose file, nginx.conf, a first app.env and .env; the shared network; the app's tuning
 * from .env, then `tuned` (which needs it).
 */
async function writeFiles(run: Run, tuned: () => Promise<void>): Promise<void> {
  const { paths: p, deps } = run;
  await run.must(makeEnvDirs(p.dir, p.proxyDir), `cannot create ${p.dir}`);
  await together([
    run.must(writeFile(p.compose, deps.files.compose), `cannot write ${p.compose}`),
    run.must(writeFile(p.nginxConf, deps.files.nginxConf), `cannot write ${p.nginxConf}`),
    run.must(ensureNetwork(run.cfg.network), `cannot create the docker network ${run.cfg.network}`),
    settingsFiles(run).then(async () => {
      run.tuning = parseTuning((await run.must(readTuning(p.env), 'cannot read .env')).stdout);
      await tuned();
    }),
  ]);
}

/** A first app.env and .env, in that order, each said when created. */
async function settingsFiles(run: Run): Promise<void> {
  const { paths: p } = run;
  // app.env first: on a VM from before the split, it starts as a copy of the .env the app had.
  const seeded = (
    await run.must(
      seedAppSettings(p.appEnv, p.env, defaultAppEnv(run.env)),
      `cannot create ${p.appEnv}`,
    )
  ).stdout;
  if (seeded.includes('copied'))
    run.report.info(
      `created ${p.appEnv} as a copy of ${p.env}: the app's settings now live there (see docs/image-and-vm.md, app.env)`,
    );
  else if (seeded.includes('created'))
    run.report.info(`created ${p.appEnv} with defaults (the app's settings: edit it on the VM)`);
  const created = await run.must(
    writeFileIfMissing(p.env, defaultDotEnv(run.env)),
    `cannot create ${p.env}`,
  );
  if (created.stdout.includes('created'))
    run.report.info(
      `created ${p.env} with defaults (compose's settings, e.g. APP_PORT: edit it on the VM)`,
    );
}

/** The container upstream.conf names; whether it answers its health check follows (run.liveChecked). */
async function liveContainer(run: Run): Promise<Live | undefined> {
  const upstream = (await run.must(readFile(run.paths.upstream), 'cannot read the proxy upstream'))
    .stdout;
  run.upstreamRead = upstream;
  const name = parseUpstream(upstream);
  if (!name) return undefined;
  const state = await inspect(run, name);
  const live: Live = { name, state, healthy: false };
  if (state?.status !== 'running') return live;
  // Not awaited here (run.liveChecked): a lost connection leaves it unhealthy, as unknown. Its
  // 10 s let a busy VM answer (it runs beside the pull and the start); only a refused new
  // version or a failure waits for it.
  run.liveChecked = run
    .run(
      healthCheck(run.env, name, {
        path: run.cfg.healthPath,
        timeoutS: 10,
        intervalS: 0.5,
        successes: 1,
      }),
      TIMEOUT_MS.quick,
    )
    .then(
      (probe) => void (live.healthy = probe.code === 0),
      () => undefined,
    );
  return live;
}

/** App containers that are up but are not the live one: an interrupted run's. */
function leftoverContainers(listed: string, live: Live | undefined): string[] {
  return listed
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' '))
    .filter(
      ([name, state]) =>
        name !== live?.name && /^(running|restarting|created|paused)$/i.test(state ?? ''),
    )
    .map(([name]) => name as string);
}

async function firstServing(run: Run, names: string[]): Promise<string | undefined> {
  for (const name of names)
    if (
      (await inspect(run, name))?.status === 'running' &&
      (await serves(run, name, ROUTE_CHECK_TRIES))
    )
      return name;
  return undefined;
}
