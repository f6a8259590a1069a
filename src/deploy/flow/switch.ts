// The traffic switch: point the proxy at the new container and confirm, through the proxy, that
// it answers; otherwise put back what routed before. remote/proxy.sh does the VM's part.
import { randomBytes } from 'node:crypto';
import { EDGE_CONTAINER } from '../../edge/caddy.js';
import { APP_LISTEN_PORT, containerAddress } from '../commands/app.js';
import { startProxy } from '../commands/compose.js';
import { readFile, writeFile } from '../commands/files.js';
import { reloadProxy, routedAddress, switchProxy, upstreamConf } from '../commands/proxy.js';
import { projectName } from '../environments.js';
import { EXIT, ROUTE_WAIT_TRIES, SWITCH_TRIES, TIMEOUT_MS } from '../limits.js';
import { SshError } from '../ssh.js';
import { seconds, sleep, timestamp } from '../time.js';
import { Failure, servedBefore } from './advice.js';
import { edgeWanted, pointEdgeAt } from './edge.js';
import { joinShared } from './container.js';
import { lastLine, type Run, type Target } from './run.js';

/** Puts `name` (running `target`) behind the proxy; returns how, for the step line. */
export async function switchTo(run: Run, name: string, target: Target): Promise<string> {
  run.checkInterrupt();
  const address = run.state.kind === 'started' ? run.state.address : undefined;
  const upstreamBefore =
    run.upstreamRead ??
    (await run.must(readFile(run.paths.upstream), 'cannot read the proxy upstream')).stdout;
  // Any later switch of this run (to :stable) reads what this one leaves.
  run.upstreamRead = undefined;
  run.state = { kind: 'switching', name, upstreamBefore };
  // The edge reaches apps on the shared network: the new container joins it while nginx
  // switches (its failure is the edge's, awaited there; a refused container is removed anyway).
  if (edgeWanted(run)) joinShared(run, name).catch(() => undefined);
  const proxyStarted = performance.now();
  const outcome = await pointProxyAt(run, name, address);
  const proxyMs = performance.now() - proxyStarted;
  if (!outcome.ok) {
    // The remote script restores a running proxy's file itself; with no proxy running (it would
    // not start) the new file is still there: put the old one back, never an empty one.
    if (upstreamBefore.trim()) await run.run(writeFile(run.paths.upstream, upstreamBefore));
    run.state = { kind: 'started', name };
    throw new Failure(
      `the proxy did not switch to the new container (${outcome.why})`,
      `${servedBefore(run.env, run.live)}; check proxy/nginx.conf and the proxy's logs (docker compose -p ${projectName(run.env)} logs proxy)`,
      { digest: target.digest },
    );
  }
  let edge: string | undefined;
  const edgeStarted = performance.now();
  try {
    edge = await pointEdgeAt(run, name);
  } catch (err) {
    if (err instanceof SshError) throw err; // cut off: the clean-up asks the proxy what serves
    // nginx already routes to the new container: back to what it served, as a refused switch.
    if (upstreamBefore.trim()) {
      await run.run(writeFile(run.paths.upstream, upstreamBefore));
      await run.run(reloadProxy(run.env));
    }
    run.state = { kind: 'started', name };
    throw new Failure(
      `the HTTPS edge did not switch to the new container (${(err as Error).message})`,
      `${servedBefore(run.env, run.live)}; check the edge (docker logs ${EDGE_CONTAINER})`,
      { digest: target.digest },
    );
  }
  run.state = { kind: 'switched', name, source: target.source, digest: target.digest };
  // With an edge, its part is the switch the domain's users see; each part's time is shown.
  return edge
    ? `${outcome.why} (${seconds(proxyMs)}); ${edge} (${seconds(performance.now() - edgeStarted)})`
    : outcome.why;
}

interface SwitchOutcome {
  ok: boolean;
  why: string;
}

/** One switch attempt: the remote switch script, or (no proxy running yet) compose up and a check. */
async function pointProxyAt(run: Run, name: string, address?: string): Promise<SwitchOutcome> {
  const conf = upstreamConf(name, timestamp());
  const res = await run.run(
    switchProxy({
      env: run.env,
      upstreamFile: run.paths.upstream,
      conf,
      app: name,
      path: run.cfg.healthPath,
      token: randomBytes(4).toString('hex'),
      tries: SWITCH_TRIES,
      address,
      proxy: run.proxyId,
    }),
    TIMEOUT_MS.switch,
  );
  const said = lastLine(`${res.stdout}\n${res.stderr}`) || `exit ${res.code}`;
  if (res.code === EXIT.proxy.ok) return { ok: true, why: said };
  if (res.code !== EXIT.proxy.notRunning) return { ok: false, why: said };
  // No proxy yet (first deploy): the new upstream is in place; start nginx on it and ask through it.
  const up = await run.run(startProxy(run.env, run.paths.dir, run.composeVars), TIMEOUT_MS.compose);
  if (up.code !== 0)
    return { ok: false, why: `docker compose could not start the proxy: ${lastLine(up.stderr)}` };
  if (await serves(run, name)) return { ok: true, why: `started the proxy on ${name}` };
  return {
    ok: false,
    why: 'the proxy did not send requests to the new container after starting (see its logs)',
  };
}

/** Does the proxy route requests to `name`? Asked through the proxy, from inside it. */
export async function serves(run: Run, name: string, tries = ROUTE_WAIT_TRIES): Promise<boolean> {
  const want = (await run.run(containerAddress(name, run.env))).stdout.trim();
  if (!want) return false;
  for (let i = 0; i < tries; i++) {
    const res = await run.run(
      routedAddress(run.env, run.cfg.healthPath, `berth-check-${randomBytes(4).toString('hex')}`),
      TIMEOUT_MS.quick,
    );
    if (res.code === EXIT.proxy.notRunning) return false;
    if (res.stdout.trim() === `${want}:${APP_LISTEN_PORT}`) return true;
    await sleep(500);
  }
  return false;
}
