// The deploy flow against a fake VM (no host): a small model of files, containers, images and the
// proxy's routing, driven by the same RemoteCommands the real VM gets. A healthy deploy is run
// once to count its commands; then, for every k, the run is repeated with command k failing and
// with the connection dropping right after command k ran (the worst case: the VM did it, the
// answer never came). After each run the VM must be in a state the final line tells the truth
// about: the lock released (or the line says `unlock`), the new container gone unless it serves,
// upstream.conf naming what nginx really routes to, and no `result=failed` for a serving version.
import { describe, expect, it } from 'vitest';
import { LABEL_DIGEST, LABEL_IMAGE } from '../../../src/deploy/commands/app.js';
import type { RemoteCommand } from '../../../src/deploy/commands/command.js';
import { envTag } from '../../../src/deploy/commands/images.js';
import { parseUpstream, upstreamConf } from '../../../src/deploy/commands/proxy.js';
import type { DeployConfig } from '../../../src/deploy/config.js';
import { Failure } from '../../../src/deploy/flow/advice.js';
import { deploy, rollback } from '../../../src/deploy/flow/deploy.js';
import { EXIT } from '../../../src/deploy/limits.js';
import { envPaths, settingsSnapshot } from '../../../src/deploy/paths.js';
import { CI_MARKER } from '../../../src/deploy/commands/settings.js';
import { parseHistory } from '../../../src/deploy/history.js';
import {
  buildCaddyConfig,
  edgeSettingsFromEnv,
  LETS_ENCRYPT,
  routeId,
  upstreamId,
  type Json,
} from '../../../src/edge/caddy.js';
import { failureLine, Reporter } from '../../../src/deploy/report.js';
import { SshError, type Executor, type RunResult } from '../../../src/deploy/ssh.js';

