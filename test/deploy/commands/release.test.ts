// The release command's builder: the app's hardening, settings by file only, argv untouched.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../../src/deploy/commands/app.js';
import { removeRelease, runRelease } from '../../../src/deploy/commands/release.js';

const spec = {
  env: 'staging' as const,
  name: 'berth-staging-app-1-release',
  image: 'sha256:abc',
  envFile: '/opt/berth/staging/app.env',
  network: 'berth',
  argv: ['node', '-e', 'process.exit(3)'],
  timeoutS: 30,
  tuning: {},
};

describe('runRelease', () => {
  const cmd = runRelease(spec);
  it('passes name, shared network and timeout as $1..$3, then docker create arguments', () => {
    expect(cmd.name).toBe('release.run');
    expect(cmd.argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(cmd.argv.slice(3, 7)).toEqual(['sh', spec.name, 'berth', '30']);
    expect(cmd.argv.slice(-4)).toEqual(['sha256:abc', 'node', '-e', 'process.exit(3)']);
    expect(cmd.stdin).toBeUndefined();
  });
  it('has the hardening of the app container, and its project network and settings file', () => {
    const app = createApp({ ...spec, source: 'x', digest: 'd' }).argv;
    const after = (argv: string[], flag: string) =>
      argv.flatMap((a, i) => (a === flag ? [argv[i + 1]] : []));
    for (const flag of ['--network', '--env-file', '--tmpfs', '--cap-drop', '--security-opt'])
      expect(after(cmd.argv, flag), flag).toEqual(after(app, flag));
    expect(cmd.argv).toContain('--read-only');
    // Settings travel in the file: no --env / -e on the command line.
    expect(cmd.argv).not.toContain('--env');
  });
  it('the script is valid sh, kills on timeout and always removes the container', () => {
    const script = cmd.argv[2] ?? '';
    expect(spawnSync('sh', ['-n', '-c', script]).status).toBe(0);
    expect(script).toMatch(/timeout "\$secs" docker start -a "\$name"/);
    expect(script).toMatch(/docker rm -f "\$name"/);
  });
  it('runs with a stub docker: exit code passed through, container removed', () => {
    const calls: string[] = [];
    const script = cmd.argv[2] ?? '';
    const stub = `exec 9>&2; docker() { echo "docker $*" >&9; case "$1" in start) return 3;; esac; return 0; }; timeout() { shift; "$@"; }\n${script}`;
    const r = spawnSync('sh', ['-c', stub, 'sh', ...cmd.argv.slice(4)], { encoding: 'utf8' });
    calls.push(...r.stderr.split('\n'));
    expect(r.status).toBe(3);
    expect(calls.some((l) => l.startsWith('docker network connect berth '))).toBe(true);
    expect(calls.filter(Boolean).at(-1)).toBe(`docker rm -f ${spec.name}`);
  });
  it('removeRelease force-removes by name', () => {
    expect(removeRelease('x-release')).toEqual({
      name: 'release.remove',
      argv: ['docker', 'rm', '-f', 'x-release'],
    });
  });
});
