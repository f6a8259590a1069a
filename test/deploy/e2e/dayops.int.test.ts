// Day-two operations against the test VM: logs (plain, --since, --tail, --grep, --follow ended by
// Ctrl-C with nothing left behind on the VM), exec in a one-off container of the live image
// (exit codes, stdin, app.env, the app's networks, no container left) and lock status.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../../../src/deploy/time.js';
import { repoRoot } from '../../helpers/real-tools.js';
import {
  cliEnv,
  deploy,
  docker,
  explain,
  images,
  remoteDir,
  runCli,
  takeVm,
  testEnv,
  testPorts,
  waitFor,
  vmReady,
  type CliResult,
} from './harness.js';

const env = 'testing';
const vmUser = testEnv.VM_USER ?? 'berth';

/** One request through the public port with its own X-Request-Id; returns the id. */
async function request(tag: string): Promise<string> {
  const id = `${tag}-${randomBytes(6).toString('hex')}`;
  const res = await fetch(`http://127.0.0.1:${testPorts[env]}/health`, {
    headers: { 'X-Request-Id': id },
    signal: AbortSignal.timeout(5000),
  });
  expect(res.status).toBe(200);
  return id;
}

/** `docker logs` processes of the VM's user on this machine (the VM's sshd runs here). */
async function remoteDockerLogs(): Promise<string[]> {
  const { stdout } = await promisify(execFile)('ps', ['-eo', 'user:32=,args=']);
  return stdout
    .split('\n')
    .filter((l) => l.trim().startsWith(`${vmUser} `) && /docker logs/.test(l));
}

/**
 * The CLI as `npm run deploy` runs it, but without npm in between (npm itself dies of a SIGINT,
 * hiding the CLI's exit code), in its own process group; `input` goes to its stdin.
 */
function startDirect(
  args: string[],
  input?: string,
): { child: ChildProcess; output: () => string; done: Promise<CliResult> } {
  const child = spawn('node', ['scripts/deploy.mjs', ...args], {
    cwd: repoRoot,
    env: cliEnv(),
    detached: true,
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  if (input !== undefined) child.stdin?.end(input);
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, output: stdout + stderr }));
  });
  return { child, output: () => stdout + stderr, done };
}

const oneOffs = async (): Promise<string> =>
  docker(['ps', '-a', '--filter', `label=berth.oneoff=${env}`, '--format', '{{.Names}}']);

