// logs and exec as data: the argv of each builder, and the hang-up wrapper in a real shell.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { toShell } from '../../../src/deploy/commands/command.js';
import * as c from '../../../src/deploy/commands/oneoff.js';
import { lockStatus, lineFilter } from '../../../src/deploy/dayops.js';
import type { DeployConfig } from '../../../src/deploy/config.js';
import type { Executor } from '../../../src/deploy/ssh.js';

/** The command a builder wraps in untilHangup: its argv after `sh -c SCRIPT sh`. */
const inner = (argv: string[]): string[] => argv.slice(4);

describe('logs', () => {
  it('is docker logs of the named container, flags before the name, behind the hang-up wrapper', () => {
    const cmd = c.containerLogStream('berth-testing-app-1', {
      follow: true,
      since: '10m',
      tail: 50,
    });
    expect(cmd.name).toBe('logs.stream');
    expect(cmd.argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(inner(cmd.argv)).toEqual([
      'docker',
      'logs',
      '--follow',
      '--since',
      '10m',
      '--tail',
      '50',
      '--',
      'berth-testing-app-1',
    ]);
    expect(inner(c.containerLogStream('x').argv)).toEqual(['docker', 'logs', '--', 'x']);
  });
  it('finds the proxy by its compose labels', () => {
    expect(c.findProxy('staging').argv).toEqual([
      'docker',
      'ps',
      '-aq',
      '--filter',
      'label=com.docker.compose.project=berth-staging',
      '--filter',
      'label=com.docker.compose.service=proxy',
    ]);
  });
  it('the hang-up wrapper passes the exit code and output, and stops the command when stdin ends', async () => {
    const wrapped = c.containerLogStream('x');
    // Swap docker for a stand-in: the wrapper runs whatever follows the script.
    const script = wrapped.argv[2] ?? '';
    const quick = spawn('sh', ['-c', script, 'sh', 'sh', '-c', 'echo hi; exit 4'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let out = '';
    quick.stdout.on('data', (d: Buffer) => (out += d.toString()));
    // stdin stays open (as over SSH): the command ends by itself, with its own code.
    expect(await new Promise((r) => quick.on('close', r))).toBe(4);
    expect(out).toBe('hi\n');
    quick.stdin.end();

    // A "follow" that never ends by itself: closing stdin must end it, quickly.
    const child = spawn('sh', ['-c', script, 'sh', 'sleep', '30'], {
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    const started = Date.now();
    await new Promise((r) => setTimeout(r, 300));
    child.stdin.end();
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(Date.now() - started).toBeLessThan(5000);
    expect(code).not.toBe(0);
  });
  it('filters lines by a fixed string, across chunk boundaries', () => {
    const seen: string[] = [];
    const f = lineFilter((l) => seen.push(l), '$(id)');
    f.push('a $(i');
    f.push('d) b\nno\r\nyes $(id)\nlast $(id)');
    f.flush();
    expect(seen).toEqual(['a $(id) b', 'yes $(id)', 'last $(id)']);
    const all: string[] = [];
    const g = lineFilter((l) => all.push(l));
    g.push('x\ny\n');
    g.flush();
    expect(all).toEqual(['x', 'y']);
  });
});

describe('exec: a one-off container of the live image', () => {
  const spec: c.OneOffSpec = {
    env: 'production',
    name: 'berth-production-oneoff-20260101000000-abcd',
    image: 'sha256:1234',
    envFile: '/opt/berth/production/app.env',
    sharedNetwork: 'berth',
    tty: false,
    command: ['node', '-e', 'process.exit(7)'],
  };
  const argv = c.runOneOff(spec).argv;
  const value = (flag: string) => argv.filter((_, i) => argv[i - 1] === flag);

  it('runs --rm under a known name, with stdin, the app settings and both networks', () => {
    expect(argv.slice(0, 3)).toEqual(['docker', 'run', '--rm']);
    expect(value('--name')).toEqual([spec.name]);
    expect(argv).toContain('-i');
    expect(argv).not.toContain('-t');
    expect(c.runOneOff({ ...spec, tty: true }).argv).toContain('-t');
    expect(value('--network')).toEqual(['berth-production_default', 'berth']);
    expect(value('--env-file')).toEqual(['/opt/berth/production/app.env']);
  });
  it('is hardened like the app container and runs as the image’s own user', () => {
    expect(argv).toContain('--read-only');
    expect(value('--cap-drop')).toEqual(['ALL']);
    expect(value('--security-opt')).toEqual(['no-new-privileges=true']);
    expect(argv).not.toContain('--user');
    expect(argv).not.toContain('--privileged');
  });
  it('is not an app container: deploys and pruning (label berth.env) never see it', () => {
    expect(value('--label')).toEqual(['berth.oneoff=production']);
  });
  it('ends with the image and the command, each word its own argument', () => {
    expect(argv.slice(-4)).toEqual(['sha256:1234', 'node', '-e', 'process.exit(7)']);
    expect(toShell(c.runOneOff(spec))).toContain(`'process.exit(7)'`);
  });
  it('is removed by name after an interrupt', () => {
    expect(c.removeOneOff(spec.name).argv).toEqual(['docker', 'rm', '-f', spec.name]);
  });
});

describe('lock status', () => {
  const cfg = { remoteDir: '/opt/berth' } as DeployConfig;
  const fake = (stdout: string): Executor => ({
    target: 'fake',
    close: () => {},
    run: (cmd) => {
      expect(cmd.name).toBe('lock.show');
      expect(cmd.argv.at(-1)).toBe('/opt/berth/staging/.deploy-lock');
      return Promise.resolve({ code: 0, stdout, stderr: '' });
    },
  });
  it('names the holder, what it does and since when', async () => {
    expect(
      await lockStatus(
        fake('who=ann@ci action=deploy since=2026-01-01T10:00:00Z pid=77 token=ab\n'),
        cfg,
        'staging',
      ),
    ).toMatch(
      /^staging is locked by ann@ci \(deploy since 2026-01-01T10:00:00Z, \d+ s ago\), pid 77/,
    );
  });
  it('says when it is free', async () => {
    expect(await lockStatus(fake(''), cfg, 'staging')).toBe('staging is not locked');
  });
});
