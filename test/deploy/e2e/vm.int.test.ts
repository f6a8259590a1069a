// The test VM itself (scripts/test-env/vm.sh): what the deploy scenarios rely on, checked with
// OpenSSH's own client so a broken VM is reported as such and not as a deploy bug.
import { execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadTestEnv, requirePart } from '../../helpers/real-tools.js';
import { sleep } from '../../../src/deploy/time.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..', '..', '..');
const vm = loadTestEnv();
const ready = requirePart(
  'the deploy test VM',
  () => Boolean(vm.VM_HOST && vm.VM_SSH_KEY_FILE && vm.VM_KNOWN_HOSTS_FILE),
  'run `bash scripts/test-env/vm.sh up` as root',
);

function ssh(args: string[], options: string[] = []): Promise<{ stdout: string; stderr: string }> {
  return run('ssh', [
    '-p',
    vm.VM_SSH_PORT ?? '22',
    '-o',
    'BatchMode=yes',
    '-o',
    'ConnectTimeout=5',
    '-o',
    `UserKnownHostsFile=${vm.VM_KNOWN_HOSTS_FILE}`,
    '-o',
    'StrictHostKeyChecking=yes',
    ...options,
    `${vm.VM_USER}@${vm.VM_HOST}`,
    ...args,
  ]);
}

describe.skipIf(!ready)('test VM (scripts/test-env/vm.sh)', () => {
  it('offers the host key that VM_KNOWN_HOSTS_FILE names, and only that one', async () => {
    const { stdout } = await run('ssh-keyscan', ['-p', vm.VM_SSH_PORT ?? '22', vm.VM_HOST ?? '']);
    const offered = stdout.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(offered).toEqual([readFileSync(vm.VM_KNOWN_HOSTS_FILE ?? '', 'utf8').trim()]);
  });

  it("lets the deploy user in with the deploy key, and that user's docker reaches the engine", async () => {
    // ssh joins its arguments into one remote shell line; the path has no characters to quote.
    const script = `docker version --format '{{.Server.Version}}' && docker compose version --short && test -w '${vm.BERTH_REMOTE_DIR}' && echo writable`;
    const { stdout } = await ssh([script], ['-i', vm.VM_SSH_KEY_FILE ?? '']);
    const [server, compose, writable] = stdout.trim().split('\n');
    expect(server).toMatch(/^\d+\.\d+/);
    expect(compose).toMatch(/^\d+\.\d+/);
    expect(writable).toBe('writable');
  });

  it('offers public-key authentication only (no password, no keyboard-interactive)', async () => {
    const attempt = ssh(
      ['true'],
      [
        '-o',
        'PubkeyAuthentication=no',
        '-o',
        'PreferredAuthentications=password,keyboard-interactive',
      ],
    );
    await expect(attempt).rejects.toMatchObject({
      stderr: expect.stringContaining('Permission denied (publickey)') as unknown,
    });
  });

  it('refuses root, even with the deploy key', async () => {
    const attempt = run('ssh', [
      '-p',
      vm.VM_SSH_PORT ?? '22',
      '-i',
      vm.VM_SSH_KEY_FILE ?? '',
      '-o',
      'BatchMode=yes',
      '-o',
      `UserKnownHostsFile=${vm.VM_KNOWN_HOSTS_FILE}`,
      `root@${vm.VM_HOST}`,
      'true',
    ]);
    await expect(attempt).rejects.toMatchObject({
      stderr: expect.stringContaining('Permission denied') as unknown,
    });
  });

  // What broke CI once: a machine image carried sshd.pid over, and its number belonged to a
  // live process that was not sshd, so `up` believed sshd was running.
  it('`up` starts sshd when sshd.pid names some other live process', async () => {
    const pidFile = vm.BERTH_VM_SSHD_PID_FILE ?? '';
    const listener = Number(readFileSync(pidFile, 'utf8').trim());
    const stranger = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      process.kill(listener, 'SIGTERM');
      for (let i = 0; i < 50 && alive(listener); i++) await sleep(100);
      writeFileSync(pidFile, `${stranger.pid}\n`);

      await run('bash', [path.join(root, 'scripts/test-env/vm.sh'), 'up'], { cwd: root });

      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      expect(pid).not.toBe(stranger.pid);
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain('sshd');
      expect((await ssh(['echo', 'in'], ['-i', vm.VM_SSH_KEY_FILE ?? ''])).stdout.trim()).toBe(
        'in',
      );
    } finally {
      stranger.kill();
      // Leave a running VM for the files after this one, whatever happened above.
      await run('bash', [path.join(root, 'scripts/test-env/vm.sh'), 'up'], { cwd: root });
    }
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
