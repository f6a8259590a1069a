// Which integration files may run at the same time (scripts/lanes.sh runs the lanes at once,
// each lane one file at a time). Measured on the 2-core test machine: `vm` ~620 s, `host` with
// the unit tests ~430 s, `alone` ~100 s; one lane after another took ~1,150 s.

/**
 * Files that deploy to the test VM (its three environments and its edge; the e2e harness also
 * holds the VM's lock, which a second lane would only wait on), the rehearsal (which deploys there
 * too) and the monitoring stack in compose, which publishes fixed ports (8900, 8903).
 */
export const vmLane = [
  'test/deploy/e2e/**/*.int.test.ts',
  'test/cicd/rehearse.int.test.ts',
  'test/monitoring/compose.int.test.ts',
];

/** Restarts dockerd and containerd: every container of every lane would go down with them. */
export const alone = ['test/deploy/e2e/reboot.int.test.ts'];
