// Reading what the health check and `docker inspect` said about a container, as plain data.

export interface ContainerState {
  status: string;
  exitCode: number;
  restarts: number;
  startedAt: string;
  imageId: string;
  digest: string;
  image: string;
  /** Its address on each network it is on, by network name. */
  addresses: Record<string, string>;
}

export function parseContainerState(line: string): ContainerState | undefined {
  const [status, exitCode, restarts, startedAt, imageId, digest, image, networks] = line
    .trim()
    .split('\t');
  if (!status) return undefined;
  const addresses: Record<string, string> = {};
  for (const pair of (networks ?? '').split(' ')) {
    const at = pair.indexOf('=');
    if (at > 0 && pair.length > at + 1) addresses[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return {
    addresses,
    status,
    exitCode: Number(exitCode ?? 0),
    restarts: Number(restarts ?? 0),
    startedAt: startedAt ?? '',
    imageId: imageId ?? '',
    digest: digest && digest !== '<no value>' ? digest : '',
    image: image && image !== '<no value>' ? image : '',
  };
}

export interface HealthVerdict {
  healthy: boolean;
  /** Why not, in a clause that fits into "deploy failed: <reason>". */
  reason: string;
}

/**
 * `exec` is the probe's result (remote/http-probe.sh `health`, from the proxy's side: exit 0
 * healthy, 1 not in time, anything else: the probe itself could not run); `state` is inspect afterwards.
 */
export function judgeHealth(
  exec: { code: number; stdout: string; stderr: string },
  state: ContainerState | undefined,
  o: { path: string; timeoutS: number; successes: number },
): HealthVerdict {
  const said = exec.stdout.trim().split('\n').at(-1) ?? '';
  if (exec.code === 0 && said.startsWith('healthy: ')) return { healthy: true, reason: said };
  if (!state)
    return { healthy: false, reason: 'the new container disappeared during the health check' };
  if (state.status !== 'running' || state.restarts > 0) {
    // Once the engine has restarted it, ExitCode describes the current run (0): say "crashed" instead.
    if (state.restarts > 0)
      return {
        healthy: false,
        reason: `the new container kept crashing during the health check (restarted ${state.restarts} time(s))`,
      };
    return {
      healthy: false,
      reason: `the new container exited with code ${state.exitCode} during the health check (state ${state.status})`,
    };
  }
  if (exec.code === 1 && said.startsWith('unhealthy: ')) {
    const last = said.replace(/^unhealthy: /, '');
    return {
      healthy: false,
      reason: `the new container did not pass the health check: GET ${o.path} was not 2xx ${o.successes} time(s) in a row within ${o.timeoutS} s (${last})`,
    };
  }
  const why = exec.stderr.trim().split('\n').at(-1) ?? '';
  if (exec.code === 127 || /no wget|executable file not found/i.test(exec.stderr))
    return {
      healthy: false,
      reason: `the proxy image cannot run the health probe (it needs sh and wget, as nginx:*-alpine has: check PROXY_IMAGE): ${why}`,
    };
  return {
    healthy: false,
    reason: `the health probe could not run (exit ${exec.code}: ${why})`,
  };
}