const ENV = 'staging' as const;
const P = envPaths('/opt/berth', ENV);
const ok = (stdout = ''): RunResult => ({ code: 0, stdout, stderr: '' });
const fail = (code = 1, stderr = 'no such thing'): RunResult => ({ code, stdout: '', stderr });
const OLD_DIGEST = `sha256:${'a'.repeat(64)}`;
const NEW_DIGEST = `sha256:${'b'.repeat(64)}`;
const NEW_REF = 'reg.example/berth:v2';
const DOMAIN = 'staging.example.com';
/** The operator's app.env before the run: a hand-kept key and an old value of a CI key. */
const APP_ENV_BEFORE = 'HAND=kept\nAPI_KEY=old\n';
const CI_SETTINGS = { API_KEY: 'from-ci' };
const APP_ENV_AFTER = `HAND=kept\n${CI_MARKER}\nAPI_KEY=from-ci\n`;

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
  log: RemoteCommand[] = [];
  /** The new image's /health fails. */
  newUnhealthy = false;
  /** `docker compose up proxy` fails (e.g. its image cannot be pulled). */
  proxyWontStart = false;
  /** What the release command's wrapper exits with (124: killed by its timeout). */
  releaseExit = 0;
  /** The release command's one-off container outlives the client (an answer that never came). */
  releaseLingers = false;
  /** One-off release containers that exist. */
  oneOffs = new Set<string>();
  /** The monitoring stack's targets directory exists (init_setup.sh made it). */
  monitoring = true;
  /** What the environment's .env and app.env hold of the keys the targets are made from. */
  settings = 'APP_PORT=8001\n--- app.env\nBASE_PATH=/api\n';
  /** .env has a DB_PASSWORD; the db container's state ('' = not created yet). */
  dbConfigured = true;
  dbState = '';
  /** `docker compose up db` gives up: the database never became healthy. */
  dbWontStart = false;
  /** APP_DOMAIN in .env: the switch includes the HTTPS edge (when one runs). */
  domain = '';
  /** The edge (Caddy): whether it runs, its running config, the lock in its /tmp. */
  edgeRunning = true;
  edgeConfig: Json = buildCaddyConfig(
    edgeSettingsFromEnv({}, [{ name: ENV, domain: DOMAIN, upstream: 'old:8000' }]),
  );
  /** The edge's settings file on the VM (its .env), as the deploy reads it. */
  edgeSettings = '';
  /** The edge's admin API refuses a whole config (POST /load). */
  edgeRefusesLoad = false;
  /** Commands that fail, by name. */
  failing = new Set<string>();
  /** The token of the run holding the edge's lock. */
  edgeLock: string | undefined;
  /** The clean-up's questions fail: where nginx routes, and the edge's admin API. */
  proxyUnasked = false;
  edgeUnasked = false;
  /** Containers on the shared network (the edge reaches only those). */
  shared = new Set(['old']);
  private nextIp = 10;

  constructor() {
    this.images.set('old-id', { id: 'old-id', digests: [`reg.example/berth@${OLD_DIGEST}`] });
    this.containers.set('old', {
      running: true,
      imageId: 'old-id',
      digest: OLD_DIGEST,
      source: 'reg.example/berth:v1',
      ip: '10.0.0.2',
    });
    this.files.set(P.appEnv, APP_ENV_BEFORE);
    this.files.set(P.upstream, upstreamConf('old', 'before'));
    this.loaded = upstreamConf('old', 'before');
    this.files.set(
      P.history,
      `time=2026-01-01T00:00:00Z action=deploy env=${ENV} image=reg.example/berth:v1 digest=${OLD_DIGEST} result=ok who=t\n`,
    );
  }

  routedTo(): string | undefined {
    const name = parseUpstream(this.loaded);
    return this.proxyRunning && name && this.containers.get(name)?.running ? name : undefined;
  }

  /** The container the edge sends the domain to, when it runs, is reachable and the host matches. */
  edgeRoutesTo(): string | undefined {
    const route = findId(this.edgeConfig, routeId(ENV)) as { match?: { host?: string[] }[] };
    const dial = findId(this.edgeConfig, upstreamId(ENV))?.dial;
    const name = typeof dial === 'string' ? dial.split(':')[0] : undefined;
    return this.edgeRunning &&
      route?.match?.[0]?.host?.[0] === this.domain &&
      name &&
      this.shared.has(name) &&
      this.containers.get(name)?.running
      ? name
      : undefined;
  }

  lockHeld(): boolean {
    return this.files.has(`${P.lock}/holder`);
  }

  /** Runs one command's effect and returns its answer: by the command's name, never its text. */
  exec(cmd: RemoteCommand): RunResult {
    this.log.push(cmd);
    if (this.failing.has(cmd.name)) return fail(1, `${cmd.name} failed (test)`);
    const handler = this.handlers[cmd.name];
    if (!handler) throw new Error(`fake VM: unknown command ${cmd.name}`);
    return handler(cmd.argv, cmd.stdin ?? '');
  }

  /** Each command by name, given its argv and stdin. */
  private readonly handlers: Record<string, (a: string[], stdin: string) => RunResult> = {
    // sh -c SCRIPT sh ARGS...: the arguments start at argv[4].
    'files.makeDirs': () => ok(),
    'files.write': (a, stdin) => (this.files.set(a[4] ?? '', stdin), ok()),
    'files.writeIfMissing': (a, stdin) => {
      if (this.files.has(a[4] ?? '')) return ok();
      this.files.set(a[4] ?? '', stdin);
      return ok('created\n');
    },
    'files.seedAppSettings': (a, stdin) => {
      const [appEnv = '', dotEnv = ''] = a.slice(4);
      if (this.files.has(appEnv)) return ok();
      const copy = this.files.get(dotEnv);
      this.files.set(appEnv, copy ?? stdin);
      return ok(copy === undefined ? 'created\n' : 'copied\n');
    },
    'files.read': (a) => ok(this.files.get(a[4] ?? '') ?? ''),
    'files.appendLine': (a) => (
      this.files.set(a[4] ?? '', `${this.files.get(a[4] ?? '') ?? ''}${a[5]}\n`),
      ok()
    ),
    'files.readTuning': () => ok(this.domain ? `APP_DOMAIN=${this.domain}\n` : ''),
    // The settings files, modelled on what the real scripts do (test/deploy/commands/settings.test.ts runs those).
    'settings.stage': (a, stdin) => {
      const [appEnv = '', staged = '', marker = '', keys = ''] = a.slice(4);
      const owned = new RegExp(keys.replace('[[:space:]]', '\\s') || '(?!)');
      const kept = (this.files.get(appEnv) ?? '')
        .split('\n')
        .filter((l) => l && (!keys || (l !== marker && !owned.test(l))));
      this.files.set(staged, kept.map((l) => `${l}\n`).join('') + stdin);
      return ok();
    },
    'settings.stageSnapshot': (a) => {
      const [snap = '', appEnv = '', staged = ''] = a.slice(4);
      const from = this.files.has(snap) ? snap : appEnv;
      this.files.set(staged, this.files.get(from) ?? '');
      return ok(from === snap ? 'snapshot\n' : 'current\n');
    },
    'settings.keep': (a) => {
      const [staged = '', snap = '', appEnv = ''] = a.slice(4);
      const content = this.files.get(staged);
      if (content === undefined) return fail(1, 'no staged settings');
      this.files.set(snap, content);
      this.files.set(appEnv, content);
      this.files.delete(staged);
      return ok();
    },
    'settings.prune': (a) => {
      const [dir = '', ...keep] = a.slice(4);
      for (const f of [...this.files.keys()])
        if (
          f.startsWith(`${dir}/`) &&
          f.endsWith('.env') &&
          !keep.some((t) => f === `${dir}/${t}.env`)
        )
          this.files.delete(f);
      return ok();
    },
    'lock.take': (a) => {
      if (this.lockHeld())
        return {
          code: EXIT.lockHeld,
          stdout: this.files.get(`${P.lock}/holder`) ?? '',
          stderr: '',
        };
      this.files.set(`${a[4]}/holder`, a[5] ?? '');
      return ok();
    },
    'lock.release': (a) => {
      if (this.files.get(`${a[4]}/holder`) === a[5]) this.files.delete(`${a[4]}/holder`);
      return ok();
    },
    'app.ensureNetwork': () => ok(),
    'compose.createProxy': () => ok(),
    'compose.startProxy': () => {
      if (this.proxyWontStart) return fail(1, 'pull access denied for nginx');
      this.proxyRunning = true;
      return ok();
    },
    // sh -s ACTION ARGS...: the arguments start at argv[3].
    'proxy.switch': (a) => {
      // The address the deploy passes must be the container's own (else the check never matches).
      const known = a[12] ?? '';
      if (known && known !== this.containers.get(a[5] ?? '')?.ip)
        return fail(EXIT.proxy.notSwitched, `passed ${known}, not the container's address`);
      return this.switchProxy(a[4] ?? '', a[5] ?? '', a[13] ?? '');
    },
    'proxy.routedAddress': () => {
      if (!this.proxyRunning || this.proxyUnasked) return fail(EXIT.proxy.notRunning, '');
      const to = this.routedTo();
      return ok(to ? `${this.containers.get(to)?.ip}:8000\n` : '\n');
    },
    'proxy.reload': () => {
      if (!this.proxyRunning) return fail(EXIT.proxy.notRunning, '');
      this.loaded = this.files.get(P.upstream) ?? '';
      return ok();
    },
    'proxy.running': () => ok(this.proxyRunning ? 'proxy-id\n' : ''),
    // docker ...: the last argument names the container or image.
    'images.pull': (a) => {
      if (a.at(-1) !== NEW_REF) return fail(1, 'manifest unknown');
      this.images.set(NEW_REF, { id: 'new-id', digests: [`reg.example/berth@${NEW_DIGEST}`] });
      return ok('new-id\n');
    },
    'images.inspect': (a) => {
      const img = this.image(a.at(-1) ?? '');
      return img
        ? ok(`${JSON.stringify(img.id)}\t${JSON.stringify(img.digests)}\n`)
        : fail(1, 'no such image');
    },
    'images.tags': (a) => {
      const img = this.image(a.at(-1) ?? '');
      return img
        ? ok(
            `${JSON.stringify([...this.images.entries()].filter(([, i]) => i.id === img.id).map(([ref]) => ref))}\n`,
          )
        : fail(1, 'no such image');
    },
    'images.tag': (a) => (
      this.images.set(a[3] ?? '', this.image(a[2] ?? '') ?? { id: a[2] ?? '', digests: [] }),
      ok()
    ),
    'images.listEnv': () => {
      const repo = `berth-${ENV}`;
      return ok(
        [...this.images.entries()]
          .filter(([ref]) => ref.startsWith(`${repo}:`))
          .map(([ref, i]) => `${repo} ${ref.split(':')[1]} ${i.id}`)
          .join('\n'),
      );
    },
    'images.remove': (a) => {
      for (const r of a.slice(2)) this.images.delete(r);
      return ok();
    },
    'app.inspect': (a) => {
      const box = this.containers.get(a.at(-1) ?? '');
      return box
        ? ok(
            `${box.running ? 'running' : 'exited'}\t0\t0\t2026-01-01T00:00:00Z\t${box.imageId}\t${box.digest}\t${box.source}\tberth-${ENV}_default=${box.ip} \n`,
          )
        : fail();
    },
    'app.address': (a) => {
      const box = this.containers.get(a.at(-1) ?? '');
      return box ? ok(`${box.ip}\n`) : fail();
    },
    // sh -s probe PROJECT NETWORK PROBE health URL ...: the container is the URL's host.
    'probe.health': (a) => {
      const target = this.containers.get(new URL(a[7] ?? 'http://x').hostname);
      if (this.newUnhealthy && target?.digest === NEW_DIGEST)
        return { code: 1, stdout: 'unhealthy: last answer HTTP 500\n', stderr: '' };
      return target?.running
        ? ok('healthy: 3 answers in a row, last HTTP 200\n')
        : fail(1, 'container is not running');
    },
    'app.list': () =>
      ok(
        [...this.containers.entries()]
          .map(([n, b]) => `${n} ${b.running ? 'running' : 'exited'}`)
          .join('\n'),
      ),
    'app.create': (a) => {
      const name = a[a.indexOf('--name') + 1] ?? '';
      const label = (k: string) => a.find((x) => x.startsWith(`${k}=`))?.slice(k.length + 1) ?? '';
      this.containers.set(name, {
        running: false,
        imageId: a.at(-1) ?? '',
        digest: label(LABEL_DIGEST),
        source: label(LABEL_IMAGE),
        ip: `10.0.0.${this.nextIp++}`,
      });
      return ok();
    },
    'app.start': (a) => this.setRunning(a.at(-1) ?? '', true),
    'app.stop': (a) => this.setRunning(a.at(-1) ?? '', false),
    'app.remove': (a) => {
      for (const n of a.slice(3)) this.containers.delete(n);
      return ok();
    },
    'app.joinNetwork': (a) => {
      const name = a.at(-1) ?? '';
      if (!this.containers.has(name)) return fail();
      this.shared.add(name);
      return ok();
    },
    'app.logs': () => ok('log line\n'),
    // sh -c SCRIPT sh NAME NETWORK SECONDS CREATE-ARGS...
    'release.run': (a) => {
      const name = a[4] ?? '';
      if (this.releaseLingers) this.oneOffs.add(name);
      if (this.releaseExit === 124)
        return {
          code: 124,
          stdout: 'migrating 1/3\n',
          stderr: 'berth: the release command ran longer than 1 s: killed\n',
        };
      if (this.releaseExit !== 0)
        return { code: this.releaseExit, stdout: 'migrating 1/3\n', stderr: 'boom: bad column\n' };
      return ok('migrated 3\n');
    },
    'release.remove': (a) => (this.oneOffs.delete(a.at(-1) ?? ''), ok()),
    'targets.checkDir': () => (this.monitoring ? ok() : fail(EXIT.targets.missing, '')),
    'targets.readSettings': () => ok(this.settings),
    'targets.remove': (a) => {
      for (const f of a.slice(4)) this.files.delete(f);
      return ok();
    },
    // sh -c SCRIPT sh FILE PARKED: a rename, either way, when the source exists.
    'targets.park': (a) => this.rename(a[4] ?? '', a[5] ?? '', 'parked'),
    'targets.unpark': (a) => this.rename(a[5] ?? '', a[4] ?? '', 'restored'),
    'edge.running': () => ok(this.edgeRunning ? 'running\n' : ''),
    'edge.readSettings': () => ok(this.edgeSettings),
    // sh -c SCRIPT sh CONTAINER LOCK TOKEN; docker exec CONTAINER sh -c SCRIPT sh LOCK TOKEN
    'edge.lock': (a) => {
      if (this.edgeLock !== undefined) return fail(75);
      this.edgeLock = a[6];
      return ok();
    },
    'edge.unlock': (a) => {
      if (this.edgeLock === a.at(-1)) this.edgeLock = undefined;
      return ok();
    },
    // docker exec berth-edge wget ... URL: GET unless it has --post-data.
    'edge.admin': (a) => {
      if (!this.edgeRunning || this.edgeUnasked) return fail(1, 'No such container');
      const path = (a.at(-1) ?? '').replace(/^http:\/\/[^/]+/, '');
      const body = a.includes('--post-data') ? a[a.indexOf('--post-data') + 1] : undefined;
      if (body === undefined) {
        const found = this.adminGet(path);
        return found === undefined
          ? fail(8, 'server returned error: HTTP/1.1 404')
          : ok(JSON.stringify(found));
      }
      return this.adminPost(path, body) ? ok() : fail(8, 'server returned error: HTTP/1.1 404');
    },
    // docker exec -i berth-edge sh -s ADMIN LOCK WAIT DOMAIN_PATH DOMAIN GRAFANA_PATH GRAFANA DIAL_PATH UPSTREAM HEALTH
    'edge.switch': (a) => {
      if (!this.edgeRunning) return fail(1, 'No such container');
      const [, , , domainPath = '', domain, , , dialPath = '', upstream = ''] = a.slice(6);
      if (this.edgeLock !== undefined)
        return {
          code: EXIT.edge.lockHeld,
          stdout: 'another deploy held the edge lock\n',
          stderr: '',
        };
      const name = upstream.split(':')[0] ?? '';
      if (!this.shared.has(name) || !this.containers.get(name)?.running)
        return {
          code: EXIT.edge.unreachable,
          stdout: `the edge cannot reach ${upstream}/health\n`,
          stderr: '',
        };
      if (this.adminGet(domainPath) !== domain)
        return { code: EXIT.edge.needsConfig, stdout: '', stderr: '' };
      const before = this.adminGet(dialPath);
      this.adminPost(dialPath, JSON.stringify(upstream));
      return ok(`${JSON.stringify(before)}\n`);
    },
    'db.configured': () => ok(this.dbConfigured ? 'yes\n' : 'no\n'),
    'db.state': () => ok(this.dbState ? `${this.dbState}\n` : ''),
    'db.volume': () => ok('berth-staging-db\n'),
    'db.start': () => {
      if (this.dbWontStart)
        return fail(1, 'dependency failed to start: container berth-staging-db-1 is unhealthy');
      this.dbState = 'running';
      return ok();
    },
  };

  /** GET /config/key/... or /id/ID/key/...: the node, or undefined (Caddy's 404). */
  private adminGet(path: string): unknown {
    if (path.startsWith('/config/')) return walk(this.edgeConfig, path.slice('/config/'.length));
    const [id = '', ...keys] = path.replace(/^\/id\//, '').split('/');
    return walk(path.startsWith('/id/') ? findId(this.edgeConfig, id) : undefined, keys.join('/'));
  }

  /** POST /load, or a key under an @id (Caddy sets it as PATCH would); false for a 404. */
  private adminPost(path: string, body: string): boolean {
    if (path === '/load') {
      if (this.edgeRefusesLoad) return false;
      this.edgeConfig = JSON.parse(body) as Json;
      return true;
    }
    const at = path.lastIndexOf('/');
    const node = this.adminGet(path.slice(0, at));
    if (!node || typeof node !== 'object') return false;
    (node as Record<string, unknown>)[path.slice(at + 1)] = JSON.parse(body);
    return true;
  }

  private rename(from: string, to: string, said: string): RunResult {
    const text = this.files.get(from);
    if (text === undefined) return { code: 0, stdout: '', stderr: '' };
    this.files.delete(from);
    this.files.set(to, text);
    return { code: 0, stdout: `${said}\n`, stderr: '' };
  }

  private image(refOrId: string) {
    return this.images.get(refOrId) ?? [...this.images.values()].find((i) => i.id === refOrId);
  }

  private setRunning(name: string, running: boolean): RunResult {
    const box = this.containers.get(name);
    if (!box) return fail();
    box.running = running;
    return ok();
  }

  private switchProxy(file: string, app: string, conf: string): RunResult {
    const before = this.files.get(file) ?? '';
    this.files.set(file, conf);
    if (!this.proxyRunning) return { code: EXIT.proxy.notRunning, stdout: '', stderr: '' };
    this.loaded = conf;
    if (this.routedTo() === app)
      return { code: 0, stdout: `switched to ${this.containers.get(app)?.ip}:8000\n`, stderr: '' };
    if (before.trim()) {
      this.files.set(file, before);
      this.loaded = before;
    }
    return { code: EXIT.proxy.notSwitched, stdout: 'not switched\n', stderr: '' };
  }
}

