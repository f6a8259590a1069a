// Deploy and rollback as the steps a person would take on the VM, each one named and timed.
// The rule every path follows: when this returns or throws, a healthy version serves (the old
// one, the new one, or :stable), the lock is released, and no half-started container is left.
import { randomBytes } from 'node:crypto';
import * as c from './commands.js';
import type { DeployConfig } from './config.js';
import { appAlias, envRepository, environmentInfo, environments, projectName, stableRef, type EnvName } from './environments.js';
import { judgeHealth, parseContainerState, type ContainerState } from './health.js';
import { findVersion, formatEntry, healthyDigests, parseHistory, previousHealthy, repositoryOf, type Action, type HistoryEntry, type Outcome } from './history.js';
import { acquire, type HeldLock } from './lock.js';
import type { Reporter } from './report.js';
import { planRetention } from './retention.js';
import { connectionLost, SshError, type Executor, type RunResult } from './ssh.js';

/** A failure with the one-line reason and the advice the operator gets. */
export class Failure extends Error {
  override name = 'Failure';
  constructor(
    readonly reason: string,
    readonly advice: string,
    readonly extra: { logs?: string; rolledBack?: boolean; digest?: string } = {},
  ) {
    super(reason);
  }
}

export interface LocalFiles {
  compose: string;
  nginxConf: string;
}

export interface FlowDeps {
  cfg: DeployConfig;
  env: EnvName;
  exec: Executor;
  /** A fresh connection, for cleaning up after the first one was lost. */
  reconnect: () => Promise<Executor>;
  report: Reporter;
  signal: AbortSignal;
  files: LocalFiles;
}

export interface FlowResult {
  image: string;
  digest: string;
  rolledBack: boolean;
}

interface Target {
  /** What `docker create` runs: an image id. */
  id: string;
  /** What the user asked for, for labels and history. */
  source: string;
  digest: string;
}

interface Live {
  name: string;
  state?: ContainerState;
  healthy: boolean;
}

const LOG_LINES = 30;
/** Requests through the proxy (about 0.5-1 s apart) before a switch counts as not taken. */
const SWITCH_TRIES = 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const lastLine = (text: string) => text.trim().split('\n').filter(Boolean).at(-1) ?? '';

export function containerName(env: EnvName, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `${projectName(env)}-app-${stamp}-${randomBytes(2).toString('hex')}`;
}

export function defaultDotEnv(env: EnvName): string {
  return [
    `# Settings of Berth's ${env} environment on this VM. Created by the first deploy; yours to edit,`,
    '# the deploy never overwrites it. The app container reads every line; docker compose reads',
    '# APP_PORT / APP_BIND / PROXY_IMAGE for the proxy.',
    `APP_PORT=${environmentInfo[env].port}`,
    'LOG_LEVEL=info',
    '',
  ].join('\n');
}

/** Picks the registry digest of a pulled image: the one for the repository that was asked for. */
export function pickDigest(ref: string, repoDigests: string[]): string | undefined {
  const asked = /@(sha256:[0-9a-f]{64})$/.exec(ref)?.[1];
  if (asked) return asked;
  const repo = repositoryOf(ref).replace(/^docker\.io\/(library\/)?/, '');
  const match = repoDigests.find((d) => repositoryOf(d).replace(/^(docker\.io|localhost)\/(library\/)?/, '') === repo) ?? repoDigests[0];
  return match?.split('@')[1];
}

export class EnvFlow {
  private exec: Executor;
  private readonly p: c.EnvPaths;
  private lock?: HeldLock;
  /** A container this run started and has not yet put behind the proxy. */
  private pending?: string;
  private tuning: c.Tuning = {};
  private composeVars: Record<string, string>;
  /** The upstream file before a switch began; put back if the switch does not complete. */
  private upstreamBefore?: string;
  /** Where this run stands: a lost connection means different things before and after the switch. */
  private phase: 'before' | 'switching' | 'switched' = 'before';
  /** What serves once the switch went through (for a true message if recording then fails). */
  private switched?: { source: string; name: string };
  /** What served when this run began. */
  private live?: Live;

