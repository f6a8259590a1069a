// The command line and what it prints, without a VM: argument errors, settings errors, the
// step lines, the one failure line, the JSON line and the GitHub step summary.
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { PassThrough } from 'node:stream';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { main, parseInvocation } from '../../src/deploy/cli.js';
import { failureLine, Reporter, type Output, type Result } from '../../src/deploy/report.js';
import { repoRoot } from '../helpers/real-tools.js';

function capture(): Output & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return { lines, errors, out: (l) => lines.push(l), err: (l) => errors.push(l) };
}

describe('arguments', () => {
  it('reads each command', () => {
    expect(
      parseInvocation(['deploy', '--env', 'staging', '--image', 'reg:5000/berth:v1', '--json']),
    ).toEqual({ command: 'deploy', env: 'staging', image: 'reg:5000/berth:v1', json: true });
    expect(parseInvocation(['rollback', '--env', 'production', 'sha256:abc'])).toMatchObject({
      command: 'rollback',
      version: 'sha256:abc',
    });
    expect(parseInvocation(['status'])).toMatchObject({ command: 'status', env: undefined });
    expect(parseInvocation(['deploy', '-e', 'testing', '-i', 'r/b:1', '-v'])).toMatchObject({
      verbose: true,
    });
    expect(parseInvocation(['--help'])).toMatchObject({ command: 'help' });
    expect(parseInvocation(['lock', 'status', '--env', 'testing'])).toEqual({
      command: 'lock-status',
      env: 'testing',
      json: false,
    });
  });
  it('reads logs options', () => {
    expect(
      parseInvocation([
        'logs',
        '--env',
        'staging',
        '--follow',
        '--since',
        '10m',
        '--tail',
        '20',
        '--grep',
        "'; rm -rf / #",
        '--proxy',
      ]),
    ).toMatchObject({
      command: 'logs',
      env: 'staging',
      logs: { follow: true, since: '10m', tail: 20, grep: "'; rm -rf / #", proxy: true },
    });
    expect(parseInvocation(['logs', '-e', 'testing', '-f', '-n', '5'])).toMatchObject({
      logs: { follow: true, tail: 5, proxy: false },
    });
    for (const since of ['1h30m', '90s', '2026-01-01', '2026-01-01T10:00:00Z', '1767261600'])
      expect(parseInvocation(['logs', '--env', 'testing', '--since', since]).logs?.since).toBe(
        since,
      );
  });
  it('reads exec: everything after -- is the command, options included', () => {
    expect(
      parseInvocation(['exec', '--env', 'testing', '--', 'node', '-e', 'x', '--env', 'y', '--']),
    ).toMatchObject({
      command: 'exec',
      env: 'testing',
      run: ['node', '-e', 'x', '--env', 'y', '--'],
      interactive: false,
    });
    expect(
      parseInvocation(['exec', '--interactive', '--env', 'testing', '--', 'sh']),
    ).toMatchObject({ interactive: true, run: ['sh'] });
  });
  it.each([
    [['deploy', '--env', 'staging'], /--image/],
    [
      ['deploy', '--env', 'prod', '--image', 'a:b'],
      /--env must be one of production, staging, testing/,
    ],
    [['deploy', '--env', 'staging', '--image', 'a b'], /not an image reference/],
    [['history'], /needs --env/],
    [['launch'], /unknown command "launch"/],
    [['status', '--force'], /Unknown option/],
    [['rollback', '--env', 'staging', 'a', 'b'], /at most one VERSION/],
    [['--env', 'staging', '--image', 'x'], /which command\?/],
    [[], /which command\?/],
    [['logs'], /needs --env/],
    [['logs', '--env', 'testing', '--tail', 'ten'], /--tail must be a number/],
    [['logs', '--env', 'testing', '--since', '10 minutes'], /--since must be/],
    [['logs', '--env', 'testing', '--grep', ''], /--grep needs some text/],
    [['status', '--follow'], /--follow is only for logs/],
    [['deploy', '--env', 'testing', '--image', 'a:b', '--interactive'], /only for exec/],
    [['exec', '--env', 'testing'], /exec needs a command after --/],
    [['exec', '--env', 'testing', 'node', '-v'], /Unknown option|after --/],
    [['exec', '--env', 'testing', 'ls'], /put the command after --/],
    [['exec', '--', 'ls'], /needs --env/],
    [['status', '--', 'ls'], /only exec takes a command/],
    [['lock', '--env', 'testing'], /lock status --env ENV/],
    [['lock', 'take', '--env', 'testing'], /lock status --env ENV/],
    [['backup'], /backup needs --env/],
    [['backup', '--env', 'testing', 'x.dump'], /unexpected argument "x.dump"/],
    [['restore', '--env', 'testing'], /restore needs the backup FILE/],
    [['restore', '--env', 'testing', '../../etc/passwd'], /is not a backup's file name/],
    [['restore', '--env', 'testing', 'a.dump', 'b.dump'], /unexpected argument "b.dump"/],
    [['deploy', '--env', 'testing', '--image', 'a:b', '--yes'], /--yes is only for restore/],
    [['restore', '--env', 'testing', 'a.dump', '--list'], /--list is only for backup/],
  ])('refuses %j', async (argv, message) => {
    const io = capture();
    expect(await main(argv, { env: {}, repoRoot, io })).toBe(2);
    expect(io.errors.join('\n')).toMatch(message);
    expect(io.errors.join('\n')).toContain('Usage: npm run deploy');
  });
  it('reads backup and restore', () => {
    expect(parseInvocation(['backup', '--env', 'staging', '--list'])).toMatchObject({
      command: 'backup',
      env: 'staging',
      list: true,
    });
    expect(
      parseInvocation(['restore', '--env', 'staging', 'staging-20260101T031500.000Z.dump', '-y']),
    ).toMatchObject({
      command: 'restore',
      backupName: 'staging-20260101T031500.000Z.dump',
      yes: true,
    });
  });
  it('refuses a restore without --yes when nobody can confirm, before reading settings or connecting', async () => {
    const io = capture();
    const stdin = Object.assign(new PassThrough(), {
      isTTY: false,
    }) as unknown as NodeJS.ReadStream;
    expect(
      await main(['restore', '--env', 'staging', 'staging-1.dump'], {
        env: {},
        repoRoot,
        io,
        stdin,
      }),
    ).toBe(2);
    expect(io.errors).toEqual([
      "restore refused: it replaces staging's data and nobody can confirm (stdin is not a terminal); run it from a terminal, or pass --yes",
    ]);
  });
  it('stops on bad settings before connecting, naming the variable', async () => {
    const io = capture();
    expect(
      await main(['deploy', '--env', 'staging', '--image', 'a:b'], {
        env: { VM_USER: 'x' },
        repoRoot,
        io,
      }),
    ).toBe(2);
    expect(io.errors).toEqual([
      'deploy failed: bad configuration: VM_HOST is required (the VM address). Set it in .env or the environment (see .env.example)',
    ]);
    expect(io.lines).toEqual([]);
  });
  it('prints usage for --help', async () => {
    const io = capture();
    expect(await main(['--help'], { env: {}, repoRoot, io })).toBe(0);
    expect(io.lines.join('\n')).toMatch(/rollback --env ENV \[VERSION\]/);
  });
});

describe('report', () => {
  it('times each step and marks the failed one', async () => {
    const io = capture();
    const r = new Reporter(io);
    await r.step(
      'pull image',
      () => Promise.resolve('x'),
      () => 'abc',
    );
    await expect(r.step('health check', () => Promise.reject(new Error('no')))).rejects.toThrow(
      'no',
    );
    expect(io.lines[0]).toMatch(/^✓ pull image \d\.\d\ds {2}abc$/);
    expect(io.lines[1]).toMatch(/^✗ health check \d\.\d\ds$/);
    expect(r.steps.map((s) => [s.name, s.ok])).toEqual([
      ['pull image', true],
      ['health check', false],
    ]);
  });
  it('ends a failure with logs, then ONE reason line, then JSON and the step summary', () => {
    const io = capture();
    const r = new Reporter(io);
    const summaryFile = path.join(
      mkdtempSync(path.join(os.tmpdir(), 'berth-summary-')),
      'summary.md',
    );
    const result: Result = {
      ok: false,
      action: 'deploy',
      env: 'staging',
      image: 'r/b:v2',
      digest: 'sha256:' + 'a'.repeat(64),
      rolledBack: true,
      reason: 'the new container kept crashing',
      advice: ':stable now serves',
      steps: [{ name: 'pull image', ms: 1200, ok: true }],
    };
    r.finish(result, { json: true, logs: 'boom\nexit 3\n', summaryFile });
    expect(io.errors).toEqual([
      '--- last log lines of the new container ---',
      'boom',
      'exit 3',
      '---',
      'deploy failed: the new container kept crashing. :stable now serves',
    ]);
    expect(JSON.parse(io.lines.at(-1) ?? '')).toMatchObject({
      ok: false,
      env: 'staging',
      rolledBack: true,
      steps: [{ name: 'pull image', ms: 1200, ok: true }],
    });
    const md = readFileSync(summaryFile, 'utf8');
    expect(md).toContain('| environment | staging |');
    expect(md).toContain(`| digest | \`sha256:${'a'.repeat(64)}\` |`);
    expect(md).toContain('| rolled back to :stable | yes |');
    expect(md).toContain('| ✅ pull image | 1.2s |');
  });
  it('keeps the failure on one line', () => {
    expect(failureLine({ action: 'rollback', reason: 'x.', advice: 'Do y' })).toBe(
      'rollback failed: x. Do y',
    );
  });
});
