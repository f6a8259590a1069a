// The proxy's commands: upstream.conf text, and the proxy.sh actions with their arguments.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as c from '../../../src/deploy/commands/proxy.js';
import { program } from '../../../src/deploy/remote/programs.js';
import { repoRoot } from '../../helpers/real-tools.js';

describe('the proxy', () => {
  it('the upstream file names exactly one container and parses back', () => {
    const text = c.upstreamConf('berth-staging-app-1', 'note');
    expect(text.match(/^server /gm)).toHaveLength(1);
    expect(c.parseUpstream(text)).toBe('berth-staging-app-1');
    expect(c.parseUpstream(readFileSync(path.join(repoRoot, 'proxy/upstream.conf'), 'utf8'))).toBe(
      'app',
    );
    expect(c.parseUpstream('# server x:8000;\n')).toBeUndefined();
    // Always by name (an address goes stale when a reboot renumbers the containers)...
    expect(text).toContain('server berth-staging-app-1:8000;\n');
    // ...and a file an older deploy wrote by address still names its container.
    expect(c.parseUpstream('server 10.89.3.7:8000;  # berth-staging-app-1\n')).toBe(
      'berth-staging-app-1',
    );
  });
  it("reloads the environment's own proxy with proxy.sh (sent on stdin), with the nginx command line", () => {
    const cmd = c.reloadProxy('testing');
    expect(cmd.argv).toEqual([
      'sh',
      '-s',
      'reload',
      'berth-testing',
      'nginx',
      '-e',
      'stderr',
      '-c',
      '/etc/nginx/berth/nginx.conf',
    ]);
    expect(cmd.stdin).toBe(program('proxy.sh'));
  });
  it('switches with proxy.sh (on stdin) and the new upstream as an argument', () => {
    const cmd = c.switchProxy({
      env: 'staging',
      upstreamFile: '/u.conf',
      conf: 'server a:8000;\n',
      app: 'a',
      path: '/health',
      token: 't',
      tries: 3,
    });
    expect(cmd.argv.slice(0, 4)).toEqual(['sh', '-s', 'switch', 'berth-staging']);
    expect(cmd.argv).toContain('server a:8000;\n');
    expect(cmd.stdin).toBe(program('proxy.sh'));
  });
  it('asks the running proxy where it routes (no app container involved)', () => {
    const cmd = c.routedAddress('staging', '/health', 'berth-check-1');
    expect(cmd.argv).toEqual([
      'sh',
      '-s',
      'routed-address',
      'berth-staging',
      '/health',
      'berth-check-1',
      '8080',
    ]);
    expect(cmd.stdin).toBe(program('proxy.sh'));
  });
});
