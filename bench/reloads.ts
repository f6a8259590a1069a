// npm run bench:reloads — many switches in a row under load, to catch what one deploy rarely shows.
//
// Deploys v1 and v2 in turn BENCH_SWITCHES times (default 10) to one environment of the test VM
// while BENCH_CONCURRENCY keep-alive GET loops (default 8) hit its public port (or, with
// BENCH_VIA=edge, its domain through the HTTPS edge), then prints each switch's wall time and the
// requests that failed, each with the connection it was on and when. Made to chase the rare
// `socket hang up` at nginx's reload, which turned out to be the load client's misreading of an
// idle keep-alive close (docs/deploy.md, "Measured"): BENCH_RUNS repeats the whole (a fresh
// environment each time), since a rare loss comes and goes.
// Needs the test VM: scripts/test-env/setup.sh (as root).
import {
  deploy,
  ensureImages,
  images,
  lockVm,
  resetEnv,
  testPorts,
  vmReady,
  type EnvName,
} from '../test/deploy/e2e/harness.js';
import { benchDomain, loadOn, useDomain } from './vm-load.js';
import { startVmEdge, type VmEdge } from '../test/deploy/e2e/vm-edge.js';

const env = (process.env.BENCH_ENV ?? 'testing') as EnvName;
const switches = Number(process.env.BENCH_SWITCHES ?? 10);
const runs = Number(process.env.BENCH_RUNS ?? 1);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 8);
const viaEdge = process.env.BENCH_VIA === 'edge';
const domain = benchDomain(env);

async function oneRun(run: number, edge: VmEdge | undefined): Promise<number> {
  await resetEnv(env);
  if (edge) useDomain(env);
  const first = await deploy(env, images.v1);
  if (first.code !== 0) throw new Error(`setting up: first deploy failed\n${first.output}`);
  if (edge) await edge.waitForCertificate(domain);
  const poller = loadOn(env, concurrency, edge);
  const begun = performance.now();
  const walls: string[] = [];
  for (let i = 0; i < switches; i++) {
    const started = performance.now();
    const r = await deploy(env, i % 2 ? images.v1 : images.v2);
    const at = ((started - begun) / 1000).toFixed(1);
    walls.push(
      `${r.code === 0 ? '' : `exit ${r.code} `}${((performance.now() - started) / 1000).toFixed(1)} s @${at}`,
    );
  }
  const load = await poller.stop();
  console.log(
    `run ${run}: ${switches} switches (wall, began at s): ${walls.join(', ')}; ${load.sent} requests, ${load.failed} failed, ${load.retriedOnStaleConnection} sent again after an idle close`,
  );
  for (const f of load.failures) console.log(`  failed: ${f}`);
  return load.failed;
}

async function main(): Promise<void> {
  if (!vmReady) process.exit(1);
  console.log(
    `reload bench: env ${env}, ${runs} run(s) of ${switches} switches, ${concurrency} keep-alive GET loops ${viaEdge ? `through the edge (https://${domain})` : `on the port 127.0.0.1:${testPorts[env]}`}`,
  );
  const releaseVm = await lockVm();
  let edge: VmEdge | undefined;
  let failed = 0;
  try {
    await ensureImages();
    if (viaEdge) edge = await startVmEdge();
    for (let run = 1; run <= runs; run++) failed += await oneRun(run, edge);
  } finally {
    await edge?.stop();
    releaseVm();
  }
  console.log(`\nfailed requests in all: ${failed} (target 0)`);
  if (failed > 0) process.exitCode = 1;
}

await main();
