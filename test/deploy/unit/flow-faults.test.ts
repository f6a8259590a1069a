// The deploy flow against a fake VM (no host): a small model of files, containers, images and the
// proxy's routing, driven by the same RemoteCommands the real VM gets. A healthy deploy is run
// once to count its commands; then, for every k, the run is repeated with command k failing and
// with the connection dropping right after command k ran (the worst case: the VM did it, the
// answer never came). After each run the VM must be in a state the final line tells the truth
// about: the lock released (or the line says `unlock`), the new container gone unless it serves,
// upstream.conf naming what nginx really routes to, and no `result=failed` for a serving version.
import { describe, expect, it } from 'vitest';
import * as c from '../../../src/deploy/commands.js';
import type { DeployConfig } from '../../../src/deploy/config.js';
import { EnvFlow, Failure } from '../../../src/deploy/flow.js';
import { parseHistory } from '../../../src/deploy/history.js';
import { failureLine, Reporter } from '../../../src/deploy/report.js';
import { SshError, type Executor, type RunResult } from '../../../src/deploy/ssh.js';

const ENV = 'staging' as const;
const P = c.envPaths('/opt/berth', ENV);
const OLD_DIGEST = `sha256:${'a'.repeat(64)}`;
const NEW_DIGEST = `sha256:${'b'.repeat(64)}`;
const NEW_REF = 'reg.example/berth:v2';

interface Box {
  running: boolean;
  imageId: string;
  digest: string;
  source: string;
  ip: string;
}

class FakeVm {
  files = new Map<string, string>();
  containers = new Map<string, Box>();
  images = new Map<string, { id: string; digests: string[] }>();
  proxyRunning = true;
  /** The upstream config nginx has loaded (what it routes to), not what the file says. */
  loaded = '';
  /** Every command that reached the VM, in order. */
  log: c.RemoteCommand[] = [];
  /** The new image's /health fails. */
  newUnhealthy = false;
  /** `docker compose up proxy` fails (e.g. its image cannot be pulled). */
  proxyWontStart = false;
  private nextIp = 10;

  constructor() {
    this.images.set('old-id', { id: 'old-id', digests: [`reg.example/berth@${OLD_DIGEST}`] });
    this.containers.set('old', { running: true, imageId: 'old-id', digest: OLD_DIGEST, source: 'reg.example/berth:v1', ip: '10.0.0.2' });
    this.files.set(P.upstream, c.upstreamConf('old', 'before'));
    this.loaded = c.upstreamConf('old', 'before');
    this.files.set(P.history, `time=2026-01-01T00:00:00Z action=deploy env=${ENV} image=reg.example/berth:v1 digest=${OLD_DIGEST} result=ok who=t\n`);
  }

  routedTo(): string | undefined {
    const name = c.parseUpstream(this.loaded);
    return this.proxyRunning && name && this.containers.get(name)?.running ? name : undefined;
  }

  lockHeld(): boolean {
    return this.files.has(`${P.lock}/holder`);
  }

