// The SSH edge of the deploy: a host the laptop does not know, a host whose key changed, a key
// the VM does not accept, and a connection that drops in the middle of a deploy. In every case
// the version that served before must still serve afterwards.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../../../src/deploy/time.js';
import {
  appContainers,
  cliEnv,
  deploy,
  explain,
  failureLine,
  historyLines,
  images,
  runCli,
  served,
  startCli,
  takeVm,
  testEnv,
  versions,
  vmReady,
  waitFor,
} from './harness.js';

const env = 'staging';
const scratch = mkdtempSync(path.join(os.tmpdir(), 'berth-ssh-e2e-'));

function newKeyPair(name: string): { privateKey: string; publicKey: string } {
  const file = path.join(scratch, name);
  execFileSync('ssh-keygen', [
    '-q',
    '-t',
    'ed25519',
    '-N',
    '',
    '-C',
    `berth-e2e ${name}`,
    '-f',
    file,
  ]);
  return { privateKey: file, publicKey: readFileSync(`${file}.pub`, 'utf8').trim() };
}

/** Lines the test VM's sshd logged since `from` (a length of the log taken earlier). */
function sshdLogSince(from: number): string {
  return readFileSync(testEnv.BERTH_VM_SSHD_LOG ?? '', 'utf8').slice(from);
}
const sshdLogLength = (): number => readFileSync(testEnv.BERTH_VM_SSHD_LOG ?? '', 'utf8').length;

