// npm run bench:http [-- --trials 8 --duration 3 --warmup 2 --connections 50]
// Drives the fully instrumented service and a bare Express app with the same load on loopback and
// prints requests/s, p50/p99 latency and RSS for each, and the ratio service/bare.
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { freePort } from '../test/helpers/net.js';
import { allowedCpus, cpuSeconds, median, root, startCompiled } from './service-process.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '2' },
    trials: { type: 'string', default: '8' },
  },
});
const duration = Number(values.duration);
const connections = Number(values.connections);
const warmup = Number(values.warmup);
const trials = Number(values.trials);
const TARGET_RATIO = 0.85;

// On a shared 2-core machine the server and the load generator otherwise take turns on both
// cores, and one run of the same code differed from the next by up to 25 %. Pinned, each has a
// core to itself: the servers on the first core this process may use, the load on the second.
const [serverCpu, loadCpu] = allowedCpus();
const pinned = loadCpu !== undefined && spawnSync('taskset', ['-V']).status === 0;

// The access log is written and serialized as in production, to /dev/null: this process, which
// also runs the load generator, never reads it back.
const start = (entry: string, port: number): Promise<ChildProcess> =>
  startCompiled(entry, port, {
    cpu: pinned ? serverCpu : undefined,
    ready: async (p) => (await fetch(`http://127.0.0.1:${p}/health`)).ok,
    waitsFor: 'answer /health',
  });

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

type Run = { rps: number; p50: number; p99: number; errors: number; cpuUsPerReq: number };

// Requests/s depend on how much CPU the neighbours leave; CPU time per request does not, so it
// is printed too: the server's cost per request, the figure that decides its capacity.
async function run(url: string, seconds: number, pid: number): Promise<Run> {
  const cpuBefore = cpuSeconds(pid);
  const r = await autocannon({ url, connections, duration: seconds });
  const cpuUsPerReq = ((cpuSeconds(pid) - cpuBefore) * 1e6) / r.requests.total;
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.non2xx,
    cpuUsPerReq,
  };
}

const paths = ['/health', '/items/5?q=bench'];
const targets = [
  { name: 'bare express', entry: 'bench/bare-app.mjs' },
  { name: 'berth service', entry: 'dist/service/server.js' },
];
// Both run as plain JavaScript under node, as the image runs the service: no TypeScript loader
// on either side of the comparison.
execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
if (pinned)
  execFileSync('taskset', ['-a', '-p', '-c', String(loadCpu), String(process.pid)], {
    stdio: 'ignore',
  });
console.log(
  `load: autocannon, ${connections} connections, loopback, ` +
    `${pinned ? `servers on CPU ${serverCpu} and load on CPU ${loadCpu}` : 'not pinned to CPUs (needs taskset and two CPUs)'}; ` +
    `${trials} trials, each with fresh processes of both targets: ${warmup} s warm-up, then ${duration} s measured ` +
    'per target and path, back to back; figures are medians over the trials',
);

// A fresh pair of processes per trial, because the same build settled at different speeds in
// different processes (JIT and heap layout); each trial's ratio compares two runs made seconds
// apart, so a slow spell on the machine slows both sides of that ratio.
type Trial = Map<string, Run & { rss: number }>;
const results = new Map<string, Trial[]>(paths.map((p) => [p, []]));
for (let t = 0; t < trials; t++) {
  const servers: ((typeof targets)[number] & { port: number; child: ChildProcess })[] = [];
  try {
    for (const target of targets) {
      const port = await freePort();
      servers.push({ ...target, port, child: await start(target.entry, port) });
    }
    // Alternate which side goes first (an even number of trials balances it), so neither always
    // runs on the warmer machine.
    if (t % 2 === 1) servers.reverse();
    for (const p of paths) {
      const trial: Trial = new Map();
      for (const s of servers) {
        const pid = s.child.pid ?? 0;
        await run(`http://127.0.0.1:${s.port}${p}`, warmup, pid);
        trial.set(s.name, {
          ...(await run(`http://127.0.0.1:${s.port}${p}`, duration, pid)),
          rss: rssMb(pid),
        });
      }
      results.get(p)?.push(trial);
    }
  } finally {
    for (const s of servers) s.child.kill('SIGTERM');
  }
  process.stdout.write(`trial ${t + 1}/${trials} done\n`);
}

const fmt = (n: number, d = 0) => n.toFixed(d).padStart(9);
console.log(
  '\ntarget          path               req/s   p50 ms   p99 ms  CPU µs/req   RSS MB   errors',
);
for (const p of paths) {
  for (const target of targets) {
    const runs = (results.get(p) ?? [])
      .map((trial) => trial.get(target.name))
      .filter((r) => r !== undefined);
    const m = (f: (r: (typeof runs)[number]) => number) => median(runs.map(f));
    const errors = runs.reduce((n, r) => n + r.errors, 0);
    console.log(
      `${target.name.padEnd(15)} ${p.padEnd(16)} ${fmt(m((r) => r.rps))} ${fmt(
        m((r) => r.p50),
        1,
      )} ${fmt(
        m((r) => r.p99),
        1,
      )} ` +
        `${fmt(
          m((r) => r.cpuUsPerReq),
          1,
        ).padStart(11)} ${fmt(
          m((r) => r.rss),
          1,
        )} ${fmt(errors)}`,
    );
  }
}

console.log(
  `\nratio service/bare per trial (median first), target >= ${TARGET_RATIO} for requests/s`,
);
console.log(
  'path               req/s ratio        capacity ratio (bare CPU/req ÷ service CPU/req)   per trial (req/s)',
);
let ok = true;
for (const p of paths) {
  const pairs = (results.get(p) ?? []).map((trial) => ({
    b: trial.get('bare express'),
    s: trial.get('berth service'),
  }));
  const rps = pairs.map(({ b, s }) => (s?.rps ?? NaN) / (b?.rps ?? NaN));
  const capacity = pairs.map(({ b, s }) => (b?.cpuUsPerReq ?? NaN) / (s?.cpuUsPerReq ?? NaN));
  const ratio = median(rps);
  ok &&= ratio >= TARGET_RATIO;
  console.log(
    `${p.padEnd(18)} ${ratio.toFixed(3).padStart(11)} ${ratio >= TARGET_RATIO ? 'ok  ' : 'LOW '} ${median(capacity).toFixed(3).padStart(17)}` +
      `${''.padStart(34)}${rps.map((r) => r.toFixed(2)).join(' ')}`,
  );
}
process.exitCode = ok ? 0 : 1;
