// The new container's life on the VM: created and started next to the live one, health-checked
// over HTTP from the proxy's side, its logs read when it is refused, the old one stopped after the switch.
import { randomBytes } from 'node:crypto';
import {
  containerLogs,
  createApp,
  inspectContainer,
  joinSharedNetwork,
  projectNetwork,
  startContainer,
  stopContainer,
} from '../commands/app.js';
import { healthCheck } from '../commands/probe.js';
import { projectName, type EnvName } from '../environments.js';
import { judgeHealth, parseContainerState, type ContainerState } from '../health.js';
import { LOG_LINES, TIMEOUT_MS } from '../limits.js';
import { timestamp } from '../time.js';
import { Failure } from './advice.js';
import type { Live, Run, Target } from './run.js';

/** berth-<env>-app-<UTC yyyymmddhhmmss>-<4 hex>: sorts by age, resolves in DNS. */
export function containerName(env: EnvName, now = new Date()): string {
  return `${projectName(env)}-app-${timestamp(now).replace(/[-:TZ]/g, '')}-${randomBytes(2).toString('hex')}`;
}

export async function inspect(run: Run, name: string): Promise<ContainerState | undefined> {
  const res = await run.run(inspectContainer(name));
  return res.code === 0 ? parseContainerState(res.stdout) : undefined;
}

/** Creates and starts a container of `target`; returns its name. */
export async function start(run: Run, target: Target): Promise<string> {
  run.checkInterrupt();
  const name = containerName(run.env);
  run.state = { kind: 'started', name };
  // Only the project network for now: the shared one (where Prometheus scrapes the app alias)
  // follows the switch, so scrapes never land on a candidate that may yet be refused.
  await run.must(
    createApp({
      env: run.env,
      name,
      image: target.id,
      source: target.source,
      digest: target.digest,
      envFile: run.paths.stagedSettings,
      tuning: run.tuning,
    }),
    'docker could not create the new container',
  );
  await run.must(startContainer(name), 'docker could not start the new container');
  return name;
}

/** Throws a Failure (with no advice yet) when the container is not healthy in time. */
export async function checkHealth(run: Run, name: string): Promise<string> {
  const { cfg } = run;
  const o = {
    path: cfg.healthPath,
    timeoutS: cfg.healthTimeoutS,
    intervalS: cfg.healthIntervalS,
    successes: cfg.healthSuccesses,
  };
  run.checkInterrupt();
  const res = await run.run(
    healthCheck(run.env, name, o),
    o.timeoutS * 1000 + TIMEOUT_MS.healthGrace,
    true,
  );
  const state = await inspect(run, name);
  const verdict = judgeHealth(res, state, o);
  if (!verdict.healthy) throw new Failure(verdict.reason, '');
  // The switch names the address it must see answer; read here, it costs no docker call there.
  const address = state?.addresses[projectNetwork(run.env)];
  if (run.state.kind === 'started' && run.state.name === name && address)
    run.state = { ...run.state, address };
  return verdict.reason.replace(/^healthy: /, '');
}

export async function logsOf(run: Run, name: string): Promise<string> {
  const res = await run.run(containerLogs(name, LOG_LINES)).catch(() => undefined);
  return res ? [res.stdout, res.stderr].filter((s) => s.trim()).join('\n') : '';
}

/** Stops what served before; returns its name, or undefined when nothing was running. */
export async function retire(run: Run, live: Live | undefined): Promise<string | undefined> {
  if (!live?.state || live.state.status !== 'running') return undefined;
  // SIGTERM: the service finishes in-flight requests (SHUTDOWN_TIMEOUT_MS) before it exits.
  await run.must(stopContainer(live.name), `cannot stop ${live.name}`, TIMEOUT_MS.command);
  return live.name;
}

/**
 * `name` on the shared network under the environment's alias (where the edge and Prometheus reach
 * it); once per run, as the edge's switch and the step after it both need it.
 */
export function joinShared(run: Run, name: string): Promise<void> {
  let joining = run.joined.get(name);
  if (!joining) {
    joining = run
      .must(
        joinSharedNetwork(run.cfg.network, run.env, name),
        `cannot attach ${name} to the ${run.cfg.network} network`,
      )
      .then(() => undefined);
    run.joined.set(name, joining);
  }
  return joining;
}
