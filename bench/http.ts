// npm run bench:http [-- --trials 8 --duration 3 --warmup 2 --connections 50 --sections bare,edge]
// Section "bare": drives the fully instrumented service and a bare Express app with the same load
// on loopback and prints requests/s, p50/p99 latency and RSS for each, and the ratio service/bare.
// Section "edge": the same service reached directly over HTTP and through the real Caddy edge over
// HTTPS (buildCaddyConfig's config, a certificate issued by pebble), same run; prints both, the
// ratio edge/direct and the CPU per request of the service and of Caddy.
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { switchUpstream, type AdminRequest } from '../src/edge/caddy.js';
import {
  edgeToolsReady,
  httpsGet,
  startCa,
  startEdge,
  waitForCertificate,
  type Ca,
  type Edge,
} from '../test/edge/harness.js';
import { freePort } from '../test/helpers/net.js';
import {
  allowedCpus,
  cpuSeconds,
  cpuTimes,
  median,
  root,
  startCompiled,
} from './service-process.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '2' },
    trials: { type: 'string', default: '8' },
    sections: { type: 'string', default: 'bare,edge' },
  },
});
const duration = Number(values.duration);
const connections = Number(values.connections);
const warmup = Number(values.warmup);
const trials = Number(values.trials);
const TARGET_RATIO = 0.85;
const sections = new Set(values.sections.split(','));
for (const name of sections)
  if (name !== 'bare' && name !== 'edge') throw new Error(`--sections: unknown section ${name}`);

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

// Everything started and not yet stopped, so an interrupted run (Ctrl-C, a kill) stops it too;
// an error stops it through the `finally` blocks.
const running = new Set<() => Promise<void> | void>();
async function stopAll(): Promise<void> {
  for (const stop of [...running].reverse()) await stop();
  running.clear();
}
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => void stopAll().finally(() => process.exit(130)));
function kill(child: ChildProcess): void {
  child.kill('SIGTERM');
}

type Run = {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  cpuUsPerReq: number;
  /** Caddy's CPU per request (user, kernel), when the load went through the edge. */
  edgeUs?: { user: number; system: number };
  /** This process's CPU per request: the load generator. */
  loadUsPerReq: number;
  /** Share of the server core the service (and Caddy) kept busy. */
  serverBusy: number;
};

interface Target {
  url: string;
  /** The service's pid. */
  pid: number;
  /** Caddy's pid, when the load goes through the edge. */
  edgePid?: number;
  headers?: Record<string, string>;
  servername?: string;
  tlsOptions?: object;
}

// Requests/s depend on how much CPU the neighbours leave; CPU time per request does not, so it
// is printed too: the server's cost per request, the figure that decides its capacity.
async function run(target: Target, seconds: number): Promise<Run> {
  const cpuBefore = cpuSeconds(target.pid);
  const edgeBefore = target.edgePid === undefined ? undefined : cpuTimes(target.edgePid);
  const loadBefore = process.cpuUsage();
  const r = await autocannon({
    url: target.url,
    connections,
    duration: seconds,
    headers: target.headers,
    servername: target.servername,
    tlsOptions: target.tlsOptions,
  });
  const load = process.cpuUsage(loadBefore);
  const n = r.requests.total;
  const serviceCpu = cpuSeconds(target.pid) - cpuBefore;
  const edgeAfter = target.edgePid === undefined ? undefined : cpuTimes(target.edgePid);
  const edge =
    edgeBefore && edgeAfter
      ? { user: edgeAfter.user - edgeBefore.user, system: edgeAfter.system - edgeBefore.system }
      : undefined;
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.non2xx,
    cpuUsPerReq: (serviceCpu * 1e6) / n,
    edgeUs: edge && { user: (edge.user * 1e6) / n, system: (edge.system * 1e6) / n },
    loadUsPerReq: (load.user + load.system) / n,
    serverBusy: (serviceCpu + (edge ? edge.user + edge.system : 0)) / r.duration,
  };
}

const paths = ['/health', '/items/5?q=bench'];
const fmt = (n: number, d = 0) => n.toFixed(d).padStart(9);