describe.skipIf(!vmReady)('day-two operations on the test VM', () => {
  let releaseVm = (): void => {};
  afterAll(() => releaseVm());

  beforeAll(async () => {
    releaseVm = await takeVm(env);
    const r = await deploy(env, images.v1);
    expect(r.code, explain(r)).toBe(0);
  }, 900_000);

  it('logs shows the request log lines of the live app; --grep keeps only matching lines', async () => {
    const a = await request('dayops-a');
    const b = await request('dayops-b');
    await sleep(500);
    const all = await runCli(['logs', '--env', env]);
    expect(all.code, explain(all)).toBe(0);
    expect(all.stdout).toContain(a);
    expect(all.stdout).toContain(b);
    // No step lines: only the logs.
    expect(all.stdout).not.toMatch(/✓ connect/);

    const only = await runCli(['logs', '--env', env, '--grep', a]);
    expect(only.code, explain(only)).toBe(0);
    expect(only.stdout).toContain(a);
    expect(only.stdout).not.toContain(b);
    // The text is data, never shell: this must simply match nothing.
    const odd = await runCli(['logs', '--env', env, '--grep', `'; touch /tmp/x; echo "$(id)`]);
    expect(odd.code, explain(odd)).toBe(0);
    expect(odd.stdout.trim()).toBe('');
  });

  it('--tail and --since limit what is shown', async () => {
    await request('dayops-tail');
    const last = await runCli(['logs', '--env', env, '--tail', '1']);
    expect(last.code, explain(last)).toBe(0);
    expect(last.stdout.trim().split('\n')).toHaveLength(1);

    const old = await request('dayops-old');
    await sleep(1500);
    const between = new Date().toISOString();
    await sleep(1500);
    const recent = await request('dayops-recent');
    await sleep(500);
    const since = await runCli(['logs', '--env', env, '--since', between]);
    expect(since.code, explain(since)).toBe(0);
    expect(since.stdout).toContain(recent);
    expect(since.stdout).not.toContain(old);
    // A duration: the last hour holds both.
    const hour = await runCli(['logs', '--env', env, '--since', '1h']);
    expect(hour.stdout).toContain(old);
    expect(hour.stdout).toContain(recent);
  });

  it('--proxy shows the proxy’s logs', async () => {
    const r = await runCli(['logs', '--env', env, '--proxy', '--tail', '50']);
    expect(r.code, explain(r)).toBe(0);
    expect(r.output.trim().length).toBeGreaterThan(0);
  });

  it('--follow streams new lines; Ctrl-C ends it and leaves no docker logs on the VM', async () => {
    const run = startDirect(['logs', '--env', env, '--follow', '--tail', '0']);
    await waitFor('docker logs on the VM', async () => (await remoteDockerLogs()).length > 0);
    // The `docker logs` process can exist a moment before the daemon streams to it, and with
    // --tail 0 a line logged in that moment is never shown: keep logging until one arrives.
    const sent: string[] = [];
    await waitFor(
      'a new line',
      async () => {
        if (sent.some((id) => run.output().includes(id))) return true;
        sent.push(await request('dayops-follow'));
        return false;
      },
      20_000,
      1000,
    );
    process.kill(-(run.child.pid ?? 0), 'SIGINT');
    const r = await run.done;
    expect(r.code, explain(r)).toBe(130);
    await waitFor(
      'no docker logs left on the VM',
      async () => (await remoteDockerLogs()).length === 0,
      10_000,
    );
  });

  it('exec passes the exit code through', async () => {
    const r = await runCli(['exec', '--env', env, '--', 'node', '-e', 'process.exit(7)']);
    expect(r.code, explain(r)).toBe(7);
    const sh = await runCli(['exec', '--env', env, '--', 'sh', '-c', 'exit 3']);
    expect(sh.code, explain(sh)).toBe(3);
    expect(await oneOffs()).toBe('');
  });

  it('exec reads stdin, sees app.env, runs hardened as the image’s user and reaches the live app', async () => {
    const echo = await startDirect(
      ['exec', '--env', env, '--', 'node', '-e', 'process.stdin.pipe(process.stdout)'],
      'hello from stdin\n',
    ).done;
    expect(echo.code, explain(echo)).toBe(0);
    expect(echo.stdout).toBe('hello from stdin\n');

    const script = [
      'const fs=require("fs");',
      'let ro=false;try{fs.writeFileSync("/x","x")}catch{ro=true}',
      'fetch("http://berth-testing-app:8000/health").then(r=>r.json()).then(b=>{',
      'console.log(JSON.stringify({level:process.env.LOG_LEVEL,dollar:process.env.BERTH_T_DOLLAR,uid:process.getuid(),ro,version:b.version}))})',
    ].join('');
    const r = await runCli(['exec', '--env', env, '--', 'node', '-e', script]);
    expect(r.code, explain(r)).toBe(0);
    const seen = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
    expect(seen).toMatchObject({
      level: 'info',
      dollar: 'a$b${HOME}$',
      ro: true,
      version: '1.0.0-e2e',
    });
    expect(seen.uid).not.toBe(0);
    expect(await oneOffs()).toBe('');
  });

  it('Ctrl-C during exec removes the one-off container', async () => {
    const run = startDirect([
      'exec',
      '--env',
      env,
      '--',
      'node',
      '-e',
      'console.log("up");setTimeout(()=>{},60000)',
    ]);
    await waitFor(
      'the one-off to start',
      () => Promise.resolve(run.output().includes('up')),
      30_000,
    );
    expect(await oneOffs()).not.toBe('');
    process.kill(-(run.child.pid ?? 0), 'SIGINT');
    const r = await run.done;
    expect(r.code, explain(r)).toBe(130);
    await waitFor('no one-off container', async () => (await oneOffs()) === '', 15_000);
  });

  it('usage errors exit 2', async () => {
    const r = await runCli(['exec', '--env', env, 'node']);
    expect(r.code, explain(r)).toBe(2);
  });

  it('lock status names the holder while a lock is held, and says so when free', async () => {
    const free = await runCli(['lock', 'status', '--env', env]);
    expect(free.code, explain(free)).toBe(0);
    expect(free.stdout.trim()).toBe(`${env} is not locked`);

    const lockDir = path.join(remoteDir, env, '.deploy-lock');
    mkdirSync(lockDir);
    writeFileSync(
      path.join(lockDir, 'holder'),
      'who=alice@laptop action=rollback since=2026-01-01T10:00:00Z pid=4242 token=abcd\n',
    );
    try {
      const held = await runCli(['lock', 'status', '--env', env]);
      expect(held.code, explain(held)).toBe(0);
      expect(held.stdout).toMatch(
        /testing is locked by alice@laptop \(rollback since 2026-01-01T10:00:00Z/,
      );
      expect(held.stdout).toContain('pid 4242');
    } finally {
      rmSync(lockDir, { recursive: true, force: true });
    }
  });
});