  /** Runs one command's effect and returns its answer. */
  exec(cmd: c.RemoteCommand): RunResult {
    this.log.push(cmd);
    const a = cmd.argv;
    const ok = (stdout = ''): RunResult => ({ code: 0, stdout, stderr: '' });
    const fail = (code = 1, stderr = 'no such thing'): RunResult => ({ code, stdout: '', stderr });
    if (a[0] === 'sh') {
      const script = a[2] ?? '';
      const args = a.slice(4);
      if (script.includes("trap '' HUP PIPE")) return this.switchProxy(args[1] ?? '', args[2] ?? '', cmd.stdin ?? '');
      if (script.includes('routed "$id"')) {
        if (!this.proxyRunning) return fail(c.SWITCH.notRunning, '');
        const to = this.routedTo();
        return ok(to ? `${this.containers.get(to)?.ip}:8000\n` : '\n');
      }
      if (script.includes('if mkdir "$1"')) {
        if (this.lockHeld()) return { code: c.LOCK_HELD, stdout: this.files.get(`${P.lock}/holder`) ?? '', stderr: '' };
        this.files.set(`${args[0]}/holder`, args[1] ?? '');
        return ok();
      }
      if (script.includes('cat "$1/holder" 2>/dev/null)" = "$2"')) {
        if (this.files.get(`${args[0]}/holder`) === args[1]) this.files.delete(`${args[0]}/holder`);
        return ok();
      }
      if (script.startsWith('mkdir -p')) return ok();
      if (script.includes('[ -e "$1" ] && exit 0')) {
        if (this.files.has(args[0] ?? '')) return ok();
        this.files.set(args[0] ?? '', cmd.stdin ?? '');
        return ok('created\n');
      }
      if (script.startsWith('cat > "$1.tmp')) return (this.files.set(args[0] ?? '', cmd.stdin ?? ''), ok());
      if (script.startsWith('[ ! -e "$1" ] || cat')) return ok(this.files.get(args[0] ?? '') ?? '');
      if (script.startsWith('printf "%s\\n" "$2" >>')) return (this.files.set(args[0] ?? '', `${this.files.get(args[0] ?? '') ?? ''}${args[1]}\n`), ok());
      if (script.startsWith('grep -E')) return ok();
      if (script.startsWith('docker network inspect')) return ok();
      if (script.includes('-s reload')) {
        if (!this.proxyRunning) return fail(c.PROXY_NOT_RUNNING, '');
        this.loaded = this.files.get(P.upstream) ?? '';
        return ok();
      }
      if (script.startsWith('cd "$1"')) {
        if (!a.includes('-d')) return ok();
        if (this.proxyWontStart) return fail(1, 'pull access denied for nginx');
        this.proxyRunning = true;
        return ok();
      }
      throw new Error(`fake VM: unknown script ${script.slice(0, 60)}`);
    }
    const [, sub, third] = a;
    const last = a.at(-1) ?? '';
    const box = this.containers.get(last);
    if (sub === 'pull') {
      if (last !== NEW_REF) return fail(1, 'manifest unknown');
      this.images.set(NEW_REF, { id: 'new-id', digests: [`reg.example/berth@${NEW_DIGEST}`] });
      return ok('new-id\n');
    }
    if (sub === 'image' && third === 'inspect') {
      const img = this.images.get(last) ?? [...this.images.values()].find((i) => i.id === last);
      if (!img) return fail(1, 'no such image');
      if (a.includes(c.IMAGE_FORMAT)) return ok(`${JSON.stringify(img.id)}\t${JSON.stringify(img.digests)}\t${JSON.stringify([last])}\n`);
      return ok(`${JSON.stringify([...this.images.entries()].filter(([, i]) => i.id === img.id).map(([ref]) => ref))}\n`);
    }
    if (sub === 'container' && third === 'inspect') {
      if (!box) return fail();
      if (a.includes(c.CONTAINER_FORMAT)) return ok(`${box.running ? 'running' : 'exited'}\t0\t0\t2026-01-01T00:00:00Z\t${box.imageId}\t${box.digest}\t${box.source}\n`);
      return ok(`${box.ip}\n`);
    }
    if (sub === 'exec') {
      const target = this.containers.get(third ?? '');
      if (this.newUnhealthy && target?.digest === NEW_DIGEST && a.includes(c.HEALTH_SCRIPT)) return { code: 1, stdout: 'unhealthy: last answer HTTP 500\n', stderr: '' };
      return target?.running ? ok('healthy: 3 answers in a row, last HTTP 200\n') : fail(1, 'container is not running');
    }
    if (sub === 'ps' && a.includes('-a')) return ok([...this.containers.entries()].map(([n, b]) => `${n} ${b.running ? 'running' : 'exited'}`).join('\n'));
    if (sub === 'ps') return ok(this.proxyRunning ? 'proxy-id\n' : '');
    if (sub === 'create') {
      const name = a[a.indexOf('--name') + 1] ?? '';
      const label = (k: string) => a.find((x) => x.startsWith(`${k}=`))?.slice(k.length + 1) ?? '';
      this.containers.set(name, { running: false, imageId: last, digest: label(c.LABEL_DIGEST), source: label(c.LABEL_IMAGE), ip: `10.0.0.${this.nextIp++}` });
      return ok();
    }
    if (sub === 'start' || sub === 'stop') return box ? ((box.running = sub === 'start'), ok()) : fail();
    if (sub === 'rm') {
      for (const n of a.slice(3)) this.containers.delete(n);
      return ok();
    }
    if (sub === 'network' && third === 'connect') return box ? ok() : fail();
    if (sub === 'tag') return (this.images.set(last, this.images.get(a[2] ?? '') ?? [...this.images.values()].find((i) => i.id === a[2]) ?? { id: a[2] ?? '', digests: [] }), ok());
    if (sub === 'images') {
      const repo = `berth-${ENV}`;
      return ok([...this.images.entries()].filter(([ref]) => ref.startsWith(`${repo}:`)).map(([ref, i]) => `${repo} ${ref.split(':')[1]} ${i.id}`).join('\n'));
    }
    if (sub === 'rmi') {
      for (const r of a.slice(2)) this.images.delete(r);
      return ok();
    }
    if (sub === 'logs') return ok('log line\n');
    throw new Error(`fake VM: unknown command ${a.join(' ').slice(0, 80)}`);
  }

