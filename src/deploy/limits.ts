// Every exit code the remote programs answer with and every time limit of a remote command, in
// one table: the scripts under remote/ use the same numbers (a unit test holds them together).

/** Exit codes of the programs that run on the VM. */
export const EXIT = {
  /** takeLock: held by someone else (EX_TEMPFAIL); the holder line is printed. */
  lockHeld: 75,
  /** remote/proxy.sh. */
  proxy: { ok: 0, notRunning: 3, badConfig: 4, reloadFailed: 5, notSwitched: 6 },
  /** The release command's wrapper (commands/release.ts): `timeout`'s code, and docker's own. */
  release: { timedOut: 124, setup: 125 },
  /** commands/targets.ts checkTargetsDir: no monitoring stack, or its targets not ours to write. */
  targets: { missing: 3, notWritable: 4 },
  /** remote/edge-switch.sh. */
  edge: { ok: 0, needsConfig: 3, unreachable: 5, notSwitched: 6, stuck: 7, lockHeld: 75 },
  /** remote/db-backup.sh. */
  db: { noDatabase: 3, noBackup: 4 },
} as const;

/** How long the deploy waits for one remote command before it calls the VM unresponsive. */
export const TIMEOUT_MS = {
  /** Anything not named below. */
  command: 60_000,
  /** Lock, clean-up, status and the probes through the proxy: quick, and needed when things go wrong. */
  quick: 30_000,
  pull: 600_000,
  /** docker compose may pull the proxy image first. */
  compose: 300_000,
  /** The switch script: nginx -t (at most 20 s), reload, then probes for at most 20 s (3 s each). */
  switch: 180_000,
  /** Added to the health check's own timeout: starting the probe (an exec, or a one-off container) and the inspect after it. */
  healthGrace: 60_000,
  /** Added to DEPLOY_RELEASE_TIMEOUT_S: the VM's own `timeout` ends the command first. */
  releaseGrace: 60_000,
  /** Starting the database: a first start initialises its data directory. */
  dbStart: 180_000,
  /** A database dump or restore: as long as the data needs. */
  backup: 3_600_000,
  /** The Slack notification, sent from where the deploy runs. */
  notify: 5_000,
  /** Reconnecting to clean up after a lost connection. */
  reconnect: 10_000,
  /** The first SSH handshake. */
  connect: 20_000,
} as const;

/** Seconds a stopped container gets to finish its requests (docker-compose.yml stop_grace_period). */
export const STOP_GRACE_S = 15;
/** Requests through the proxy (0.1 s apart while they miss; within 20 s) before a switch counts as not taken. */
export const SWITCH_TRIES = 50;

/** How many times `serves` asks a proxy it has just started where it routes (0.5 s apart) before it says no. */
export const ROUTE_WAIT_TRIES = 20;

/** How often the health check asks a starting app until its first 2xx (then DEPLOY_HEALTH_INTERVAL_S). */
export const STARTUP_POLL_S = 0.1;
/** How many times `serves` asks a running proxy where it routes, when only checking (no waiting). */
export const ROUTE_CHECK_TRIES = 2;
/** Default of DEPLOY_RELEASE_TIMEOUT_S. */
export const RELEASE_TIMEOUT_S = 300;
/** Last log lines of a refused container shown to the operator. */
export const LOG_LINES = 30;