/** The sshd processes serving connections of the test VM (descendants of its listener). */
function sshdSessionPids(): number[] {
  const listener = Number(readFileSync(testEnv.BERTH_VM_SSHD_PID_FILE ?? '', 'utf8').trim());
  const rows = execFileSync('ps', ['-e', '-o', 'pid=,ppid=,comm='], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .map(([pid, ppid, comm]) => ({ pid: Number(pid), ppid: Number(ppid), comm }));
  const found: number[] = [];
  let frontier = [listener];
  while (frontier.length > 0) {
    const children = rows
      .filter((row) => frontier.includes(row.ppid) && row.comm === 'sshd')
      .map((row) => row.pid);
    found.push(...children);
    frontier = children;
  }
  return found;
}

describe.skipIf(!vmReady)('deploy: SSH failures leave the VM serving', () => {
  let releaseVm = (): void => {};
  afterAll(() => releaseVm());

  let servingId = '';

  beforeAll(async () => {
    releaseVm = await takeVm(env);
    const r = await deploy(env, images.v1);
    expect(r.code, explain(r)).toBe(0);
    servingId = (await appContainers(env))[0]?.id ?? '';
  }, 900_000);

  afterAll(() => {
    execFileSync('rm', ['-rf', scratch]);
  });

  async function expectUntouched(historyBefore: number): Promise<void> {
    expect(await served(env)).toEqual({ status: 200, version: versions.v1 });
    expect((await appContainers(env)).map((c) => c.id)).toEqual([servingId]);
    expect(historyLines(env)).toHaveLength(historyBefore);
  }

  it('an unknown host key is refused before logging in', async () => {
    const knownHosts = path.join(scratch, 'known_hosts_other_host');
    const { publicKey } = newKeyPair('other-host');
    writeFileSync(
      knownHosts,
      `[127.0.0.2]:${testEnv.VM_SSH_PORT} ${publicKey.split(' ').slice(0, 2).join(' ')}\n`,
    );
    const history = historyLines(env).length;
    const logFrom = sshdLogLength();

    const r = await deploy(env, images.v2, cliEnv({ VM_KNOWN_HOSTS_FILE: knownHosts }));
    expect(r.code, explain(r)).toBe(1);
    expect(r.output).toMatch(/host key/i);
    expect(r.output).toMatch(/known/i);
    expect(sshdLogSince(logFrom)).not.toContain('Accepted publickey');
    await expectUntouched(history);
  });

  it('a changed host key (known_hosts names the VM with another key) is refused', async () => {
    const knownHosts = path.join(scratch, 'known_hosts_changed');
    const { publicKey } = newKeyPair('impostor-host');
    writeFileSync(
      knownHosts,
      `[${testEnv.VM_HOST}]:${testEnv.VM_SSH_PORT} ${publicKey.split(' ').slice(0, 2).join(' ')}\n`,
    );
    const history = historyLines(env).length;
    const logFrom = sshdLogLength();

    const r = await deploy(env, images.v2, cliEnv({ VM_KNOWN_HOSTS_FILE: knownHosts }));
    expect(r.code, explain(r)).toBe(1);
    expect(r.output).toMatch(/host key/i);
    expect(sshdLogSince(logFrom)).not.toContain('Accepted publickey');
    await expectUntouched(history);
  });

  it('a key the VM does not accept fails with an authentication error', async () => {
    const { privateKey } = newKeyPair('stranger');
    const history = historyLines(env).length;

    const r = await deploy(env, images.v2, cliEnv({ VM_SSH_KEY_FILE: privateKey }));
    expect(r.code, explain(r)).toBe(1);
    expect(r.output).toMatch(/auth|denied|permission/i);
    await expectUntouched(history);
  });

  it('a connection dropped during the health wait: the old version serves, the lock can be broken, the next deploy works', async () => {
    // A long health wait on an image that never gets healthy gives a wide window to cut the line.
    const run = startCli(
      ['deploy', '--env', env, '--image', images.unhealthy, '--json'],
      cliEnv({ DEPLOY_HEALTH_TIMEOUT_S: '60' }),
    );
    await waitFor(
      'the new container to start',
      async () =>
        (await appContainers(env)).some(
          (c) => c.image.includes(':unhealthy') || c.id !== servingId,
        ),
      60_000,
    );
    await sleep(1000);

    // Each connection has its own sshd processes under the listener: kill them, as a network
    // failure would end the session. The listener keeps running.
    const sessions = sshdSessionPids();
    expect(sessions.length).toBeGreaterThan(0);
    for (const pid of sessions) process.kill(pid, 'SIGKILL');

    const r = await run.done;
    expect(r.code, explain(r)).not.toBe(0);
    expect(failureLine(r.output) ?? r.output).toMatch(/connection|ssh|closed|lost|reset/i);
    // The proxy was never switched: v1 still answers.
    expect(await served(env)).toEqual({ status: 200, version: versions.v1 });

    // The lock is either released or can be broken explicitly; then a deploy goes through and
    // cleans up whatever the cut-off deploy left behind.
    const unlock = await runCli(['unlock', '--env', env]);
    expect(unlock.code, explain(unlock)).toBe(0);
    const next = await deploy(env, images.v2);
    expect(next.code, explain(next)).toBe(0);
    expect(await served(env)).toEqual({ status: 200, version: versions.v2 });
    const apps = await appContainers(env);
    expect(apps).toHaveLength(1);
    expect(apps[0]?.image).not.toContain(':unhealthy');
  });

  it('Ctrl-C during the health wait removes the new container and releases the lock', async () => {
    const before = (await appContainers(env)).map((c) => c.id);
    const run = startCli(
      ['deploy', '--env', env, '--image', images.unhealthy, '--json'],
      cliEnv({ DEPLOY_HEALTH_TIMEOUT_S: '60' }),
    );
    await waitFor(
      'the new container to start',
      async () => (await appContainers(env)).some((c) => !before.includes(c.id)),
      60_000,
    );
    await sleep(1000);
    // A terminal sends SIGINT to the whole foreground process group.
    process.kill(-(run.child.pid ?? 0), 'SIGINT');

    const r = await run.done;
    expect(r.code, explain(r)).not.toBe(0);
    expect(await served(env)).toEqual({ status: 200, version: versions.v2 });
    expect((await appContainers(env)).map((c) => c.id)).toEqual(before);
    // Lock released: a deploy that refuses to wait goes through at once.
    const next = await deploy(env, images.v1);
    expect(next.code, `${explain(next)}\n--- the interrupted run ---\n${r.output}`).toBe(0);
    expect(await served(env)).toEqual({ status: 200, version: versions.v1 });
  });
});