/** The node at a /config/ path (keys and array indices, / between them); undefined when none. */
function walk(node: unknown, path: string): unknown {
  for (const k of path.split('/').filter(Boolean))
    node = (node as Record<string, unknown> | undefined)?.[k];
  return node;
}

/** The object carrying `"@id": id` anywhere in a Caddy config, as the admin API's /id/ finds it. */
function findId(node: unknown, id: string): Record<string, unknown> | undefined {
  if (Array.isArray(node)) {
    for (const x of node) {
      const found = findId(x, id);
      if (found) return found;
    }
  } else if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if (o['@id'] === id) return o;
    for (const v of Object.values(o)) {
      const found = findId(v, id);
      if (found) return found;
    }
  }
  return undefined;
}

type Fault = { kind: 'fail' | 'drop'; at: number } | undefined;

/** `pullHangs`: the image pull runs until its signal ends it (then the log says so). */
function executor(vm: FakeVm, fault: Fault, counter: { n: number }, pullHangs = false): Executor {
  let dead = false;
  return {
    target: 'fake',
    close: () => {},
    // Asynchronous like the real one: a throw below reaches the flow as a rejection.
    run: (cmd, opts) =>
      pullHangs && cmd.name === 'images.pull'
        ? new Promise<RunResult>((_, reject) =>
            opts?.signal?.addEventListener(
              'abort',
              () => {
                vm.log.push({ name: 'images.pull ended', argv: [] });
                reject(new SshError('aborted', 'interrupted'));
              },
              { once: true },
            ),
          )
        : Promise.resolve().then(() => {
            if (dead)
              throw new SshError('lost', 'the SSH connection to fake was lost (cut by the test)');
            const k = ++counter.n;
            if (fault?.at === k && fault.kind === 'fail')
              return { code: 1, stdout: '', stderr: `injected failure at command ${k}` };
            const res = vm.exec(cmd);
            if (fault?.at === k && fault.kind === 'drop') {
              dead = true;
              throw new SshError('lost', 'the SSH connection to fake was lost (cut by the test)');
            }
            return res;
          }),
  };
}