  constructor(private readonly d: FlowDeps) {
    this.exec = d.exec;
    this.p = c.envPaths(d.cfg.remoteDir, d.env);
    this.composeVars = { BERTH_NETWORK: d.cfg.network, ...(d.cfg.proxyImage ? { PROXY_IMAGE: d.cfg.proxyImage } : {}) };
  }

  /**
   * Only long waits (pull, health check) are cut short by Ctrl-C; short commands finish, so the
   * VM is never left between two halves of one step. Steps check for an interrupt as they begin.
   */
  private async run(cmd: c.RemoteCommand, timeoutMs = 60_000, abortable = false): Promise<RunResult> {
    return this.exec.run(cmd, { timeoutMs, signal: abortable ? this.d.signal : undefined });
  }

  private checkInterrupt(): void {
    if (this.d.signal.aborted) throw new SshError('aborted', 'interrupted');
  }

  /** Runs a command that must succeed; otherwise throws with `what` and the command's last stderr line. */
  private async must(cmd: c.RemoteCommand, what: string, timeoutMs?: number): Promise<RunResult> {
    const res = await this.run(cmd, timeoutMs);
    if (res.code !== 0) throw new Error(`${what}: ${lastLine(res.stderr) || lastLine(res.stdout) || `exit ${res.code}`}`);
    return res;
  }

  // -------------------------------------------------------------------------------------------
  // the two entry points

  async deploy(image: string): Promise<FlowResult> {
    return this.locked('deploy', image, async () => {
      const live = await this.d.report.step('prepare', () => this.prepare(), (l) => (l ? `live: ${l.name}${l.healthy ? '' : ' (not healthy)'}` : 'first deploy'));
      this.live = live;
      const target = await this.d.report.step('pull image', () => this.pull(image), (t) => c.envTag(this.d.env, t.digest).split(':')[1]);
      return this.activate(target, live, 'deploy');
    });
  }

  async rollback(version: string | undefined): Promise<FlowResult> {
    return this.locked('rollback', version ?? 'previous', async () => {
      const live = await this.d.report.step('prepare', () => this.prepare(), (l) => (l ? `live: ${l.name}` : 'nothing serving'));
      this.live = live;
      const target = await this.d.report.step('find version', () => this.findTarget(version, live), (t) => `${t.source} ${c.envTag(this.d.env, t.digest).split(':')[1]}`);
      return this.activate(target, live, 'rollback');
    });
  }

  // -------------------------------------------------------------------------------------------

  private async locked(action: Action, image: string, body: () => Promise<FlowResult>): Promise<FlowResult> {
    try {
      this.lock = await this.d.report.step('lock', () => acquire(this.exec, this.p.lock, this.d.cfg.who, action, this.d.cfg.lockWaitS, this.d.signal, (holder) =>
          this.d.report.info(`waiting up to ${this.d.cfg.lockWaitS} s for the ${this.d.env} lock, held by ${holder}`),
        ),
      );
    } catch (err) {
      // The remote mkdir may have run before the answer was lost: the lock may now be ours.
      if (connectionLost(err))
        throw new Failure(`${err.message} while taking the ${this.d.env} lock`, `Nothing was deployed; the lock may be left behind: if no deploy runs, \`npm run deploy -- unlock --env ${this.d.env}\``);
      throw err;
    }
    let result: FlowResult | undefined;
    let outcome: unknown;
    try {
      result = await body();
    } catch (err) {
      outcome = err ?? new Error('unknown error');
    }
    // Clean up first: only then is it known whether a switch cut off by a lost connection went through.
    await this.cleanUp(action, image, outcome);
    if (outcome !== undefined || !result) throw await this.explain(outcome);
    return result;
  }