  private switchProxy(file: string, app: string, conf: string): RunResult {
    const before = this.files.get(file) ?? '';
    this.files.set(file, conf);
    if (!this.proxyRunning) return { code: c.SWITCH.notRunning, stdout: '', stderr: '' };
    this.loaded = conf;
    if (this.routedTo() === app) return { code: 0, stdout: `switched to ${this.containers.get(app)?.ip}:8000\n`, stderr: '' };
    if (before.trim()) {
      this.files.set(file, before);
      this.loaded = before;
    }
    return { code: c.SWITCH.notSwitched, stdout: 'not switched\n', stderr: '' };
  }
}

type Fault = { kind: 'fail' | 'drop'; at: number } | undefined;

function executor(vm: FakeVm, fault: Fault, counter: { n: number }): Executor {
  let dead = false;
  return {
    target: 'fake',
    close: () => {},
    async run(cmd) {
      if (dead) throw new SshError('lost', 'the SSH connection to fake was lost (cut by the test)');
      const k = ++counter.n;
      if (fault?.at === k && fault.kind === 'fail') return { code: 1, stdout: '', stderr: `injected failure at command ${k}` };
      const res = vm.exec(cmd);
      if (fault?.at === k && fault.kind === 'drop') {
        dead = true;
        throw new SshError('lost', 'the SSH connection to fake was lost (cut by the test)');
      }
      return res;
    },
  };
}

const cfg = {
  host: 'vm', user: 'berth', port: 22, privateKey: '', knownHosts: '', remoteDir: '/opt/berth', healthPath: '/health',
  healthTimeoutS: 5, healthIntervalS: 0.1, healthSuccesses: 1, keep: 3, lockWaitS: 0, network: 'berth', who: 'tester',
} satisfies DeployConfig;

async function deployWith(fault: Fault, o: { cfg?: Partial<DeployConfig>; unhealthy?: boolean; setup?: (vm: FakeVm) => void } = {}) {
  const vm = new FakeVm();
  o.setup?.(vm);
  vm.newUnhealthy = o.unhealthy ?? false;
  const counter = { n: 0 };
  const lines: string[] = [];
  const report = new Reporter({ out: (l) => lines.push(l), err: (l) => lines.push(l) });
  const flow = new EnvFlow({
    cfg: { ...cfg, ...o.cfg }, env: ENV, exec: executor(vm, fault, counter),
    reconnect: async () => executor(vm, undefined, { n: 10_000 }),
    report, signal: new AbortController().signal, files: { compose: 'services: {}\n', nginxConf: 'events {}\n' },
  });
  let final: string;
  let ok = false;
  try {
    await flow.deploy(NEW_REF);
    ok = true;
    final = `deployed ${ENV}: ${NEW_REF}`;
  } catch (err) {
    final = err instanceof Failure ? failureLine({ action: 'deploy', reason: err.reason, advice: err.advice }) : `deploy failed: ${(err as Error).message}`;
  }
  return { vm, ok, final, lines, commands: counter.n };
}

/** The new container's name, if this run created one that still exists. */
const newBox = (vm: FakeVm) => [...vm.containers.entries()].find(([, b]) => b.digest === NEW_DIGEST)?.[0];

