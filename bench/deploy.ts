// npm run bench:deploy — what users see while a deploy runs on the test VM.
//
// Runs GET /health in BENCH_CONCURRENCY loops (each waits for its answer) during (a) a healthy
// deploy v1 -> v2 and (b) a deploy of an image whose /health fails, then (c) times a healthy
// deploy back to v1 with no load (the deploy's own cost), and prints requests sent,
// failed requests, the longest gap without a successful response, the versions served in order
// and the deploy's wall time split by step (from the CLI's --json). By default the environment
// has a domain and the loops go through the HTTPS edge (certificate from a real ACME CA on the
// VM's network, as test/deploy/e2e/edge.int.test.ts); BENCH_VIA=port measures the environment's
// own port instead (a VM without domains).
// Needs the test VM: scripts/test-env/setup.sh (as root).
import {
  deploy,
  ensureImages,
  images,
  lockVm,
  resetEnv,
  testPorts,
  vmReady,
  type CliResult,
  type EnvName,
} from '../test/deploy/e2e/harness.js';
import type { Poller, PollResult } from '../test/deploy/e2e/poller.js';
import { benchDomain, loadOn, useDomain } from './vm-load.js';
import { startVmEdge, type VmEdge } from '../test/deploy/e2e/vm-edge.js';
import { sleep } from '../src/deploy/time.js';

const env = (process.env.BENCH_ENV ?? 'testing') as EnvName;
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 8);
const viaEdge = (process.env.BENCH_VIA ?? 'edge') !== 'port';
const domain = benchDomain(env);
let edge: VmEdge | undefined;

const poll = (loops: number): Poller => loadOn(env, loops, edge);
const settleMs = 1000;

interface Row {
  scenario: string;
  expected: 'ok' | 'refused';
  r: CliResult;
  wallMs: number;
  load: PollResult;
}

async function measure(
  scenario: string,
  image: string,
  expected: Row['expected'],
  loops = concurrency,
): Promise<Row> {
  const poller = poll(loops);
  // Load runs a moment before and after the deploy, so the switch is never at the edge.
  await sleep(settleMs);
  const started = performance.now();
  // --verbose: every remote command's duration on stderr, summed by name below.
  const r = await deploy(env, image, undefined, ['--verbose']);
  const wallMs = performance.now() - started;
  await sleep(settleMs);
  return { scenario, expected, r, wallMs, load: await poller.stop() };
}

const s = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const pad = (text: string | number, width: number): string => String(text).padEnd(width);

function printRows(rows: Row[]): void {
  console.log(
    `\n${pad('scenario', 26)}${pad('deploy', 10)}${pad('wall', 9)}${pad('sent', 8)}${pad('req/s', 8)}${pad('failed', 12)}${pad('retried*', 10)}longest gap`,
  );
  for (const { scenario, r, wallMs, load } of rows) {
    const outcome = r.code === 0 ? 'ok' : `exit ${r.code}`;
    const seconds = (wallMs + 2 * settleMs) / 1000;
    console.log(
      `${pad(scenario, 26)}${pad(outcome, 10)}${pad(s(wallMs), 9)}${pad(load.sent, 8)}${pad(Math.round(load.sent / seconds), 8)}${pad(`${load.failed} (${((100 * load.failed) / Math.max(1, load.sent)).toFixed(2)}%)`, 12)}${pad(load.retriedOnStaleConnection, 10)}${load.sent > 0 ? `${load.longestGapMs} ms` : '—'}`,
    );
  }
  console.log(
    '* sent again after an idle keep-alive connection was closed under it (as browsers do; see test/deploy/e2e/poller.ts)',
  );
  for (const { scenario, r, wallMs, load } of rows) {
    const steps = r.json?.steps ?? [];
    // 'record' and 'stop old container' run at the same time: the shorter one adds no time.
    const ms = (name: string) => steps.find((x) => x.name === name)?.ms ?? 0;
    const overlap = Math.min(ms('record'), ms('stop old container'));
    const total = steps.reduce((sum, step) => sum + step.ms, 0) - overlap;
    console.log(
      `\n${scenario}: steps (process wall ${s(wallMs)}, of it ${s(wallMs - total)} outside the steps: node starting the tool (and bundling it when src/ changed), and its exit)`,
    );
    for (const step of steps)
      console.log(
        `  ${step.ok ? '✓' : '✗'} ${pad(step.name, 28)}${pad(s(step.ms), 9)}${((100 * step.ms) / Math.max(1, wallMs)).toFixed(0)}%`,
      );
    // The switch step's own line splits it: the environment's port (nginx) and the edge.
    const switchLine = r.output.split('\n').find((l) => /^[✓✗] switch traffic /.test(l));
    if (switchLine)
      console.log(`  switch: ${switchLine.replace(/^[✓✗] switch traffic \S+\s*/, '')}`);
    printCommands(r.stderr);
    if (load.failures.length > 0) console.log(`  failures: ${load.failures.join('; ')}`);
    console.log(
      `  answers from the old version to requests sent after the new one had answered: ${load.oldAfterNew} (target 0)`,
    );
    console.log(
      `  versions served, in order (first answer, s after the load began; the deploy began at ${s(settleMs)}): ${load.changes.map((c) => `${c.version} @${c.atS.toFixed(2)}`).join(' -> ')}`,
    );
  }
}