const cfg = {
  host: 'vm',
  user: 'berth',
  port: 22,
  privateKey: '',
  knownHosts: '',
  remoteDir: '/opt/berth',
  healthPath: '/health',
  healthTimeoutS: 5,
  healthIntervalS: 0.1,
  healthSuccesses: 1,
  keep: 3,
  backupKeep: 7,
  lockWaitS: 0,
  network: 'berth',
  who: 'tester',
  appSettings: CI_SETTINGS,
} satisfies DeployConfig;

async function deployWith(
  fault: Fault,
  o: {
    cfg?: Partial<DeployConfig>;
    unhealthy?: boolean;
    setup?: (vm: FakeVm) => void;
    /** What changes on the VM by the time the clean-up reconnects. */
    onReconnect?: (vm: FakeVm) => void;
    pullHangs?: boolean;
  } = {},
) {
  const vm = new FakeVm();
  o.setup?.(vm);
  vm.newUnhealthy = o.unhealthy ?? false;
  const counter = { n: 0 };
  const lines: string[] = [];
  const report = new Reporter({ out: (l) => lines.push(l), err: (l) => lines.push(l) });
  const deps = {
    cfg: { ...cfg, ...o.cfg },
    env: ENV,
    exec: executor(vm, fault, counter, o.pullHangs),
    reconnect: () => {
      o.onReconnect?.(vm);
      return Promise.resolve(executor(vm, undefined, { n: 10_000 }));
    },
    report,
    signal: new AbortController().signal,
    files: { compose: 'services: {}\n', nginxConf: 'events {}\n' },
  };
  let final: string;
  let ok = false;
  try {
    await deploy(deps, NEW_REF);
    ok = true;
    final = `deployed ${ENV}: ${NEW_REF}`;
  } catch (err) {
    final =
      err instanceof Failure
        ? failureLine({ action: 'deploy', reason: err.reason, advice: err.advice })
        : `deploy failed: ${(err as Error).message}`;
  }
  return { vm, ok, final, lines, commands: counter.n };
}

/** The new container's name, if this run created one that still exists. */
const newBox = (vm: FakeVm) =>
  [...vm.containers.entries()].find(([, b]) => b.digest === NEW_DIGEST)?.[0];

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
    if (!/unlock/.test(final) && !r.lines.some((l) => /could not reconnect/.test(l)))
      expect(fresh, ctx).toBeUndefined();
  }
  // The lock is released, or the operator is told to break it.
  if (vm.lockHeld()) expect(`${final}\n${r.lines.join('\n')}`, ctx).toMatch(/unlock/);
  // upstream.conf names what nginx routes to: the next deploy can trust it, and it is never emptied.
  expect(parseUpstream(vm.files.get(P.upstream) ?? ''), ctx).toBe(serving);
  // app.env changes only with what serves: a refused run leaves the operator's file as it was.
  if (!newServes) expect(vm.files.get(P.appEnv), ctx).toBe(APP_ENV_BEFORE);
  if (ok) expect(vm.files.get(P.appEnv), ctx).toBe(APP_ENV_AFTER);
  // A serving version is never recorded as failed.
  const failedNew = parseHistory(vm.files.get(P.history) ?? '').filter(
    (e) => e.result === 'failed' && (e.image === NEW_REF || e.digest === '-'),
  );
  if (newServes) expect(failedNew, ctx).toEqual([]);
  // Exactly one final failure line.
  expect(
    r.lines.filter((l) => l.startsWith('deploy failed:')),
    ctx,
  ).toEqual([]);
}

const TARGETS = '/opt/berth/monitoring/prometheus/targets';

describe('monitoring follows the deploy', () => {
  it('writes the app and probe targets from the settings, after the new version joined the network', async () => {
    const r = await deployWith(undefined);
    expect(r.ok, r.final).toBe(true);
    expect(r.vm.files.get(`${TARGETS}/app-staging.yml`)).toMatch(
      /targets: \['berth-staging-app:8000'\]\n {2}labels: \{env: staging, __metrics_path__: '\/api\/metrics'\}/,
    );
    expect(r.vm.files.get(`${TARGETS}/probe-staging.yml`)).toContain(
      "'http://host.docker.internal:8001/api/health'",
    );
    const at = (name: string) => r.vm.log.findIndex((c) => c.name === name);
    expect(at('targets.checkDir')).toBeGreaterThan(at('app.joinNetwork'));
    expect(r.lines.join('\n')).toMatch(
      /✓ monitoring targets .*scrape berth-staging-app:8000\/api\/metrics, probe http/,
    );
  });

  it('restores the database target `down` parked, and says so', async () => {
    const parked = `${TARGETS}/postgres-staging.yml.down`;
    const r = await deployWith(undefined, { setup: (vm) => vm.files.set(parked, 'db target') });
    expect(r.ok, r.final).toBe(true);
    expect(r.vm.files.get(`${TARGETS}/postgres-staging.yml`)).toBe('db target');
    expect(r.vm.files.has(parked)).toBe(false);
    expect(r.lines.join('\n')).toMatch(/✓ monitoring targets .*; its database watched again$/m);
  });

  it('leaves the database target parked when the environment no longer has a database', async () => {
    const parked = `${TARGETS}/postgres-staging.yml.down`;
    const r = await deployWith(undefined, {
      setup: (vm) => {
        vm.files.set(parked, 'db target');
        vm.dbConfigured = false;
      },
    });
    expect(r.ok, r.final).toBe(true);
    expect(r.vm.files.get(parked)).toBe('db target');
    expect(r.vm.files.has(`${TARGETS}/postgres-staging.yml`)).toBe(false);
    expect(r.lines.join('\n')).not.toMatch(/database watched again/);
  });

  it('says in one line that a VM without the monitoring stack does not watch the environment', async () => {
    const r = await deployWith(undefined, { setup: (vm) => (vm.monitoring = false) });
    expect(r.ok, r.final).toBe(true);
    expect(r.lines.filter((l) => /monitoring/.test(l))).toEqual([
      expect.stringMatching(
        /^✓ monitoring targets .*no monitoring stack on the VM \(no \/opt\/berth\/monitoring\/prometheus\/targets\): staging is not watched$/,
      ),
    ]);
    expect([...r.vm.files.keys()].some((f) => f.startsWith(TARGETS))).toBe(false);
  });

  it('a loopback-only port gets no probe (and loses an old one); a bad setting only warns', async () => {
    const r = await deployWith(undefined, {
      setup: (vm) => {
        vm.settings = 'APP_BIND=127.0.0.1\n--- app.env\n';
        vm.files.set(`${TARGETS}/probe-staging.yml`, 'old');
      },
    });
    expect(r.ok, r.final).toBe(true);
    expect(r.vm.files.has(`${TARGETS}/probe-staging.yml`)).toBe(false);
    expect(r.vm.files.get(`${TARGETS}/app-staging.yml`)).toContain("__metrics_path__: '/metrics'");
    const bad = await deployWith(undefined, {
      setup: (vm) => (vm.settings = '--- app.env\nBASE_PATH=api\n'),
    });
    expect(bad.ok, bad.final).toBe(true);
    expect(bad.lines.join('\n')).toMatch(
      /BASE_PATH in app.env is not a path like \/api \(got "api"\); staging serves, but monitoring does not follow it yet/,
    );
  });
});

