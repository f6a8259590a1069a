import { describe, expect, it } from 'vitest';
import {
  heartbeatLine,
  heartbeatState,
  parseHeartbeatState,
} from '../../../src/deploy/commands/monitoring.js';

describe('the monitoring line of `status`', () => {
  it('asks for the berth-monitoring Alertmanager, its project an argument, never spliced in', () => {
    const cmd = heartbeatState();
    expect(cmd.argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(cmd.argv[4]).toBe('berth-monitoring');
    expect(cmd.argv[2]).not.toContain('berth-monitoring');
  });

  it('reads only the three words the remote side prints', () => {
    expect(parseHeartbeatState('heartbeat\n')).toBe('heartbeat');
    expect(parseHeartbeatState('no-heartbeat\n')).toBe('no-heartbeat');
    expect(parseHeartbeatState('not-running\n')).toBe('not-running');
    expect(parseHeartbeatState('Error: permission denied\n')).toBeUndefined();
    expect(parseHeartbeatState('')).toBeUndefined();
  });

  it('says that a dead VM stays silent without a heartbeat, and what to do', () => {
    expect(heartbeatLine('no-heartbeat')).toMatch(
      /no HEARTBEAT_URL: if this VM dies nobody is told/,
    );
    expect(heartbeatLine('not-running')).toMatch(/re-run init_setup\.sh/);
    expect(heartbeatLine('heartbeat')).toMatch(/heartbeat on/);
    expect(heartbeatLine(undefined)).toMatch(/could not tell/);
  });
});