/** The columns both tables start with: what was measured, the path, req/s, p50, p99, the server's CPU µs/req. */
function leadColumns(
  label: string,
  labelWidth: number,
  p: string,
  m: (f: (r: Run) => number) => number,
  cpuWidth: number,
): string {
  return (
    `${label.padEnd(labelWidth)} ${p.padEnd(16)} ${fmt(m((r) => r.rps))} ${fmt(
      m((r) => r.p50),
      1,
    )} ` +
    `${fmt(
      m((r) => r.p99),
      1,
    )} ${fmt(
      m((r) => r.cpuUsPerReq),
      1,
    ).padStart(cpuWidth)}`
  );
}

// Both run as plain JavaScript under node, as the image runs the service: no TypeScript loader
// on either side of the comparison.
execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
if (pinned)
  execFileSync('taskset', ['-a', '-p', '-c', String(loadCpu), String(process.pid)], {
    stdio: 'ignore',
  });

let ok = true;
try {
  if (sections.has('bare')) ok = await compareBare();
  if (sections.has('edge')) await compareEdge();
} finally {
  await stopAll();
}
process.exitCode = ok ? 0 : 1;

/** Section "bare": the service against bare Express; true when the ratio meets the target. */
async function compareBare(): Promise<boolean> {
  const targets = [
    { name: 'bare express', entry: 'bench/bare-app.mjs' },
    { name: 'berth service', entry: 'dist/service/server.js' },
  ];
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
    type Server = (typeof targets)[number] & {
      port: number;
      child: ChildProcess;
      stop: () => void;
    };
    const servers: Server[] = [];
    try {
      for (const target of targets) {
        const port = await freePort();
        const child = await start(target.entry, port);
        const stop = () => kill(child);
        running.add(stop);
        servers.push({ ...target, port, child, stop });
      }
      // Alternate which side goes first (an even number of trials balances it), so neither
      // always runs on the warmer machine.
      if (t % 2 === 1) servers.reverse();
      for (const p of paths) {
        const trial: Trial = new Map();
        for (const s of servers) {
          const target = { url: `http://127.0.0.1:${s.port}${p}`, pid: s.child.pid ?? 0 };
          await run(target, warmup);
          trial.set(s.name, { ...(await run(target, duration)), rss: rssMb(target.pid) });
        }
        results.get(p)?.push(trial);
      }
    } finally {
      for (const s of servers) {
        s.stop();
        running.delete(s.stop);
      }
    }
    process.stdout.write(`trial ${t + 1}/${trials} done\n`);
  }

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
        `${leadColumns(target.name, 15, p, m, 11)} ${fmt(
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
  let met = true;
  for (const p of paths) {
    const pairs = (results.get(p) ?? []).map((trial) => ({
      b: trial.get('bare express'),
      s: trial.get('berth service'),
    }));
    const rps = pairs.map(({ b, s }) => (s?.rps ?? NaN) / (b?.rps ?? NaN));
    const capacity = pairs.map(({ b, s }) => (b?.cpuUsPerReq ?? NaN) / (s?.cpuUsPerReq ?? NaN));
    const ratio = median(rps);
    met &&= ratio >= TARGET_RATIO;
    console.log(
      `${p.padEnd(18)} ${ratio.toFixed(3).padStart(11)} ${ratio >= TARGET_RATIO ? 'ok  ' : 'LOW '} ${median(capacity).toFixed(3).padStart(17)}` +
        `${''.padStart(34)}${rps.map((r) => r.toFixed(2)).join(' ')}`,
    );
  }
  return met;
}

async function admin(edge: Edge, req: AdminRequest): Promise<void> {
  const r = await fetch(`http://127.0.0.1:${edge.adminPort}${req.path}`, {
    method: req.method,
    headers: { 'content-type': 'application/json' },
    body: req.body,
  });
  if (!r.ok) throw new Error(`edge admin ${req.method} ${req.path}: ${r.status} ${await r.text()}`);
}