describe('the deploy flow against a fake VM, failing at every command', () => {
  it('a prepare that fails ends the pull begun beside it before the clean-up and the unlock', async () => {
    const r = await deployWith(undefined, {
      pullHangs: true,
      setup: (vm) => vm.failing.add('app.list'),
    });
    expect(r.ok).toBe(false);
    expect(r.final).toContain('cannot list containers');
    const n = r.vm.log.map((c) => c.name);
    expect(n).toContain('images.pull ended');
    expect(n.indexOf('images.pull ended')).toBeLessThan(n.lastIndexOf('lock.release'));
    expect(r.vm.lockHeld()).toBe(false);
  });

  it('a healthy deploy switches to the new container, stops the old, records and unlocks', async () => {
    const r = await deployWith(undefined);
    expect(r.ok, r.final).toBe(true);
    expect(r.vm.routedTo()).toBe(newBox(r.vm));
    expect(r.vm.containers.get('old')?.running).toBe(false);
    expect(r.vm.lockHeld()).toBe(false);
    expect(parseHistory(r.vm.files.get(P.history) ?? '').at(-1)).toMatchObject({
      result: 'ok',
      digest: NEW_DIGEST,
    });
    expect(r.commands).toBeGreaterThan(20);
  });

  it('the new container joins the shared network (BERTH_NETWORK) only after the switch, under the scrape alias', async () => {
    const r = await deployWith(undefined, { cfg: { network: 'shared-net' } });
    const at = (pred: (cmd: RemoteCommand) => boolean) => r.vm.log.findIndex(pred);
    const join = at((cmd) => cmd.name === 'app.joinNetwork');
    expect(r.vm.log[join]?.argv.slice(4)).toEqual([
      'shared-net',
      'berth-staging-app',
      newBox(r.vm),
    ]);
    expect(join).toBeGreaterThan(at((cmd) => cmd.name === 'proxy.switch'));
    expect(
      r.vm.log.some((cmd) => cmd.name === 'app.ensureNetwork' && cmd.argv.includes('shared-net')),
    ).toBe(true);
  });

  it('a candidate refused by the health check never joins the shared network; the old one keeps serving', async () => {
    const r = await deployWith(undefined, { unhealthy: true });
    expect(r.final).toMatch(
      /^deploy failed: the new container did not pass the health check.*old \(the version that served before\) keeps serving/,
    );
    expect(r.vm.log.some((cmd) => cmd.name === 'app.joinNetwork')).toBe(false);
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
    expect(r.final).toMatch(
      /^deploy failed: the proxy did not switch to the new container \(docker compose could not start the proxy: pull access denied/,
    );
    expect(parseUpstream(r.vm.files.get(P.upstream) ?? '')).toBe('old');
    expect(newBox(r.vm)).toBeUndefined();
    expect(r.vm.lockHeld()).toBe(false);
  });

  // An earlier run cut off between writing upstream.conf and a reload that took: file and nginx disagree.
  const leftover = (vm: FakeVm) =>
    vm.containers.set('cut-off', {
      running: true,
      imageId: 'old-id',
      digest: OLD_DIGEST,
      source: 'reg.example/berth:v1',
      ip: '10.0.0.5',
    });
  it('prepare trusts what nginx routes to, not upstream.conf: the container that really serves is kept', async () => {
    const r = await deployWith(
      { kind: 'fail', at: 1_000 },
      {
        unhealthy: true,
        setup: (vm) => {
          leftover(vm);
          vm.files.set(P.upstream, upstreamConf('cut-off', 'never loaded'));
        },
      },
    );
    expect(r.lines.join('\n')).toMatch(/the proxy routes to old, not to cut-off: keeping old/);
    expect(r.final).toMatch(/old \(the version that served before\) keeps serving/);
    expect(r.vm.routedTo()).toBe('old');
    expect(r.vm.containers.has('cut-off')).toBe(false);
    expect(parseUpstream(r.vm.files.get(P.upstream) ?? '')).toBe('old');
  });
  it('prepare keeps a leftover the proxy really routes to, and retires what upstream.conf named', async () => {
    const r = await deployWith(undefined, {
      unhealthy: true,
      setup: (vm) => {
        leftover(vm);
        vm.loaded = upstreamConf('cut-off', 'loaded');
      },
    });
    expect(r.vm.routedTo()).toBe('cut-off');
    expect(r.vm.containers.has('old')).toBe(false);
    expect(r.final).toMatch(/cut-off \(the version that served before\) keeps serving/);
  });

  it(
    'for every k: command k fails, or the connection drops after command k ran',
    { timeout: 120_000 },
    async () => {
      const total = (await deployWith(undefined)).commands;
      for (let k = 1; k <= total; k++) {
        for (const kind of ['fail', 'drop'] as const)
          assertTruthful(await deployWith({ kind, at: k }), `${kind} at ${k}/${total}`);
      }
    },
  );
});

describe('the :stable fallback against a fake VM, failing at every command', () => {
  // Nothing healthy runs (the old container stopped), the new image fails its health check: the
  // flow brings back berth-<env>:stable. Whatever command fails, the line must match what serves.
  const setup = (vm: FakeVm) => {
    const old = vm.containers.get('old');
    if (old) old.running = false;
    vm.images.set('berth-staging:stable', {
      id: 'old-id',
      digests: [`reg.example/berth@${OLD_DIGEST}`],
    });
  };
  const run = (fault: Fault) => deployWith(fault, { unhealthy: true, setup });

  it('brings back :stable and says so', async () => {
    const r = await run(undefined);
    expect(r.final).toMatch(
      /^deploy failed: the new container did not pass the health check.*:stable \(sha256:aaaa/,
    );
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
        expect(
          [...r.vm.containers.entries()]
            .filter(([n, b]) => b.running && n !== serving)
            .map(([n]) => n),
          ctx,
        ).toEqual([]);
        if (r.vm.lockHeld()) expect(`${r.final}\n${r.lines.join('\n')}`, ctx).toMatch(/unlock/);
      }
    }
  });
});