function assertTruthful(r: Awaited<ReturnType<typeof deployWith>>, label: string) {
  const { vm, ok, final } = r;
  const serving = vm.routedTo();
  const fresh = newBox(vm);
  const ctx = `${label}: ${final}\n${r.lines.join('\n')}`;
  // Something healthy always serves: the old version or the new one.
  expect(serving, ctx).toBeDefined();
  const newServes = serving !== 'old';
  if (ok) expect(newServes, ctx).toBe(true);
  if (!ok) expect(final.startsWith('deploy failed: '), ctx).toBe(true);
  if (newServes) {
    expect(final, ctx).not.toMatch(/keeps serving|still serves/);
    if (!ok) expect(final, ctx).toMatch(/now serves/);
  } else {
    expect(final, ctx).not.toMatch(/now serves/);
    // The new container is gone unless it serves (or nobody could reconnect to remove it).
    if (!/unlock/.test(final) && !r.lines.some((l) => /could not reconnect/.test(l))) expect(fresh, ctx).toBeUndefined();
  }
  // The lock is released, or the operator is told to break it.
  if (vm.lockHeld()) expect(`${final}\n${r.lines.join('\n')}`, ctx).toMatch(/unlock/);
  // upstream.conf names what nginx routes to: the next deploy can trust it, and it is never emptied.
  expect(c.parseUpstream(vm.files.get(P.upstream) ?? ''), ctx).toBe(serving);
  // A serving version is never recorded as failed.
  const failedNew = parseHistory(vm.files.get(P.history) ?? '').filter((e) => e.result === 'failed' && (e.image === NEW_REF || e.digest === '-'));
  if (newServes) expect(failedNew, ctx).toEqual([]);
  // Exactly one final failure line.
  expect(r.lines.filter((l) => l.startsWith('deploy failed:')), ctx).toEqual([]);
}

