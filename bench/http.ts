// npm run bench:http [-- --duration 5 --rounds 3 --connections 50]
// Drives the fully instrumented service and a bare Express app with the same load on loopback and
// prints requests/s, p50/p99 latency and RSS for each, and the ratio service/bare.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { freePort } from '../test/helpers/net.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
  },
});
const duration = Number(values.duration);
const connections = Number(values.connections);
const warmup = Number(values.warmup);
const rounds = Number(values.rounds);
const root = path.resolve(import.meta.dirname, '..');
const TARGET_RATIO = 0.85;


async function start(entry: string, port: number): Promise<ChildProcess> {
  // The access log goes to /dev/null: written and serialized as in production, but not read back
  // by this process, which also runs the load generator.
  const child = spawn(process.execPath, [entry], {
    cwd: root,
    // Every service variable is set, so a local .env cannot change what is measured.
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      BASE_PATH: '',
      APP_VERSION: 'bench',
      GIT_COMMIT: 'bench',
      SHUTDOWN_TIMEOUT_MS: '1000',
      SHUTDOWN_DELAY_MS: '0',
      NODE_ENV: 'production',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`${entry} exited with ${child.exitCode}`);
    const up = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);
    if (up) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${entry} did not answer /health within 10 s`);
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

type Run = { rps: number; p50: number; p99: number; errors: number; cpuUsPerReq: number };
type Row = Run & { target: string; path: string; rss: number };

/** CPU seconds (user + system) the process has used, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / 100;
}

// Requests/s depend on how much CPU the neighbours leave; CPU time per request does not, so it
// is printed too: the server's cost per request, the figure that decides its capacity.
async function run(url: string, seconds: number, pid: number): Promise<Run> {
  const cpuBefore = cpuSeconds(pid);
  const r = await autocannon({ url, connections, duration: seconds });
  const cpuUsPerReq = ((cpuSeconds(pid) - cpuBefore) * 1e6) / r.requests.total;
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.non2xx, cpuUsPerReq };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

const paths = ['/health', '/items/5?q=bench'];
const targets = [
  { name: 'bare express', entry: 'bench/bare-app.mjs' },
  { name: 'berth service', entry: 'dist/service/server.js' },
];
// Both run as plain JavaScript under node, as the image runs the service: no TypeScript loader
// on either side of the comparison.
execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
console.log(
  `load: autocannon, ${connections} connections, ${rounds} alternating rounds of ${duration} s per target ` +
    `after ${warmup} s warm-up, loopback; figures are medians`,
);

// Both servers run for the whole benchmark and the measured runs alternate between them, so a
// busy neighbour on the machine slows both sides alike instead of skewing the ratio.
const servers: ((typeof targets)[number] & { port: number; child: ChildProcess })[] = [];
const rows: Row[] = [];
try {
  for (const t of targets) {
    const port = await freePort();
    servers.push({ ...t, port, child: await start(t.entry, port) });
  }
  for (const p of paths) {
    const runs = new Map<string, Run[]>(servers.map((s) => [s.name, []]));
    for (const s of servers) await run(`http://127.0.0.1:${s.port}${p}`, warmup, s.child.pid ?? 0);
    for (let i = 0; i < rounds; i++) {
      for (const s of servers) {
        runs.get(s.name)?.push(await run(`http://127.0.0.1:${s.port}${p}`, duration, s.child.pid ?? 0));
      }
    }
    for (const s of servers) {
      const r = runs.get(s.name) ?? [];
      rows.push({
        target: s.name,
        path: p,
        rps: median(r.map((x) => x.rps)),
        p50: median(r.map((x) => x.p50)),
        p99: median(r.map((x) => x.p99)),
        errors: r.reduce((n, x) => n + x.errors, 0),
        cpuUsPerReq: median(r.map((x) => x.cpuUsPerReq)),
        rss: rssMb(s.child.pid ?? 0),
      });
    }
  }
} finally {
  for (const s of servers) s.child.kill('SIGTERM');
}

const fmt = (n: number, d = 0) => n.toFixed(d).padStart(9);
console.log('\ntarget          path               req/s   p50 ms   p99 ms  CPU µs/req   RSS MB   errors');
for (const r of rows) {
  console.log(`${r.target.padEnd(15)} ${r.path.padEnd(16)} ${fmt(r.rps)} ${fmt(r.p50, 1)} ${fmt(r.p99, 1)} ${fmt(r.cpuUsPerReq, 1).padStart(11)} ${fmt(r.rss, 1)} ${fmt(r.errors)}`);
}
console.log(`\nratio service/bare, target >= ${TARGET_RATIO} for requests/s`);
console.log('path               req/s ratio   capacity ratio (bare CPU/req ÷ service CPU/req)');
let ok = true;
for (const p of paths) {
  const b = rows.find((r) => r.path === p && r.target === 'bare express');
  const s = rows.find((r) => r.path === p && r.target === 'berth service');
  if (!b || !s) continue;
  const ratio = s.rps / b.rps;
  ok &&= ratio >= TARGET_RATIO;
  const capacity = b.cpuUsPerReq / s.cpuUsPerReq;
  console.log(
    `${p.padEnd(18)} ${ratio.toFixed(3).padStart(11)} ${ratio >= TARGET_RATIO ? 'ok  ' : 'LOW '} ${capacity.toFixed(3).padStart(14)}`,
  );
}
process.exitCode = ok ? 0 : 1;
