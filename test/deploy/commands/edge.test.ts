// The edge's lock and its "does it run" question, in a real shell. `docker` is a stub on PATH:
// `docker exec [-i] CONTAINER CMD...` runs CMD here, and `docker ps` answers as $STUB_INSPECT
// says (a running edge, none, a daemon that cannot be reached, a warning on stderr).
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { edgeRunning, lockEdge, unlockEdge } from '../../../src/deploy/commands/edge.js';
import { runLocally } from '../../helpers/remote-shell.js';

const dir = mkdtempSync(path.join(tmpdir(), 'berth-edge-cmd-'));
writeFileSync(
  path.join(dir, 'docker'),
  `#!/bin/sh
case "$1" in
  exec) shift; [ "$1" = -i ] && shift; shift; exec "$@" ;;
  ps)
    case "$STUB_INSPECT" in
      running) echo running ;;
      warned) echo "WARNING: Error loading config file: /home/deploy/.docker/config.json: permission denied" >&2; echo running ;;
      none) ;;
      *) echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock" >&2; exit 1 ;;
    esac ;;
esac
`,
);
chmodSync(path.join(dir, 'docker'), 0o755);
const sh = (cmd: Parameters<typeof runLocally>[0], stub = '') =>
  runLocally(cmd, `PATH=${dir}:$PATH STUB_INSPECT=${stub} `);

describe("the edge's lock in a real shell", () => {
  const lock = path.join(dir, 'lock');
  it('is taken once, holds its token, and is freed only with that token', () => {
    expect(sh(lockEdge('run-a', { lock })).code).toBe(0);
    expect(readFileSync(path.join(lock, 'owner'), 'utf8')).toBe('run-a\n');
    // Another run is told 75 at once (it waits and asks again from its own side).
    expect(sh(lockEdge('run-b', { lock })).code).toBe(75);
    expect(readFileSync(path.join(lock, 'owner'), 'utf8')).toBe('run-a\n');
    // A clean-up of another run never frees it.
    expect(sh(unlockEdge('run-b', { lock })).code).toBe(0);
    expect(existsSync(lock)).toBe(true);
    expect(sh(unlockEdge('run-a', { lock })).code).toBe(0);
    expect(existsSync(lock)).toBe(false);
    // Freeing a lock nobody holds (a clean-up after the release did go through) is fine.
    expect(sh(unlockEdge('run-a', { lock })).code).toBe(0);
    expect(sh(lockEdge('run-b', { lock })).code).toBe(0);
    sh(unlockEdge('run-b', { lock }));
  });

  it('waits for the edge-switch program, whose lock has no token, and never frees it', () => {
    execFileSync('mkdir', [lock]);
    expect(sh(unlockEdge('run-a', { lock })).code).toBe(0);
    expect(existsSync(lock)).toBe(true);
    expect(sh(lockEdge('run-a', { lock })).code).toBe(75);
    execFileSync('rmdir', [lock]);
  });
});

describe('edgeRunning in a real shell', () => {
  it("answers the edge's state, or nothing for no edge, and docker's warnings stay out of it", () => {
    expect(sh(edgeRunning(), 'running')).toEqual({ code: 0, out: 'running\n' });
    expect(sh(edgeRunning(), 'warned')).toEqual({ code: 0, out: 'running\n' });
    expect(sh(edgeRunning(), 'none')).toEqual({ code: 0, out: '' });
  });
  it('fails when docker cannot answer: "cannot tell" is never "no edge"', () => {
    expect(sh(edgeRunning(), 'down').code).toBe(1);
  });
});