describe('the deploy flow against a fake VM, failing at every command', () => {
  it('a healthy deploy switches to the new container, stops the old, records and unlocks', async () => {
    const r = await deployWith(undefined);
    expect(r.ok, r.final).toBe(true);
    expect(r.vm.routedTo()).toBe(newBox(r.vm));
    expect(r.vm.containers.get('old')?.running).toBe(false);
    expect(r.vm.lockHeld()).toBe(false);
    expect(parseHistory(r.vm.files.get(P.history) ?? '').at(-1)).toMatchObject({ result: 'ok', digest: NEW_DIGEST });
    expect(r.commands).toBeGreaterThan(20);
  });

  it('the new container joins the shared network (BERTH_NETWORK) only after the switch, under the scrape alias', async () => {
    const r = await deployWith(undefined, { cfg: { network: 'shared-net' } });
    const at = (pred: (cmd: c.RemoteCommand) => boolean) => r.vm.log.findIndex(pred);
    const join = at((cmd) => cmd.argv[1] === 'network' && cmd.argv[2] === 'connect');
    expect(r.vm.log[join]?.argv).toEqual(['docker', 'network', 'connect', '--alias', 'berth-staging-app', 'shared-net', newBox(r.vm)]);
    expect(join).toBeGreaterThan(at((cmd) => (cmd.argv[2] ?? '').includes("trap '' HUP PIPE")));
    expect(r.vm.log.some((cmd) => cmd.argv.join(' ').includes('network inspect') && cmd.argv.includes('shared-net'))).toBe(true);
  });

  it('a candidate refused by the health check never joins the shared network; the old one keeps serving', async () => {
    const r = await deployWith(undefined, { unhealthy: true });
    expect(r.final).toMatch(/^deploy failed: the new container did not pass the health check.*old \(the version that served before\) keeps serving/);
    expect(r.vm.log.some((cmd) => cmd.argv[1] === 'network' && cmd.argv[2] === 'connect')).toBe(false);
    expect(r.vm.routedTo()).toBe('old');
    expect(newBox(r.vm)).toBeUndefined();
  });

  it('a proxy that will not start: the deploy fails and upstream.conf names the old container again', async () => {
    const r = await deployWith(undefined, {
      setup: (vm) => {
        vm.proxyRunning = false;
        vm.proxyWontStart = true;
      },
    });
    expect(r.final).toMatch(/^deploy failed: the proxy did not switch to the new container \(docker compose could not start the proxy: pull access denied/);
    expect(c.parseUpstream(r.vm.files.get(P.upstream) ?? '')).toBe('old');
    expect(newBox(r.vm)).toBeUndefined();
    expect(r.vm.lockHeld()).toBe(false);
  });

  // An earlier run cut off between writing upstream.conf and a reload that took: file and nginx disagree.
  const leftover = (vm: FakeVm) => vm.containers.set('cut-off', { running: true, imageId: 'old-id', digest: OLD_DIGEST, source: 'reg.example/berth:v1', ip: '10.0.0.5' });
  it('prepare trusts what nginx routes to, not upstream.conf: the container that really serves is kept', async () => {
    const r = await deployWith({ kind: 'fail', at: 1_000 }, {
      unhealthy: true,
      setup: (vm) => {
        leftover(vm);
        vm.files.set(P.upstream, c.upstreamConf('cut-off', 'never loaded'));
      },
    });
    expect(r.lines.join('\n')).toMatch(/the proxy routes to old, not to cut-off: keeping old/);
    expect(r.final).toMatch(/old \(the version that served before\) keeps serving/);
    expect(r.vm.routedTo()).toBe('old');
    expect(r.vm.containers.has('cut-off')).toBe(false);
    expect(c.parseUpstream(r.vm.files.get(P.upstream) ?? '')).toBe('old');
  });
  it('prepare keeps a leftover the proxy really routes to, and retires what upstream.conf named', async () => {
    const r = await deployWith(undefined, {
      unhealthy: true,
      setup: (vm) => {
        leftover(vm);
        vm.loaded = c.upstreamConf('cut-off', 'loaded');
      },
    });
    expect(r.vm.routedTo()).toBe('cut-off');
    expect(r.vm.containers.has('old')).toBe(false);
    expect(r.final).toMatch(/cut-off \(the version that served before\) keeps serving/);
  });

  it('for every k: command k fails, or the connection drops after command k ran', { timeout: 120_000 }, async () => {
    const total = (await deployWith(undefined)).commands;
    for (let k = 1; k <= total; k++) {
      for (const kind of ['fail', 'drop'] as const) assertTruthful(await deployWith({ kind, at: k }), `${kind} at ${k}/${total}`);
    }
  });
});

describe('the :stable fallback against a fake VM, failing at every command', () => {
  // Nothing healthy runs (the old container stopped), the new image fails its health check: the
  // flow brings back berth-<env>:stable. Whatever command fails, the line must match what serves.
  const setup = (vm: FakeVm) => {
    const old = vm.containers.get('old');
    if (old) old.running = false;
    vm.images.set('berth-staging:stable', { id: 'old-id', digests: [`reg.example/berth@${OLD_DIGEST}`] });
  };
  const run = (fault: Fault) => deployWith(fault, { unhealthy: true, setup });

  it('brings back :stable and says so', async () => {
    const r = await run(undefined);
    expect(r.final).toMatch(/^deploy failed: the new container did not pass the health check.*:stable \(sha256:aaaa/);
    const serving = r.vm.routedTo();
    expect(r.vm.containers.get(serving ?? '')?.digest).toBe(OLD_DIGEST);
    expect(r.vm.lockHeld()).toBe(false);
  });

  it('for every k: the line tells the truth about what serves', { timeout: 120_000 }, async () => {
    const total = (await run(undefined)).commands;
    for (let k = 1; k <= total; k++) {
      for (const kind of ['fail', 'drop'] as const) {
        const r = await run({ kind, at: k });
        const serving = r.vm.routedTo();
        const ctx = `${kind} at ${k}/${total}: ${r.final}\n${r.lines.join('\n')}`;
        expect(r.final.startsWith('deploy failed: '), ctx).toBe(true);
        // Never "keeps serving" about a version that does not (the old container was stopped).
        expect(r.final, ctx).not.toMatch(/keeps serving/);
        if (serving) {
          expect(r.vm.containers.get(serving)?.digest, ctx).toBe(OLD_DIGEST);
          expect(r.final, ctx).toMatch(/:stable|now serves/);
        } else {
          expect(r.final, ctx).not.toMatch(/now serves/);
        }
        // Whatever is not serving is not left running.
        expect([...r.vm.containers.entries()].filter(([n, b]) => b.running && n !== serving).map(([n]) => n), ctx).toEqual([]);
        if (r.vm.lockHeld()) expect(`${r.final}\n${r.lines.join('\n')}`, ctx).toMatch(/unlock/);
      }
    }
  });
});