describe('the release command (DEPLOY_RELEASE_COMMAND) against a fake VM', () => {
  const release = { releaseCommand: ['node', 'dist/service/db/migrate.js'], releaseTimeoutS: 1 };
  const names = (r: { vm: FakeVm }) => r.vm.log.map((c) => c.name);

  it('runs once after the health check and before the switch, hardened, settings by file only', async () => {
    const r = await deployWith(undefined, { cfg: release });
    expect(r.ok, r.final).toBe(true);
    const n = names(r);
    expect(n.filter((x) => x === 'release.run')).toHaveLength(1);
    expect(n.indexOf('release.run')).toBeGreaterThan(n.indexOf('probe.health'));
    expect(n.indexOf('release.run')).toBeLessThan(n.indexOf('proxy.switch'));
    const argv = r.vm.log.find((c) => c.name === 'release.run')?.argv ?? [];
    expect(argv.slice(-3)).toEqual(['new-id', 'node', 'dist/service/db/migrate.js']);
    for (const flag of ['--read-only', '--cap-drop', 'no-new-privileges=true', P.stagedSettings])
      expect(argv).toContain(flag);
    expect(r.lines.join('\n')).toMatch(/✓ release command .*exited 0/);
  });

  it('no release command configured: no release step', async () => {
    const r = await deployWith(undefined);
    expect(names(r)).not.toContain('release.run');
    expect(r.lines.join('\n')).not.toMatch(/release command/);
  });

  for (const [exit, why] of [
    [3, /the release command `node dist\/service\/db\/migrate.js` failed \(exit 3\)/],
    [124, /ran longer than 1 s \(DEPLOY_RELEASE_TIMEOUT_S\) and was killed/],
  ] as const)
    it(`exit ${exit}: refused, the new container removed, the old one serves, history says why`, async () => {
      const r = await deployWith(undefined, {
        cfg: release,
        setup: (vm) => (vm.releaseExit = exit),
      });
      expect(r.ok).toBe(false);
      expect(r.final).toMatch(why);
      expect(r.final).toMatch(/old \(the version that served before\) keeps serving/);
      expect(r.vm.routedTo()).toBe('old');
      expect(newBox(r.vm)).toBeUndefined();
      expect(r.vm.lockHeld()).toBe(false);
      expect(names(r)).not.toContain('proxy.switch');
      const last = parseHistory(r.vm.files.get(P.history) ?? '').at(-1);
      expect(last).toMatchObject({ result: 'failed', digest: NEW_DIGEST });
      expect(JSON.stringify(last)).toMatch(why);
    });

  it("the failure carries the release command's last lines for the operator", async () => {
    const vm = new FakeVm();
    vm.releaseExit = 3;
    const deps = {
      cfg: { ...cfg, ...release },
      env: ENV,
      exec: executor(vm, undefined, { n: 0 }),
      reconnect: () => Promise.resolve(executor(vm, undefined, { n: 10_000 })),
      report: new Reporter({ out: () => {}, err: () => {} }),
      signal: new AbortController().signal,
      files: { compose: 'services: {}\n', nginxConf: 'events {}\n' },
    };
    const err = await deploy(deps, NEW_REF).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Failure);
    expect((err as Failure).extra.logs).toBe('migrating 1/3\nboom: bad column');
    expect((err as Failure).extra.logsOf).toBe('the release command');
  });

  it('the connection drops while the release command runs: clean-up removes its container and the new one', async () => {
    const at = names(await deployWith(undefined, { cfg: release })).indexOf('release.run') + 1;
    const r = await deployWith(
      { kind: 'drop', at },
      { cfg: release, setup: (vm) => (vm.releaseLingers = true) },
    );
    expect(r.vm.oneOffs.size, r.lines.join('\n')).toBe(0);
    expect(r.vm.routedTo()).toBe('old');
    expect(newBox(r.vm)).toBeUndefined();
    expect(r.vm.lockHeld()).toBe(false);
  });

  it('a rollback never runs the release command, and says so', async () => {
    const vm = new FakeVm();
    const lines: string[] = [];
    const deps = (exec: Executor) => ({
      cfg: { ...cfg, ...release },
      env: ENV,
      exec,
      reconnect: () => Promise.resolve(executor(vm, undefined, { n: 10_000 })),
      report: new Reporter({ out: (l) => lines.push(l), err: (l) => lines.push(l) }),
      signal: new AbortController().signal,
      files: { compose: 'services: {}\n', nginxConf: 'events {}\n' },
    });
    await deploy(deps(executor(vm, undefined, { n: 0 })), NEW_REF);
    const before = vm.log.filter((c) => c.name === 'release.run').length;
    expect(before).toBe(1);
    // Retention keeps the old version on the VM as berth-<env>:<digest>.
    vm.images.set(
      envTag(ENV, OLD_DIGEST),
      vm.images.get('old-id') ?? { id: 'old-id', digests: [] },
    );
    await rollback(deps(executor(vm, undefined, { n: 0 })), undefined);
    expect(vm.log.filter((c) => c.name === 'release.run')).toHaveLength(1);
    expect(vm.containers.get(vm.routedTo() ?? '')?.digest).toBe(OLD_DIGEST);
    expect(lines.join('\n')).toMatch(/release command: not run on a rollback/);
  });

  it(
    'for every k (release command configured): command k fails, or the connection drops after it',
    { timeout: 120_000 },
    async () => {
      const total = (await deployWith(undefined, { cfg: release })).commands;
      for (let k = 1; k <= total; k++)
        for (const kind of ['fail', 'drop'] as const) {
          const r = await deployWith({ kind, at: k }, { cfg: release });
          assertTruthful(r, `${kind} at ${k}/${total}`);
          expect(r.vm.oneOffs.size).toBe(0);
        }
    },
  );
});