/** The remote commands of a --verbose run (src/deploy/trace.ts lines), summed by name, slowest first. */
function printCommands(stderr: string): void {
  const byName = new Map<string, { n: number; ms: number }>();
  for (const m of stderr.matchAll(/^\s+· (\S+)\s+(\d+) ms/gm)) {
    const row = byName.get(m[1]!) ?? { n: 0, ms: 0 };
    byName.set(m[1]!, { n: row.n + 1, ms: row.ms + Number(m[2]) });
  }
  // BENCH_TRACE=1: every command in order, as --verbose printed it.
  if (process.env.BENCH_TRACE) for (const l of stderr.match(/^\s+· .*$/gm) ?? []) console.log(l);
  const rows = [...byName].sort((a, b) => b[1].ms - a[1].ms);
  const total = rows.reduce((sum, [, r]) => sum + r.ms, 0);
  console.log(`  remote commands: ${rows.reduce((n, [, r]) => n + r.n, 0)}, ${s(total)} in all`);
  for (const [name, r] of rows.slice(0, 12))
    console.log(`    ${pad(name, 26)}${pad(`${r.n}×`, 5)}${s(r.ms)}`);
}

async function main(): Promise<void> {
  if (!vmReady) process.exit(1);
  console.log(
    viaEdge
      ? `deploy bench: env ${env} on the test VM, ${concurrency} GET /health loops over HTTPS through the edge (https://${domain}, TLS and keep-alive)`
      : `deploy bench: env ${env} on the test VM, ${concurrency} GET /health loops on its own port 127.0.0.1:${testPorts[env]}`,
  );
  const releaseVm = await lockVm();
  try {
    await run();
  } finally {
    releaseVm();
  }
}

async function run(): Promise<void> {
  await ensureImages();
  await resetEnv(env);
  if (viaEdge) {
    edge = await startVmEdge();
    useDomain(env);
  }
  try {
    await measureAll();
  } finally {
    await edge?.stop();
  }
}

async function measureAll(): Promise<void> {
  const first = await deploy(env, images.v1);
  if (first.code !== 0) throw new Error(`setting up: first deploy failed\n${first.output}`);
  await edge?.waitForCertificate(domain);

  const rows = [
    await measure('(a) healthy v1 -> v2', images.v2, 'ok'),
    await measure('(b) /health fails', images.unhealthy, 'refused'),
    // The deploy's own cost: the same kind of deploy with nothing else asking for the CPUs.
    await measure('(c) healthy, no load', images.v1, 'ok', 0),
  ];
  printRows(rows);

  const wrong = rows.filter((row) => (row.expected === 'ok') !== (row.r.code === 0));
  for (const row of wrong)
    console.error(
      `\n${row.scenario}: the deploy did not end as expected (${row.expected})\n${row.r.output}`,
    );
  const failed = rows.reduce((sum, row) => sum + row.load.failed, 0);
  const back = rows.reduce((sum, row) => sum + row.load.oldAfterNew, 0);
  console.log(`\nfailed requests in all: ${failed} (target 0)`);
  console.log(`old answers after a new one: ${back} (target 0)`);
  if (wrong.length > 0 || failed > 0 || back > 0) process.exitCode = 1;
}

await main();
