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

/** Prints `true` when the edge container runs; exit 1 when there is none. */
export const edgeRunning = (container = EDGE_CONTAINER): RemoteCommand =>
  docker('edge.running', 'container', 'inspect', '--format', '{{.State.Running}}', container);

/** One admin-API request, sent from inside the edge container; its answer on stdout. */
export const edgeAdmin = (req: AdminRequest, container = EDGE_CONTAINER): RemoteCommand => ({
  name: 'edge.admin',
  argv: edgeCommand(req, container).argv,
});

/** Exit 0 once the lock is ours; 75 after waiting `waitS` seconds for its holder. */
export const lockEdge = (container = EDGE_CONTAINER, waitS = EDGE_LOCK_WAIT_S): RemoteCommand =>
  sh(
    'edge.lock',
    'i=0; until docker exec "$1" mkdir "$2" 2>/dev/null; do i=$((i+1)); [ "$i" -le "$3" ] || exit 75; sleep 1; done',
    container,
    EDGE_LOCK,
    String(waitS),
  );

export const unlockEdge = (container = EDGE_CONTAINER): RemoteCommand =>
  docker('edge.unlock', 'exec', container, 'rmdir', EDGE_LOCK);

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