describe("the app's settings (DEPLOY_APP_SETTINGS) against a fake VM", () => {
  const flowDeps = (vm: FakeVm, lines: string[]) => ({
    cfg,
    env: ENV,
    exec: executor(vm, undefined, { n: 0 }),
    reconnect: () => Promise.resolve(executor(vm, undefined, { n: 10_000 })),
    report: new Reporter({ out: (l) => lines.push(l), err: (l) => lines.push(l) }),
    signal: new AbortController().signal,
    files: { compose: 'services: {}\n', nginxConf: 'events {}\n' },
  });
  const envFileOf = (vm: FakeVm, name: string) => {
    const argv = vm.log.filter((c) => c.name === 'app.create').at(-1)?.argv ?? [];
    expect(argv).toContain(`--name`);
    expect(argv[argv.indexOf('--name') + 1]).toBe(name);
    return argv[argv.indexOf('--env-file') + 1];
  };

  it('a deploy starts the new container from the staged file, then it becomes app.env and the snapshot', async () => {
    const r = await deployWith(undefined);
    expect(r.ok, r.final).toBe(true);
    expect(envFileOf(r.vm, newBox(r.vm) ?? '')).toBe(P.stagedSettings);
    expect(r.vm.files.get(P.appEnv)).toBe(APP_ENV_AFTER);
    expect(r.vm.files.get(settingsSnapshot(P, NEW_DIGEST))).toBe(APP_ENV_AFTER);
    expect(r.vm.files.has(P.stagedSettings)).toBe(false);
    expect(r.lines.join('\n')).toMatch(/✓ settings .*API_KEY from CI; the rest of app.env kept/);
    // The value went on stdin only: never in an argument, never in a line printed.
    expect(r.vm.log.filter((c) => c.argv.join(' ').includes('from-ci'))).toEqual([]);
    expect(r.vm.log.filter((c) => c.stdin?.includes('from-ci')).map((c) => c.name)).toEqual([
      'settings.stage',
    ]);
    expect(r.lines.join('\n')).not.toContain('from-ci');
  });

  it('a rollback starts the old version with the settings it served with, and marks what it left', async () => {
    const vm = new FakeVm();
    vm.files.set(settingsSnapshot(P, OLD_DIGEST), 'OLD=settings\n');
    // Retention keeps the old version (image and snapshot) as berth-<env>:<digest>.
    vm.images.set(
      envTag(ENV, OLD_DIGEST),
      vm.images.get('old-id') ?? { id: 'old-id', digests: [] },
    );
    const lines: string[] = [];
    await deploy(flowDeps(vm, lines), NEW_REF);
    await rollback(flowDeps(vm, lines), undefined);
    const serving = vm.routedTo() ?? '';
    expect(vm.containers.get(serving)?.digest).toBe(OLD_DIGEST);
    expect(envFileOf(vm, serving)).toBe(P.stagedSettings);
    expect(vm.files.get(P.appEnv)).toBe('OLD=settings\n');
    expect(vm.files.get(settingsSnapshot(P, NEW_DIGEST))).toBe(APP_ENV_AFTER);
    expect(lines.join('\n')).toMatch(/✓ settings .*as aaaaaaaaaaaa last served with them/);
    expect(parseHistory(vm.files.get(P.history) ?? '').at(-1)).toMatchObject({
      action: 'rollback',
      digest: OLD_DIGEST,
      from: NEW_DIGEST,
    });
  });

  it('a rollback to a version with no snapshot says it uses the current app.env', async () => {
    const vm = new FakeVm();
    const lines: string[] = [];
    await deploy(flowDeps(vm, lines), NEW_REF);
    vm.images.set(
      envTag(ENV, OLD_DIGEST),
      vm.images.get('old-id') ?? { id: 'old-id', digests: [] },
    );
    await rollback(flowDeps(vm, lines), undefined);
    expect(lines.join('\n')).toMatch(
      /warning: no settings snapshot for aaaaaaaaaaaa \(deployed before Berth kept them\): it starts with the current app.env/,
    );
    expect(vm.files.get(P.appEnv)).toBe(APP_ENV_AFTER);
    // From now on it has one: the settings it served with this time.
    expect(vm.files.get(settingsSnapshot(P, OLD_DIGEST))).toBe(APP_ENV_AFTER);
  });

  it('prune keeps the snapshots of the versions whose image stays, and only those', async () => {
    const r = await deployWith(undefined, {
      setup: (vm) => {
        vm.files.set(`${P.settingsDir}/0123456789ab.env`, 'GONE=1\n');
        vm.files.set(settingsSnapshot(P, OLD_DIGEST), 'OLD=1\n');
        vm.images.set(
          envTag(ENV, OLD_DIGEST),
          vm.images.get('old-id') ?? { id: 'old-id', digests: [] },
        );
      },
    });
    expect(r.ok, r.final).toBe(true);
    const prune = r.vm.log.find((c) => c.name === 'settings.prune');
    expect(prune?.argv.slice(4).sort()).toEqual([P.settingsDir, 'aaaaaaaaaaaa', 'bbbbbbbbbbbb']);
    expect(r.vm.files.has(`${P.settingsDir}/0123456789ab.env`)).toBe(false);
    expect(r.vm.files.has(settingsSnapshot(P, OLD_DIGEST))).toBe(true);
  });
});

