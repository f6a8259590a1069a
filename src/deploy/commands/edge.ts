// The per-VM HTTPS edge (docker-compose.edge.yml, container berth-edge) as the deploy drives it:
// every change goes through Caddy's admin API inside the container (src/edge/caddy.ts builds the
// requests), under a lock in the container's own /tmp (a tmpfs: a restart clears a stale one).
// The lock matters because two environments deploy independently: one that reads the whole
// config and loads it back must not undo the other's switch made in between.
import {
  ADMIN_LISTEN,
  edgeCommand,
  EDGE_CONTAINER,
  readDomain,
  switchUpstream,
  type AdminRequest,
} from '../../edge/caddy.js';
import { program } from '../remote/programs.js';
import { docker, sh, type RemoteCommand } from './command.js';

export const EDGE_LOCK = '/tmp/berth-edge-lock';
/** Seconds to wait for another environment's edge change (each takes well under a second). */
export const EDGE_LOCK_WAIT_S = 30;

/**
 * Prints the edge container's state (`running`, `exited`...), nothing when there is none; exits
 * non-zero when docker cannot answer. "Cannot tell" must never read as "no edge": the deploy
 * would then stop the container the edge still sends the domain to. Only stdout is the answer
 * (docker's warnings go to stderr).
 */
export const edgeRunning = (container = EDGE_CONTAINER): RemoteCommand =>
  docker('edge.running', 'ps', '-a', '--filter', `name=^${container}$`, '--format', '{{.State}}');

/** One admin-API request, sent from inside the edge container; its answer on stdout. */
export const edgeAdmin = (req: AdminRequest, container = EDGE_CONTAINER): RemoteCommand => ({
  name: 'edge.admin',
  argv: edgeCommand(req, container).argv,
});

/**
 * One attempt at the edge's lock: exit 0 when it is now ours, 75 when someone holds it (the
 * caller waits and asks again). One `mkdir` per call, never a loop on the VM: a loop cut off
 * from its client could take the lock after the clean-up had looked. The lock holds the run's
 * `token`, so a clean-up after a lost connection frees it only if it is this run's.
 */
export const lockEdge = (
  token: string,
  { container = EDGE_CONTAINER, lock = EDGE_LOCK } = {},
): RemoteCommand =>
  sh(
    'edge.lock',
    `docker exec "$1" sh -c 'mkdir "$1" 2>/dev/null || exit 75; echo "$2" > "$1/owner"' sh "$2" "$3"`,
    container,
    lock,
    token,
  );

/** Frees the lock when `token` holds it; anything else (no lock, another run's) is left alone. */
export const unlockEdge = (
  token: string,
  { container = EDGE_CONTAINER, lock = EDGE_LOCK } = {},
): RemoteCommand =>
  docker(
    'edge.unlock',
    'exec',
    container,
    'sh',
    '-c',
    '[ "$(cat "$1/owner" 2>/dev/null)" = "$2" ] || exit 0; rm -f "$1/owner" && rmdir "$1"',
    'sh',
    lock,
    token,
  );

/** What an operator runs when a deploy died holding the edge's lock (it only ever blocks). */
export const breakEdgeLock = `docker exec ${EDGE_CONTAINER} rm -rf ${EDGE_LOCK}`;

/** The edge's own settings on the VM (no secrets): ACME CA and contact, HSTS, Grafana's site. */
export const edgeSettingKeys = [
  'ACME_CA',
  'ACME_CA_ROOT',
  'ACME_EMAIL',
  'EDGE_HSTS_MAX_AGE',
  'GRAFANA_DOMAIN',
  'GRAFANA_UPSTREAM',
] as const;
export const readEdgeSettings = (envFile: string): RemoteCommand =>
  sh(
    'edge.readSettings',
    `[ ! -e "$1" ] || grep -E '^(${edgeSettingKeys.join('|')})=' "$1" || true`,
    envFile,
  );

export interface EdgeSwitchSpec {
  /** The environment (its site's name on the edge). */
  env: string;
  domain: string;
  /** Grafana's domain when the edge's settings give one: its site must be there too. */
  grafanaDomain?: string;
  /** `container:port` on the shared network. */
  upstream: string;
  healthPath: string;
}

/**
 * The whole common-case edge switch in one program inside the edge container
 * (remote/edge-switch.sh); exit codes EXIT.edge. Paths and body are this module's builders'.
 */
export function switchEdge(s: EdgeSwitchSpec, container = EDGE_CONTAINER): RemoteCommand {
  const dial = switchUpstream(s.env, s.upstream);
  // prettier-ignore
  return {
    name: 'edge.switch',
    argv: ['docker', 'exec', '-i', container, 'sh', '-s', ADMIN_LISTEN, EDGE_LOCK, String(EDGE_LOCK_WAIT_S),
      readDomain(s.env).path, s.domain, readDomain('grafana').path, s.grafanaDomain ?? '',
      dial.path, s.upstream, s.healthPath],
    stdin: program('edge-switch.sh'),
  };
}
