// The app's probes: remote/http-probe.sh run by proxy.sh where the proxy is, the app by name.
import { describe, expect, it } from 'vitest';
import * as c from '../../../src/deploy/commands/probe.js';
import { program } from '../../../src/deploy/remote/programs.js';

describe('the probes of an app container', () => {
  it('health: polls the app by container name on the project network, from the proxy side', () => {
    const cmd = c.healthCheck('staging', 'berth-staging-app-1', {
      path: '/health',
      timeoutS: 20,
      intervalS: 0.5,
      successes: 3,
    });
    expect(cmd.name).toBe('probe.health');
    expect(cmd.argv).toEqual([
      'sh',
      '-s',
      'probe',
      'berth-staging',
      'berth-staging_default',
      program('http-probe.sh'),
      'health',
      'http://berth-staging-app-1:8000/health',
      '20',
      '0.5',
      '3',
      '0.1',
    ]);
    // proxy.sh itself travels on stdin; nothing runs in the app's own image.
    expect(cmd.stdin).toBe(program('proxy.sh'));
    expect(cmd.argv).not.toContain('exec');
  });
  it('health: a fractional timeout rounds up to whole seconds (the probe counts in seconds)', () => {
    const cmd = c.healthCheck('testing', 'n', {
      path: '/h',
      timeoutS: 2.5,
      intervalS: 1,
      successes: 1,
    });
    expect(cmd.argv.slice(-5)).toEqual(['http://n:8000/h', '3', '1', '1', '0.1']);
  });
  it('once: one GET for `status`', () => {
    const cmd = c.probeOnce('production', 'berth-production-app-2', '/api/health');
    expect(cmd.name).toBe('probe.once');
    expect(cmd.argv.slice(2, 5)).toEqual(['probe', 'berth-production', 'berth-production_default']);
    expect(cmd.argv.slice(-2)).toEqual(['get', 'http://berth-production-app-2:8000/api/health']);
  });
});