/**
 * Section "edge": the service reached directly over plain HTTP against the same service process
 * reached through Caddy over HTTPS. Informational: no target, so it never fails the run.
 */
async function compareEdge(): Promise<void> {
  if (!edgeToolsReady()) {
    console.log(
      '\nedge section skipped: caddy, pebble or their test set-up is missing (see above)',
    );
    return;
  }
  const domain = 'api.berth.test';
  const site = 'production';
  const httpPort = await freePort();
  const httpsPort = await freePort();
  let ca: Ca | undefined;
  let edge: Edge | undefined;
  const stopEdge = async () => {
    await edge?.stop();
    await ca?.stop();
  };
  running.add(stopEdge);
  try {
    ca = await startCa(httpPort, httpsPort);
    // Caddy on the server core with the service: on the VM they share its CPUs too, so the
    // comparison shows the edge's cost in the service's own CPU budget. The upstream is a
    // placeholder until the first trial's service is up (each trial switches to a fresh one).
    edge = await startEdge(
      ca,
      { http: httpPort, https: httpsPort },
      [{ name: site, domain, upstream: '127.0.0.1:9' }],
      undefined,
      undefined,
      { cpu: pinned ? serverCpu : undefined },
    );
    const caRoot = await waitForCertificate(httpsPort, domain, ca);
    const edgePid = edge.proc.child.pid ?? 0;
    const caddyVersion = execFileSync('caddy', ['version'], { encoding: 'utf8' }).trim();
    let tlsSeen = '';

    console.log(
      `\nedge: the same service reached directly (plain HTTP) and through Caddy ${caddyVersion} ` +
        `(buildCaddyConfig's config, HTTPS with SNI ${domain} and a certificate issued by pebble); ` +
        `autocannon, ${connections} keep-alive connections on both sides, HTTP/1.1; ` +
        (pinned
          ? `the service AND Caddy on CPU ${serverCpu}, the load on CPU ${loadCpu}: direct, the ` +
            'service has the core to itself; via the edge, the service and Caddy share that one ' +
            "core, as they share the VM's CPUs, so the ratio is what the edge costs out of the " +
            'same CPU budget'
          : 'not pinned to CPUs (needs taskset and two CPUs)') +
        `; ${trials} trials, each with a fresh service process (Caddy switched to it through its ` +
        `admin API): ${warmup} s warm-up, then ${duration} s measured per side and path, back to ` +
        'back; figures are medians over the trials',
    );

    type Side = 'direct' | 'via edge';
    const results = new Map<string, Map<Side, Run>[]>(paths.map((p) => [p, []]));
    for (let t = 0; t < trials; t++) {
      const port = await freePort();
      const service = await start('dist/service/server.js', port);
      const stopService = () => kill(service);
      running.add(stopService);
      try {
        await admin(edge, switchUpstream(site, `127.0.0.1:${port}`));
        // autocannon 9 cannot verify a certificate: it passes `rejectUnauthorized: false` AFTER
        // the caller's tlsOptions (lib/httpClient.js). So the chain is verified here first, with
        // node's https trusting pebble's root alone, on the port and SNI the load then uses
        // without verification; the answer also proves the edge now reaches this trial's service.
        const check = await httpsGet(httpsPort, domain, caRoot, '/health');
        const issuer = String(check.cert?.issuer.CN ?? '');
        if (check.status !== 200 || check.protocol !== 'TLSv1.3' || !/Pebble/.test(issuer))
          throw new Error(
            `edge check: ${check.status} over ${check.protocol}, issuer ${issuer}: ${check.body}`,
          );
        tlsSeen =
          `${check.protocol}, certificate for ${check.cert?.subjectaltname} issued by ${issuer}, ` +
          "verified against pebble's root alone with node's https before the load (autocannon " +
          'itself cannot verify)';

        const sides: Side[] = t % 2 === 1 ? ['via edge', 'direct'] : ['direct', 'via edge'];
        for (const p of paths) {
          const trial = new Map<Side, Run>();
          for (const side of sides) {
            const target: Target =
              side === 'direct'
                ? { url: `http://127.0.0.1:${port}${p}`, pid: service.pid ?? 0 }
                : {
                    url: `https://127.0.0.1:${httpsPort}${p}`,
                    pid: service.pid ?? 0,
                    edgePid,
                    // The edge answers 421 when Host and SNI differ (strict_sni_host).
                    headers: { host: domain },
                    servername: domain,
                    tlsOptions: { minVersion: 'TLSv1.3' },
                  };
            await run(target, warmup);
            trial.set(side, await run(target, duration));
          }
          results.get(p)?.push(trial);
        }
      } finally {
        stopService();
        running.delete(stopService);
      }
      process.stdout.write(`edge trial ${t + 1}/${trials} done\n`);
    }
    console.log(`TLS: ${tlsSeen}`);

    console.log(
      '\nside      path               req/s   p50 ms   p99 ms  service µs/req  edge µs/req (user+kernel)  load µs/req  server core  errors',
    );
    for (const p of paths) {
      for (const side of ['direct', 'via edge'] as const) {
        const runs = (results.get(p) ?? []).map((t) => t.get(side)).filter((r) => r !== undefined);
        const m = (f: (r: Run) => number) => median(runs.map(f));
        const errors = runs.reduce((n, r) => n + r.errors, 0);
        const edgeCol =
          side === 'direct'
            ? '-'
            : `${m((r) => (r.edgeUs?.user ?? 0) + (r.edgeUs?.system ?? 0)).toFixed(1)} ` +
              `(${m((r) => r.edgeUs?.user ?? 0).toFixed(0)}+${m((r) => r.edgeUs?.system ?? 0).toFixed(0)})`;
        console.log(
          `${leadColumns(side, 9, p, m, 15)} ${edgeCol.padStart(26)} ` +
            `${fmt(
              m((r) => r.loadUsPerReq),
              1,
            ).padStart(12)} ` +
            `${`${(m((r) => r.serverBusy) * 100).toFixed(0)} %`.padStart(12)} ${fmt(errors).padStart(7)}`,
        );
      }
    }

    console.log('\nratio edge/direct per trial (median first)');
    console.log('path               req/s ratio   per trial (req/s)');
    for (const p of paths) {
      const ratios = (results.get(p) ?? []).map(
        (t) => (t.get('via edge')?.rps ?? NaN) / (t.get('direct')?.rps ?? NaN),
      );
      console.log(
        `${p.padEnd(18)} ${median(ratios).toFixed(3).padStart(11)}   ${ratios.map((r) => r.toFixed(2)).join(' ')}`,
      );
    }
    console.log('\nwhere the time goes (CPU per request, medians):');
    for (const p of paths) {
      const runs = results.get(p) ?? [];
      const m = (side: Side, f: (r: Run) => number) =>
        median(
          runs
            .map((t) => t.get(side))
            .filter((r) => r !== undefined)
            .map(f),
        );
      const direct = m('direct', (r) => r.cpuUsPerReq);
      const service = m('via edge', (r) => r.cpuUsPerReq);
      const user = m('via edge', (r) => r.edgeUs?.user ?? 0);
      const system = m('via edge', (r) => r.edgeUs?.system ?? 0);
      // The median of the sums, as in the table (the two parts' medians need not add up to it).
      const edgeTotal = m('via edge', (r) => (r.edgeUs?.user ?? 0) + (r.edgeUs?.system ?? 0));
      console.log(
        `${p}: direct, service ${direct.toFixed(0)} µs; via edge, service ${service.toFixed(0)} µs ` +
          `(${service >= direct ? '+' : ''}${(service - direct).toFixed(0)}) + ` +
          `edge ${edgeTotal.toFixed(0)} µs (TLS + proxy: ${user.toFixed(0)} µs in Caddy's own code, ` +
          `${system.toFixed(0)} µs in the kernel for its two sockets) = ${(service + edgeTotal).toFixed(0)} µs; ` +
          `one core's worth of CPU then serves ${(direct / (service + edgeTotal)).toFixed(2)} of the direct requests/s`,
      );
    }
  } finally {
    running.delete(stopEdge);
    await stopEdge();
  }
}