describe('the database step', () => {
  const dbCommands = (r: Awaited<ReturnType<typeof deployWith>>) =>
    r.vm.log.map((c) => c.name).filter((n) => n.startsWith('db.'));

  it('starts a database that does not run yet, before the new container starts', async () => {
    const r = await deployWith(undefined);
    expect(r.ok, r.final).toBe(true);
    expect(dbCommands(r)).toEqual(['db.configured', 'db.state', 'db.volume', 'db.start']);
    const n = r.vm.log.map((c) => c.name);
    expect(n.indexOf('db.start')).toBeLessThan(n.indexOf('app.create'));
    expect(r.vm.log.find((c) => c.name === 'db.start')?.argv).toEqual(
      expect.arrayContaining(['up', '-d', '--no-recreate', '--no-deps', '--wait', 'db']),
    );
    expect(r.lines.join('\n')).toMatch(/✓ database .*created and started/);
  });

  it('never runs compose on a running database (so a deploy can never recreate it)', async () => {
    const r = await deployWith(undefined, { setup: (vm) => (vm.dbState = 'running') });
    expect(r.ok, r.final).toBe(true);
    expect(dbCommands(r)).toEqual(['db.configured', 'db.state']);
    expect(r.lines.join('\n')).toMatch(/✓ database .*running, untouched/);
  });

  it('no DB_PASSWORD in .env: no database, the deploy goes on', async () => {
    const r = await deployWith(undefined, { setup: (vm) => (vm.dbConfigured = false) });
    expect(r.ok, r.final).toBe(true);
    expect(dbCommands(r)).toEqual(['db.configured']);
    expect(r.lines.join('\n')).toMatch(/database .*none \(no DB_PASSWORD in \.env/);
  });

  it('a database that does not become healthy refuses the deploy before anything else changed', async () => {
    const r = await deployWith(undefined, {
      setup: (vm) => (vm.dbWontStart = true),
    });
    expect(r.ok).toBe(false);
    expect(r.final).toMatch(/the database did not become healthy .*is unhealthy/);
    expect(r.vm.routedTo()).toBe('old');
    expect(newBox(r.vm)).toBeUndefined();
    expect(r.vm.lockHeld()).toBe(false);
  });
});

describe('with a domain (APP_DOMAIN): the HTTPS edge switches with nginx', () => {
  const withDomain = (vm: FakeVm) => (vm.domain = DOMAIN);
  // The edge has no site for the environment yet: its first deploy with a domain loads a whole config.
  const noSite = (vm: FakeVm) => {
    withDomain(vm);
    vm.edgeConfig = buildCaddyConfig(edgeSettingsFromEnv({}, []));
  };

  /** Besides assertTruthful: the domain is always served, by what nginx serves, and no edge lock is left. */
  function assertEdgeFollows(r: Awaited<ReturnType<typeof deployWith>>, label: string) {
    assertTruthful(r, label);
    const ctx = `${label}: ${r.final}\n${r.lines.join('\n')}`;
    const told = /puts the edge on what nginx serves|could not reconnect/.test(ctx);
    // A domain the edge never had a site for may stay without one when the run failed early.
    const site = findId(r.vm.edgeConfig, routeId(ENV));
    if (!told && (site || r.ok)) {
      expect(r.vm.edgeRoutesTo(), ctx).toBeDefined();
      expect(r.vm.edgeRoutesTo(), ctx).toBe(r.vm.routedTo());
    }
    expect(r.vm.edgeLock, ctx).toBeUndefined();
  }

  it('a healthy deploy moves the domain to the new container, which joined the shared network first', async () => {
    const r = await deployWith(undefined, { setup: withDomain });
    expect(r.ok, r.final).toBe(true);
    expect(r.vm.edgeRoutesTo()).toBe(newBox(r.vm));
    expect(r.vm.routedTo()).toBe(newBox(r.vm));
    const n = r.vm.log.map((c) => c.name);
    expect(n.indexOf('app.joinNetwork')).toBeLessThan(n.indexOf('edge.switch'));
    expect(n.indexOf('proxy.switch')).toBeLessThan(n.indexOf('edge.switch'));
    expect(r.lines.join('\n')).toMatch(/edge: staging\.example\.com -> berth-staging-app-/);
  });

  it('a first deploy with a domain adds the site for what serves, then switches it like any other', async () => {
    const r = await deployWith(undefined, { setup: noSite });
    expect(r.ok, r.final).toBe(true);
    expect(r.vm.edgeRoutesTo()).toBe(newBox(r.vm));
    expect(r.lines.join('\n')).toMatch(
      /the edge sent staging\.example\.com to nothing: now to old, which the proxy serves/,
    );
    expect(
      r.vm.log.filter((c) => c.name === 'edge.admin' && c.argv.at(-1)?.endsWith('/load')),
    ).toHaveLength(1);
  });

  it('no edge running: the deploy goes on through nginx and says the domain is not served over HTTPS', async () => {
    const r = await deployWith(undefined, {
      setup: (vm) => {
        withDomain(vm);
        vm.edgeRunning = false;
      },
    });
    expect(r.ok, r.final).toBe(true);
    expect(r.lines.join('\n')).toMatch(/APP_DOMAIN=staging\.example\.com, but no edge runs/);
  });

  it('a refused version never reaches the edge; the domain stays on the old container', async () => {
    const r = await deployWith(undefined, { setup: withDomain, unhealthy: true });
    expect(r.ok).toBe(false);
    expect(r.vm.log.some((c) => c.name === 'edge.switch')).toBe(false);
    expect(r.vm.edgeRoutesTo()).toBe('old');
  });

  // ACME_EMAIL set in the edge's settings since its config was loaded.
  const newContact = (vm: FakeVm) => {
    withDomain(vm);
    vm.edgeSettings = 'ACME_EMAIL=ops@example.com\n';
  };
  const issuerOf = (vm: FakeVm) => walk(vm.edgeConfig, 'apps/tls/automation/policies/0/issuers/0');
  const loads = (vm: FakeVm) =>
    vm.log.filter((c) => c.name === 'edge.admin' && c.argv.at(-1)?.endsWith('/load'));

  it("a changed issuer in the edge's settings goes into its running config before anything moves", async () => {
    const r = await deployWith(undefined, { setup: newContact });
    expect(r.ok, r.final).toBe(true);
    expect(issuerOf(r.vm)).toEqual({ module: 'acme', ca: LETS_ENCRYPT, email: 'ops@example.com' });
    expect(r.vm.edgeRoutesTo()).toBe(newBox(r.vm));
    // One whole config with the new issuer, loaded before the new container starts; then the
    // switch's usual one round trip.
    expect(loads(r.vm)).toHaveLength(1);
    const n = r.vm.log.map((c) => c.name);
    expect(r.vm.log.indexOf(loads(r.vm)[0]!)).toBeLessThan(n.indexOf('app.create'));
    expect(n).toContain('edge.switch');
    expect(r.lines.join('\n')).toContain(
      `the edge's certificate issuer now follows its settings (ACME_CA ${LETS_ENCRYPT}, ACME_EMAIL ops@example.com)`,
    );
  });

  it('an issuer as the settings say keeps the one-round-trip switch; settings that are not valid keep the issuer, said in one line', async () => {
    for (const [settings, said] of [
      ['', undefined],
      ['ACME_CA_ROOT=../etc/passwd\n', 'ACME_CA_ROOT must name a .pem or .crt file'],
      ['ACME_EMAIL=ops\n', 'ACME_EMAIL is not an email address'],
      ['ACME_CA=http://ca.example.com/dir\n', 'ACME_CA must be an https:// directory URL'],
    ] as const) {
      const r = await deployWith(undefined, {
        setup: (vm) => {
          withDomain(vm);
          vm.edgeSettings = settings;
        },
      });
      expect(r.ok, r.final).toBe(true);
      expect(r.vm.edgeRoutesTo()).toBe(newBox(r.vm));
      expect(r.vm.log.some((c) => c.name === 'edge.switch')).toBe(true);
      expect(loads(r.vm)).toHaveLength(0);
      expect(issuerOf(r.vm)).toEqual({ module: 'acme', ca: LETS_ENCRYPT });
      const warned = r.lines.filter((l) => l.includes("the edge's settings are not valid"));
      if (said) expect(warned.join('\n')).toContain(said);
      else expect(warned).toEqual([]);
    }
  });

  it('an edge that will not take the new issuer keeps its own, and the deploy goes on with a warning', async () => {
    const r = await deployWith(undefined, {
      setup: (vm) => {
        newContact(vm);
        vm.edgeRefusesLoad = true;
      },
    });
    expect(r.ok, r.final).toBe(true);
    expect(r.vm.edgeRoutesTo()).toBe(newBox(r.vm));
    expect(issuerOf(r.vm)).toEqual({ module: 'acme', ca: LETS_ENCRYPT });
    expect(r.lines.join('\n')).toMatch(
      /the edge refused the certificate issuer of its settings: .*it keeps the issuer it has/,
    );
  });

  for (const [what, setup] of [
    ['the site exists', withDomain],
    ['the site is new', noSite],
    ['the issuer changed', newContact],
  ] as const)
    it(
      `for every k (${what}): command k fails, or the connection drops after it`,
      { timeout: 120_000 },
      async () => {
        const total = (await deployWith(undefined, { setup })).commands;
        for (let k = 1; k <= total; k++)
          for (const kind of ['fail', 'drop'] as const)
            assertEdgeFollows(
              await deployWith({ kind, at: k }, { setup }),
              `${kind} at ${k}/${total}`,
            );
      },
    );

  describe('a connection lost right after the edge switched, and the clean-up cannot see nginx on it', () => {
    const atEdgeSwitch = async () =>
      (await deployWith(undefined, { setup: withDomain })).vm.log.findIndex(
        (c) => c.name === 'edge.switch',
      ) + 1;

    it('puts the edge back on the old container, then nginx, and removes the new one', async () => {
      const r = await deployWith(
        { kind: 'drop', at: await atEdgeSwitch() },
        { setup: withDomain, onReconnect: (vm) => (vm.proxyUnasked = true) },
      );
      expect(r.ok).toBe(false);
      expect(r.vm.edgeRoutesTo()).toBe('old');
      expect(parseUpstream(r.vm.loaded)).toBe('old');
      expect(newBox(r.vm)).toBeUndefined();
      expect(r.vm.edgeLock).toBeUndefined();
    });

    it('when the edge cannot be asked either, leaves the new container running and says so', async () => {
      const r = await deployWith(
        { kind: 'drop', at: await atEdgeSwitch() },
        {
          setup: withDomain,
          onReconnect: (vm) => {
            vm.proxyUnasked = true;
            vm.edgeUnasked = true;
          },
        },
      );
      const fresh = newBox(r.vm);
      expect(fresh).toBeDefined();
      expect(r.vm.containers.get(fresh ?? '')?.running).toBe(true);
      expect(r.lines.join('\n')).toMatch(
        /left berth-staging-app-\S+ running: the edge may send staging's domain to it; where staging's domain goes: the next deploy or rollback puts the edge on what nginx serves/,
      );
      expect(r.vm.edgeLock).toBeUndefined();
    });
  });
});
