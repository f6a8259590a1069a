// npm run bench:http [-- --duration 10 --connections 50]
// Drives the fully instrumented service and a bare Express app with the same load on loopback and
// prints requests/s, p50/p99 latency and RSS for each, and the ratio service/bare.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '2' },
  },
});
const duration = Number(values.duration);
const connections = Number(values.connections);
const warmup = Number(values.warmup);
const root = path.resolve(import.meta.dirname, '..');
const TARGET_RATIO = 0.85;

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function start(entry: string, port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', NODE_ENV: 'production' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // Drain the access log the way a container runtime would, without keeping it.
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('listening')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`${entry} exited with ${code}`)));
  });
  return child;
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

type Row = { target: string; path: string; rps: number; p50: number; p99: number; rss: number; errors: number };

async function load(url: string, seconds: number) {
  return autocannon({ url, connections, duration: seconds });
}

async function measure(target: string, entry: string, paths: string[]): Promise<Row[]> {
  const port = await freePort();
  const child = await start(entry, port);
  const rows: Row[] = [];
  try {
    for (const p of paths) {
      const url = `http://127.0.0.1:${port}${p}`;
      await load(url, warmup);
      const r = await load(url, duration);
      rows.push({
        target,
        path: p,
        rps: r.requests.average,
        p50: r.latency.p50,
        p99: r.latency.p99,
        rss: rssMb(child.pid ?? 0),
        errors: r.errors + r.non2xx,
      });
    }
  } finally {
    child.kill('SIGTERM');
  }
  return rows;
}

const paths = ['/health', '/items/5?q=bench'];
console.log(`load: autocannon, ${connections} connections, ${duration} s per run after ${warmup} s warm-up, loopback`);
const bare = await measure('bare express', 'bench/bare-app.ts', paths);
const service = await measure('berth service', 'src/service/server.ts', paths);

const fmt = (n: number, d = 0) => n.toFixed(d).padStart(9);
console.log('\ntarget          path               req/s   p50 ms   p99 ms   RSS MB   errors');
for (const r of [...bare, ...service]) {
  console.log(`${r.target.padEnd(15)} ${r.path.padEnd(16)} ${fmt(r.rps)} ${fmt(r.p50, 1)} ${fmt(r.p99, 1)} ${fmt(r.rss, 1)} ${fmt(r.errors)}`);
}
console.log('\nratio service/bare (requests/s), target >= ' + TARGET_RATIO);
let ok = true;
for (const p of paths) {
  const b = bare.find((r) => r.path === p);
  const s = service.find((r) => r.path === p);
  if (!b || !s) continue;
  const ratio = s.rps / b.rps;
  ok &&= ratio >= TARGET_RATIO;
  console.log(`${p.padEnd(18)} ${ratio.toFixed(3)} ${ratio >= TARGET_RATIO ? 'ok' : 'BELOW TARGET'}`);
}
process.exitCode = ok ? 0 : 1;
