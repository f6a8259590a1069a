// The VM's monitoring stack as `status` reports it. Only whether a heartbeat URL is set ever
// leaves the VM, never the URL: the inspect template prints a word, not the environment.
import { sh, type RemoteCommand } from './command.js';

/** The compose project init_setup.sh starts the monitoring stack as. */
export const MONITORING_PROJECT = 'berth-monitoring';

export type HeartbeatState = 'heartbeat' | 'no-heartbeat' | 'not-running';

const HEARTBEAT_FORMAT =
  '{{$h := "no-heartbeat"}}{{range .Config.Env}}' +
  '{{if and (gt (len .) 14) (eq (slice . 0 14) "HEARTBEAT_URL=")}}{{$h = "heartbeat"}}{{end}}' +
  '{{end}}{{$h}}';

/** Prints one HeartbeatState word for the running Alertmanager of `project`. */
export const heartbeatState = (project = MONITORING_PROJECT): RemoteCommand =>
  sh(
    'monitoring.heartbeat',
    'c="$(docker ps -q --filter "label=com.docker.compose.project=$1" --filter label=com.docker.compose.service=alertmanager | head -n 1)"; ' +
      'if [ -z "$c" ]; then echo not-running; else docker container inspect --format "$2" "$c"; fi',
    project,
    HEARTBEAT_FORMAT,
  );

export function parseHeartbeatState(stdout: string): HeartbeatState | undefined {
  const word = stdout.trim();
  return word === 'heartbeat' || word === 'no-heartbeat' || word === 'not-running'
    ? word
    : undefined;
}

/** The line under `status`'s table: what happens when this VM itself dies. */
export function heartbeatLine(state: HeartbeatState | undefined): string {
  switch (state) {
    case 'heartbeat':
      return 'monitoring: heartbeat on: if this VM dies, the heartbeat service pages within its grace time';
    case 'no-heartbeat':
      return 'monitoring: no HEARTBEAT_URL: if this VM dies nobody is told (docs/monitoring.md, "Heartbeat")';
    case 'not-running':
      return 'monitoring: Alertmanager is not running on this VM: no alerts at all (re-run init_setup.sh)';
    default:
      return 'monitoring: could not tell whether Alertmanager runs';
  }
}