  /** Turns SSH trouble and interrupts into Failures (after cleaning up what can be cleaned). */
  private async explain(err: unknown): Promise<unknown> {
    if (err instanceof Failure) return err;
    const why = err instanceof Error ? err.message : String(err);
    if (this.phase === 'switched' && this.switched) {
      return new Failure(`${this.switched.source} now serves ${this.d.env} (${this.switched.name}); recording failed: ${why}`, `The :stable tag and history may be stale: check \`npm run deploy -- status --env ${this.d.env}\`, then deploy again`);
    }
    const before = this.live?.healthy ? `${this.live.name} (the version that served before) keeps serving` : `${this.d.env} serves what it served before this run (nothing healthy was running)`;
    if (err instanceof SshError && err.kind === 'aborted') return new Failure('interrupted', `The new version was not switched on; ${before}`);
    if (err instanceof SshError) return new Failure(err.message, `The proxy was not switched; ${before}. The next deploy removes anything this one left behind`);
    return new Failure(why, `The proxy was not switched; ${before}`);
  }

  /** Removes a container this run started but never switched to, records the outcome, releases the lock. */
  private async cleanUp(action: Action, image: string, outcome: unknown): Promise<void> {
    if (connectionLost(outcome) && !(await this.reconnect())) return;
    const quiet = async (cmd: c.RemoteCommand) => this.exec.run(cmd, { timeoutMs: 30_000 }).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));

    if (this.phase === 'switching' && this.pending) {
      // Cut off while the switch script ran: what the proxy routes to decides, not what was planned.
      if (await this.serves(this.pending)) {
        this.phase = 'switched';
        this.switched ??= { source: image, name: this.pending };
        this.pending = undefined;
      } else if (this.upstreamBefore?.trim()) {
        // Never an empty file: that would leave nginx without an upstream (a first deploy cut off mid-switch).
        await quiet(c.writeFile(this.p.upstream, this.upstreamBefore));
        await quiet(c.reloadProxy(this.d.env));
      }
      this.upstreamBefore = undefined;
    }
    if (this.pending) {
      const r = await quiet(c.removeContainers([this.pending]));
      if (r.code === 0) this.d.report.info(`removed the new container ${this.pending}`);
      else this.d.report.warn(`could not remove ${this.pending}: ${lastLine(r.stderr)}`);
      this.pending = undefined;
    }
    // A version that serves is never recorded as failed; its own record (or the lack of it) stands.
    if (outcome !== undefined && this.phase !== 'switched' && !(outcome instanceof Failure && outcome.extra.rolledBack)) {
      const digest = outcome instanceof Failure ? outcome.extra.digest : undefined;
      const reason = outcome instanceof Error ? (outcome instanceof Failure ? outcome.reason : outcome.message) : String(outcome);
      await quiet(c.appendLine(this.p.history, this.entry(action, image, digest ?? '-', 'failed', reason)));
    }
    await this.releaseLock(outcome);
  }

  /** A second connection after the first was lost; false (with what to do) when there is none. */
  private async reconnect(): Promise<boolean> {
    try {
      this.exec = await this.d.reconnect();
      this.d.report.info('reconnected to clean up');
      return true;
    } catch (err) {
      this.d.report.warn(`could not reconnect to clean up (${(err as Error).message}); the lock stays: after checking the VM run \`npm run deploy -- unlock --env ${this.d.env}\``);
      return false;
    }
  }

  /** Releases the lock, reconnecting once if the connection went away (e.g. during prune). */
  private async releaseLock(outcome: unknown): Promise<void> {
    if (!this.lock) return;
    const unlock = `npm run deploy -- unlock --env ${this.d.env}`;
    let why = '';
    for (const attempt of [1, 2]) {
      try {
        await this.lock.release(this.exec);
        return;
      } catch (err) {
        why = (err as Error).message;
        if (attempt === 1 && connectionLost(err) && (await this.reconnect())) continue;
        break;
      }
    }
    if (outcome !== undefined) {
      this.d.report.warn(`could not release the lock (${why}): run \`${unlock}\``);
      return;
    }
    // Success otherwise, but a held lock blocks every later deploy: say so and exit non-zero.
    const serving = this.switched ? `${this.switched.source} now serves ${this.d.env}, ` : '';
    throw new Failure(`${serving}but the lock could not be released (${why})`, `Run \`${unlock}\``);
  }

  private entry(action: Action, image: string, digest: string, result: Outcome, reason?: string): string {
    const e: HistoryEntry = { time: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), action, env: this.d.env, image, digest, result, who: this.d.cfg.who, reason };
    return formatEntry(e);
  }

  // -------------------------------------------------------------------------------------------
  // steps

  /** Files up, network there, what serves now, leftovers of an interrupted deploy gone. */
  private async prepare(): Promise<Live | undefined> {
    const { p } = this;
    this.checkInterrupt();
    await this.must(c.makeDirs(p.dir, p.proxyDir), `cannot create ${p.dir}`);
    await this.must(c.writeFile(p.compose, this.d.files.compose), `cannot write ${p.compose}`);
    await this.must(c.writeFile(p.nginxConf, this.d.files.nginxConf), `cannot write ${p.nginxConf}`);
    const created = await this.must(c.writeFileIfMissing(p.env, defaultDotEnv(this.d.env)), `cannot create ${p.env}`);
    if (created.stdout.includes('created')) this.d.report.info(`created ${p.env} with defaults (edit it on the VM for the app's settings)`);
    await this.must(c.ensureNetwork(this.d.cfg.network), `cannot create the docker network ${this.d.cfg.network}`);
    this.tuning = c.parseTuning((await this.must(c.readTuning(p.env), 'cannot read .env')).stdout);

    let live = await this.liveContainer();
    const all = (await this.must(c.listAppContainers(this.d.env), 'cannot list containers')).stdout.split('\n').filter(Boolean);
    let leftovers = all.map((l) => l.split(' ')).filter(([name, state]) => name !== live?.name && /^(running|restarting|created|paused)$/i.test(state ?? '')).map(([name]) => name as string);
    if (leftovers.length > 0) {
      // An earlier run was cut off: upstream.conf may name a container nginx never switched to
      // (or the other way round). What the proxy routes to decides which one is live.
      const routed = live && (await this.serves(live.name, 2)) ? undefined : await this.firstServing(leftovers);
      if (routed) {
        this.d.report.info(`the proxy routes to ${routed}, not to ${live?.name ?? 'what upstream.conf names'}: keeping ${routed}`);
        await this.must(c.writeFile(p.upstream, c.upstreamConf(routed, `found serving ${new Date().toISOString()}`)), 'cannot write the proxy upstream');
        leftovers = [...leftovers.filter((n) => n !== routed), ...(live && live.state?.status === 'running' ? [live.name] : [])];
        live = await this.liveContainer();
      }
    }
    if (leftovers.length > 0) {
      await this.must(c.removeContainers(leftovers), 'cannot remove containers left by an interrupted deploy');
      this.d.report.info(`removed ${leftovers.length} container(s) left by an interrupted deploy: ${leftovers.join(', ')}`);
    }
    const proxy = await this.must(c.proxyRunning(this.d.env), 'cannot look for the proxy');
    if (!proxy.stdout.trim()) await this.must(c.createProxy(this.d.env, p.dir, this.composeVars), 'docker compose could not create the proxy', 300_000);
    return live;
  }

  private async firstServing(names: string[]): Promise<string | undefined> {
    for (const name of names) if ((await this.inspect(name))?.status === 'running' && (await this.serves(name, 2))) return name;
    return undefined;
  }

  private async liveContainer(): Promise<Live | undefined> {
    const name = c.parseUpstream((await this.must(c.readFile(this.p.upstream), 'cannot read the proxy upstream')).stdout);
    if (!name) return undefined;
    const state = await this.inspect(name);
    if (state?.status !== 'running') return { name, state, healthy: false };
    const probe = await this.run(c.healthCheck(name, { path: this.d.cfg.healthPath, timeoutMs: 3000, intervalMs: 500, successes: 1 }), 30_000);
    return { name, state, healthy: probe.code === 0 };
  }

  private async inspect(name: string): Promise<ContainerState | undefined> {
    const res = await this.run(c.inspectContainer(name));
    return res.code === 0 ? parseContainerState(res.stdout) : undefined;
  }

  private async imageInfo(ref: string): Promise<{ id: string; digests: string[]; tags: string[] } | undefined> {
    const res = await this.run(c.inspectImage(ref));
    if (res.code !== 0) return undefined;
    const [id, digests, tags] = res.stdout.trim().split('\t').map((f) => JSON.parse(f) as unknown);
    return { id: String(id), digests: (digests as string[] | null) ?? [], tags: (tags as string[] | null) ?? [] };
  }

  private async pull(image: string): Promise<Target> {
    this.checkInterrupt();
    const res = await this.run(c.pull(image), 600_000, true);
    if (res.code !== 0) {
      throw new Failure(
        `could not pull ${image} (${lastLine(res.stderr) || `exit ${res.code}`})`,
        'Nothing on the VM changed. Check the image name and tag, and that the VM is logged in to the registry (docker login on the VM)',
      );
    }
    const info = await this.imageInfo(image);
    const digest = info && pickDigest(image, info.digests);
    if (!info || !digest) throw new Failure(`${image} has no registry digest on the VM`, 'Deploy an image pushed to a registry (a tag or repo@sha256:...)');
    return { id: info.id, source: image, digest };
  }

  private async findTarget(version: string | undefined, live: Live | undefined): Promise<Target> {
    const history = parseHistory((await this.must(c.readFile(this.p.history), 'cannot read the history')).stdout);
    const current = live?.state?.digest;
    const entry = version ? findVersion(history, version) : previousHealthy(history, current);
    if (!entry) {
      throw new Failure(
        version ? `${version} is not a healthy version in ${this.d.env}'s history` : `there is no earlier healthy version in ${this.d.env}'s history`,
        `Nothing changed. See \`npm run deploy -- history --env ${this.d.env}\` for the versions that can be named`,
      );
    }
    // Kept on the VM by retention as berth-<env>:<digest>; otherwise pulled again by digest.
    const local = await this.imageInfo(c.envTag(this.d.env, entry.digest));
    if (local) return { id: local.id, source: entry.image, digest: entry.digest };
    const byDigest = `${repositoryOf(entry.image)}@${entry.digest}`;
    const pulled = await this.pull(byDigest);
    return { ...pulled, source: entry.image };
  }

  /** Start next to the live one, health-gate, switch, retire the old one, record. */
  private async activate(target: Target, live: Live | undefined, action: Action): Promise<FlowResult> {
    const { report } = this.d;
    const name = await report.step('start new container', () => this.start(target), (n) => n);
    try {
      await report.step('health check', () => this.checkHealth(name), (s) => s);
    } catch (err) {
      if (!(err instanceof Failure)) throw err;
      const logs = await this.logsOf(name);
      await report.step('remove new container', async () => {
        await this.must(c.removeContainers([name]), `cannot remove ${name}`);
        this.pending = undefined;
      });
      if (live?.healthy) throw new Failure(err.reason, `${live.name} (the version that served before) keeps serving; fix the image and deploy again`, { logs, digest: target.digest });
      return this.fallBackToStable(err.reason, logs, live, target, action);
    }
    await report.step('switch traffic', () => this.switchTo(name, live, target), (how) => how);
    await this.afterSwitch(target, name, live, () => this.record(target, name, action));
    await report.step('prune', () => this.prune(name), (n) => n).catch((err: Error) => report.warn(`pruning old images failed (${err.message}); the deploy itself succeeded`));
    return { image: target.source, digest: target.digest, rolledBack: false };
  }

  /**
   * Once traffic has switched, the new version serves whatever happens next: a failure to stop the
   * old container is only a warning, and a failure to record is reported as exactly that.
   */
  private async afterSwitch(target: Target, name: string, live: Live | undefined, record: () => Promise<void>): Promise<void> {
    const { report } = this.d;
    const network = this.d.cfg.network;
    await report
      .step(`join ${network} network`, async () => void (await this.must(c.joinSharedNetwork(network, this.d.env, name), `cannot attach ${name} to the ${network} network`)))
      .catch((err: Error) => report.warn(`${err.message}; it serves, but monitoring cannot scrape it until: docker network connect --alias ${appAlias(this.d.env)} ${network} ${name}`));
    await report
      .step('stop old container', () => this.retire(live), (stopped) => stopped)
      .catch((err: Error) => report.warn(`${err.message}; it no longer gets traffic, stop it by hand (docker stop ${live?.name})`));
    try {
      await report.step('record', record);
    } catch (err) {
      if (err instanceof SshError) throw err;
      throw new Failure(`${target.source} now serves ${this.d.env} (${name}); recording failed: ${(err as Error).message}`, 'The :stable tag and history may be stale: deploy again, or check the VM', { digest: target.digest });
    }
  }

  private async start(target: Target): Promise<string> {
    this.checkInterrupt();
    const name = containerName(this.d.env);
    this.pending = name;
    const spec: c.AppSpec = { env: this.d.env, name, image: target.id, source: target.source, digest: target.digest, envFile: this.p.env, tuning: this.tuning };
    // Only the project network for now: the shared one (where Prometheus scrapes the app alias)
    // follows the switch, so scrapes never land on a candidate that may yet be refused.
    await this.must(c.createApp(spec), 'docker could not create the new container');
    await this.must(c.startContainer(name), 'docker could not start the new container');
    return name;
  }

  private async checkHealth(name: string): Promise<string> {
    const { cfg } = this.d;
    const o = { path: cfg.healthPath, timeoutMs: cfg.healthTimeoutS * 1000, intervalMs: cfg.healthIntervalS * 1000, successes: cfg.healthSuccesses };
    this.checkInterrupt();
    const res = await this.run(c.healthCheck(name, o), o.timeoutMs + 60_000, true);
    const verdict = judgeHealth(res, await this.inspect(name), { path: o.path, timeoutS: cfg.healthTimeoutS, successes: o.successes });
    if (!verdict.healthy) throw new Failure(verdict.reason, '');
    return verdict.reason.replace(/^healthy: /, '');
  }

  private async logsOf(name: string): Promise<string> {
    const res = await this.run(c.containerLogs(name, LOG_LINES)).catch(() => undefined);
    return res ? [res.stdout, res.stderr].filter((s) => s.trim()).join('\n') : '';
  }

  /**
   * Points the proxy at `name` and confirms, through the proxy, that the new container answers.
   * The remote script restores the previous upstream itself when any part fails.
   */
  private async switchTo(name: string, live: Live | undefined, target: Target): Promise<string> {
    this.checkInterrupt();
    this.upstreamBefore = (await this.must(c.readFile(this.p.upstream), 'cannot read the proxy upstream')).stdout;
    this.phase = 'switching';
    let outcome = await this.pointProxyAt(name);
    if (!outcome.ok && outcome.retryByAddress) {
      // The engine's DNS may not know the new name yet (podman's aardvark-dns restarts under
      // load): the container's address works without it.
      const address = (await this.run(c.containerAddress(name, this.d.env))).stdout.trim();
      if (/^[0-9a-f.:]+$/i.test(address)) {
        this.d.report.info(`the proxy could not resolve ${name} (${outcome.why}); using its address ${address}`);
        outcome = await this.pointProxyAt(name, address);
      }
    }
    if (!outcome.ok) {
      // The remote script restores a running proxy's file itself; with no proxy running (it would
      // not start) the new file is still there: put the old one back, never an empty one.
      if (this.upstreamBefore?.trim()) await this.run(c.writeFile(this.p.upstream, this.upstreamBefore));
      this.phase = 'before';
      this.upstreamBefore = undefined;
      const before = live?.healthy ? `${live.name} (the version that served before) keeps serving` : 'nothing healthy served before this deploy';
      throw new Failure(`the proxy did not switch to the new container (${outcome.why})`, `${before}; check proxy/nginx.conf and the proxy's logs (docker logs ${projectName(this.d.env)}_proxy_1)`, { digest: target.digest });
    }
    this.phase = 'switched';
    this.switched = { source: target.source, name };
    this.pending = undefined;
    this.upstreamBefore = undefined;
    return outcome.why;
  }

  /** One switch attempt: the remote switch script, or (no proxy running yet) compose up and a check. */
  private async pointProxyAt(name: string, address?: string): Promise<{ ok: boolean; why: string; retryByAddress?: boolean }> {
    const conf = c.upstreamConf(name, new Date().toISOString(), address);
    const res = await this.run(c.switchProxy({ env: this.d.env, upstreamFile: this.p.upstream, conf, app: name, path: this.d.cfg.healthPath, token: randomBytes(4).toString('hex'), tries: SWITCH_TRIES }), 180_000);
    const said = lastLine(`${res.stdout}\n${res.stderr}`) || `exit ${res.code}`;
    if (res.code === c.SWITCH.ok) return { ok: true, why: said };
    if (res.code === c.SWITCH.badConfig || res.code === c.SWITCH.reloadFailed) return { ok: false, why: said, retryByAddress: !address };
    if (res.code !== c.SWITCH.notRunning) return { ok: false, why: said };
    // No proxy yet (first deploy): the new upstream is in place; start nginx on it and ask through it.
    const up = await this.run(c.startProxy(this.d.env, this.p.dir, this.composeVars), 300_000);
    if (up.code !== 0) return { ok: false, why: `docker compose could not start the proxy: ${lastLine(up.stderr)}` };
    if (await this.serves(name)) return { ok: true, why: `started the proxy on ${name}` };
    return { ok: false, why: 'the proxy did not send requests to the new container after starting (see its logs)' };
  }

  /** Does the proxy route requests to `name`? Asked through the proxy, from inside `name`. */
  private async serves(name: string, tries = SWITCH_TRIES): Promise<boolean> {
    const want = (await this.run(c.containerAddress(name, this.d.env))).stdout.trim();
    if (!want) return false;
    for (let i = 0; i < tries; i++) {
      const res = await this.run(c.routedAddress(this.d.env, name, this.d.cfg.healthPath, `berth-check-${randomBytes(4).toString('hex')}`), 30_000);
      if (res.code === c.SWITCH.notRunning) return false;
      if (res.stdout.trim() === `${want}:${c.APP_LISTEN_PORT}`) return true;
      await sleep(500);
    }
    return false;
  }

  private async retire(live: Live | undefined): Promise<string | undefined> {
    if (!live?.state || live.state.status !== 'running') return undefined;
    // SIGTERM: the service finishes in-flight requests (SHUTDOWN_TIMEOUT_MS) before it exits.
    await this.must(c.stopContainer(live.name, 15), `cannot stop ${live.name}`, 60_000);
    return live.name;
  }

  private async record(target: Target, name: string, action: Action, result: Outcome = 'ok', reason?: string): Promise<void> {
    if (result === 'ok') {
      await this.must(c.tag(target.id, stableRef(this.d.env)), 'cannot tag :stable');
    }
    await this.must(c.tag(target.id, c.envTag(this.d.env, target.digest)), 'cannot tag the image for this environment');
    const state = `digest=${target.digest} image=${target.source} container=${name} since=${new Date().toISOString()}\n`;
    await this.must(c.writeFile(this.p.state, state), 'cannot write the current state');
    await this.must(c.appendLine(this.p.history, this.entry(action, target.source, target.digest, result, reason)), 'cannot append to the history');
  }

  private async prune(live: string): Promise<string> {
    const env = this.d.env;
    const history = parseHistory((await this.run(c.readFile(this.p.history))).stdout);
    const images = (await this.must(c.listEnvImages(env), 'cannot list images')).stdout
      .split('\n')
      .map((l) => l.trim().split(' '))
      // Engines differ in how they filter by reference (podman also lists other names of the same
      // image), so keep only this environment's own repository.
      .filter((f) => f.length === 3 && f[1] !== '<none>' && (f[0] === envRepository(env) || f[0] === `localhost/${envRepository(env)}`))
      .map(([, tag, id]) => ({ tag: tag as string, id: id as string }));
    const stable = images.find((i) => i.tag === 'stable')?.id;
    const liveImage = (await this.inspect(live))?.imageId;
    const containers = (await this.must(c.listAppContainers(env), 'cannot list containers')).stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' '))
      .map(([name = '', state = '', digest = '']) => ({ name, state, digest: /^sha256:[0-9a-f]{64}$/.test(digest) ? digest : undefined }));
    const input = {
      keep: this.d.cfg.keep,
      images,
      healthy: healthyDigests(history),
      protectedIds: [stable, liveImage].filter((x): x is string => !!x),
      containers,
      live,
      deployedRefs: history.map((e) => e.image),
      otherEnvTag: new RegExp(`(^|/)berth-(${environments.filter((e) => e !== env).join('|')}):`),
    };
    // Plan, look up the names of the images that go, plan again: the decision stays in planRetention.
    const names: Record<string, string[]> = {};
    for (const t of planRetention(input).untag) {
      const id = images.find((i) => i.tag === t)?.id ?? '';
      const res = await this.run(c.imageTags(id));
      if (res.code === 0) names[id] = (JSON.parse(res.stdout.trim() || '[]') as string[] | null) ?? [];
    }
    const plan = planRetention({ ...input, names });

    // Containers first: the engine refuses to remove an image a stopped container still uses.
    if (plan.removeContainers.length > 0) await this.must(c.removeContainers(plan.removeContainers), 'cannot remove old containers');
    for (const t of plan.untag) await this.run(c.removeImages([`${envRepository(env)}:${t}`]));
    let removedImages = 0;
    for (const t of plan.untag) {
      const id = images.find((i) => i.tag === t)?.id ?? '';
      const left = plan.removeNames.filter((n) => names[id]?.includes(n));
      if (left.length > 0 && (await this.run(c.removeImages(left))).code === 0) removedImages++;
      else if ((await this.run(c.imageTags(id))).code !== 0) removedImages++;
    }
    return `kept ${this.d.cfg.keep}: removed ${removedImages} image(s), ${plan.removeContainers.length} stopped container(s)`;
  }

  /** The new version failed and nothing healthy was serving: bring back :stable. */
  private async fallBackToStable(reason: string, logs: string, live: Live | undefined, failed: Target, action: Action): Promise<never> {
    const { report } = this.d;
    const stable = await this.imageInfo(stableRef(this.d.env));
    const digest = stable && pickDigest(stableRef(this.d.env), stable.digests);
    if (!stable || !digest) {
      throw new Failure(`${reason}; nothing healthy was running and there is no :stable image on the VM to fall back to`, `Fix the image and deploy again (${this.d.env} serves nothing right now)`, { logs, digest: failed.digest });
    }
    const target: Target = { id: stable.id, source: stableRef(this.d.env), digest };
    const name = await report.step('start :stable', () => this.start(target), (n) => n);
    try {
      await report.step('health check :stable', () => this.checkHealth(name), (s) => s);
    } catch (err) {
      if (!(err instanceof Failure)) throw err;
      throw new Failure(`${reason}; :stable did not pass the health check either (${err.reason})`, `Nothing healthy serves ${this.d.env}: look at the VM (docker ps, docker logs)`, { logs, digest: failed.digest });
    }
    await report.step('switch traffic to :stable', () => this.switchTo(name, live, target), (how) => how);
    await this.run(c.appendLine(this.p.history, this.entry(action, failed.source, failed.digest, 'failed', reason)));
    await this.afterSwitch(target, name, live, () => this.record(target, name, 'rollback', 'ok', `automatic: ${action} of ${failed.source} failed`));
    throw new Failure(reason, `Nothing healthy was running, so :stable (${digest.slice(0, 19)}) now serves; fix the image and deploy again`, { logs, rolledBack: true, digest });
  }
}
