// The pure parts of the deploy: known_hosts matching, history, retention, health verdicts, lock
// holder text, settings and arguments.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/deploy/config.js';
import { envForBranch, environmentInfo } from '../../../src/deploy/environments.js';
import { containerName, pickDigest } from '../../../src/deploy/flow.js';
import { judgeHealth, parseContainerState } from '../../../src/deploy/health.js';
import { findVersion, formatEntry, parseHistory, parseLine, previousHealthy, repositoryOf, type HistoryEntry } from '../../../src/deploy/history.js';
import { fingerprint, hostKeyAlgorithms, parseKnownHosts, verifyHostKey } from '../../../src/deploy/known-hosts.js';
import { describeHolder, holderLine } from '../../../src/deploy/lock.js';
import { planRetention } from '../../../src/deploy/retention.js';
import { redact } from '../../../src/deploy/ssh.js';
import { requireTool } from '../../helpers/real-tools.js';

// ssh-keygen makes real keys and hashed known_hosts, so the parsing is checked against OpenSSH itself.
const hasKeygen = requireTool('ssh-keygen', 'apt-get install openssh-client (scripts/test-env/vm.sh up installs it)');

const scratch = mkdtempSync(path.join(os.tmpdir(), 'berth-unit-'));
function keygen(name: string): { file: string; pub: string; blob: Buffer } {
  const file = path.join(scratch, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file]);
  const pub = readFileSync(`${file}.pub`, 'utf8').trim();
  return { file, pub, blob: Buffer.from(pub.split(' ')[1] ?? '', 'base64') };
}

describe.skipIf(!hasKeygen)('known_hosts', () => {
  const vm = keygen('vm');
  const other = keygen('other');
  const line = (hosts: string, k = vm) => `${hosts} ${k.pub.split(' ').slice(0, 2).join(' ')}`;

  it('accepts the key listed for [host]:port and for a bare host on port 22', () => {
    expect(verifyHostKey(parseKnownHosts(line('[10.0.0.5]:2222')), '10.0.0.5', 2222, vm.blob)).toEqual({ kind: 'known' });
    expect(verifyHostKey(parseKnownHosts(line('vm.example,10.0.0.5')), '10.0.0.5', 22, vm.blob)).toEqual({ kind: 'known' });
  });
  it('calls a host with no entry unknown (never trusted on first use), and gives its fingerprint', () => {
    const v = verifyHostKey(parseKnownHosts(line('[10.0.0.6]:2222')), '10.0.0.5', 2222, vm.blob);
    expect(v).toEqual({ kind: 'unknown', fingerprint: fingerprint(vm.blob) });
    // Same fingerprint as ssh-keygen prints.
    expect(execFileSync('ssh-keygen', ['-lf', `${vm.file}.pub`]).toString()).toContain(fingerprint(vm.blob));
    expect(verifyHostKey(parseKnownHosts(line('10.0.0.5')), '10.0.0.5', 2222, vm.blob).kind).toBe('unknown');
  });
  it('calls a different key for a listed host changed', () => {
    expect(verifyHostKey(parseKnownHosts(line('[10.0.0.5]:2222', other)), '10.0.0.5', 2222, vm.blob).kind).toBe('changed');
  });
  it('reads hashed entries as ssh-keygen -H writes them', () => {
    const file = path.join(scratch, 'known_hosts');
    writeFileSync(file, `${line('[10.0.0.5]:2222')}\n`);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', file], { stdio: 'ignore' });
    const hashed = readFileSync(file, 'utf8');
    expect(hashed).toMatch(/^\|1\|/);
    expect(verifyHostKey(parseKnownHosts(hashed), '10.0.0.5', 2222, vm.blob)).toEqual({ kind: 'known' });
    expect(verifyHostKey(parseKnownHosts(hashed), '10.0.0.6', 2222, vm.blob).kind).toBe('unknown');
  });
  it('refuses a @revoked key even when it is also listed', () => {
    const text = `@revoked ${line('*')}\n${line('[10.0.0.5]:2222')}\n`;
    expect(verifyHostKey(parseKnownHosts(text), '10.0.0.5', 2222, vm.blob).kind).toBe('revoked');
  });
  it('offers only the key types known for the host, as OpenSSH does', () => {
    const text = `[10.0.0.5]:2222 ssh-rsa AAAA\n[10.0.0.5]:2222 ecdsa-sha2-nistp256 AAAA\nother ssh-ed25519 AAAA\n@revoked [10.0.0.5]:2222 ssh-ed25519 AAAA\n`;
    expect(hostKeyAlgorithms(parseKnownHosts(text), '10.0.0.5', 2222)).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa', 'ecdsa-sha2-nistp256']);
    expect(hostKeyAlgorithms(parseKnownHosts(text), '10.0.0.9', 2222)).toEqual([]);
  });
  it('ignores comments, blank lines and a negated pattern', () => {
    expect(verifyHostKey(parseKnownHosts(`# c\n\n${line('10.0.0.*,!10.0.0.5')}\n`), '10.0.0.5', 22, vm.blob).kind).toBe('unknown');
  });
});

describe('history', () => {
  const e = (digest: string, result: HistoryEntry['result'], image = `r/b:${digest}`): HistoryEntry => ({ time: '2026-01-01T00:00:00Z', action: 'deploy', env: 'production', image, digest: `sha256:${digest.padEnd(64, '0')}`, result, who: 'ci@x' });
  const log = [e('aa', 'ok'), e('bb', 'ok'), e('cc', 'failed'), e('dd', 'ok')];

  it('round-trips a line, quoting a reason with spaces', () => {
    const entry = { ...e('aa', 'failed'), reason: 'GET /health "500" in 5 s' };
    expect(parseLine(formatEntry(entry))).toEqual(entry);
    expect(formatEntry(entry)).toMatch(/^time=2026-01-01T00:00:00Z action=deploy env=production image=r\/b:aa digest=sha256:aa0+ result=failed who=ci@x reason="GET \/health \\"500\\" in 5 s"$/);
  });
  it('rollback goes to the last healthy digest that is not serving now', () => {
    expect(previousHealthy(log, log[3]?.digest)?.digest).toBe(log[1]?.digest);
    expect(previousHealthy(log, undefined)?.digest).toBe(log[3]?.digest);
    expect(previousHealthy([e('aa', 'ok')], log[0]?.digest)).toBeUndefined();
  });
  it('finds a named version by digest, digest prefix, image or tag, never a failed one', () => {
    expect(findVersion(log, log[0]?.digest ?? '')?.image).toBe('r/b:aa');
    expect(findVersion(log, 'bb00000')?.image).toBe('r/b:bb');
    expect(findVersion(log, 'r/b:dd')?.image).toBe('r/b:dd');
    expect(findVersion(log, 'dd')?.image).toBe('r/b:dd');
    expect(findVersion(log, 'cc')).toBeUndefined();
  });
  it('skips lines it cannot read', () => {
    expect(parseHistory('garbage\n\ntime=x digest=y result=ok\n')).toHaveLength(1);
  });
  it('knows a registry port from a tag', () => {
    expect(repositoryOf('127.0.0.1:5000/berth-e2e:v1')).toBe('127.0.0.1:5000/berth-e2e');
    expect(repositoryOf('127.0.0.1:5000/berth-e2e@sha256:ab')).toBe('127.0.0.1:5000/berth-e2e');
    expect(repositoryOf('ghcr.io/acme/berth')).toBe('ghcr.io/acme/berth');
  });
  it('picks the digest of the repository that was pulled', () => {
    const d = (x: string) => `sha256:${x.repeat(64)}`;
    expect(pickDigest('reg:5000/a:v1', [`other/b@${d('1')}`, `reg:5000/a@${d('2')}`])).toBe(d('2'));
    expect(pickDigest(`reg:5000/a@${d('3')}`, [`reg:5000/a@${d('2')}`])).toBe(d('3'));
    expect(pickDigest('acme/berth:v1', [`docker.io/acme/berth@${d('4')}`])).toBe(d('4'));
    expect(pickDigest('a:v1', [])).toBeUndefined();
  });
});

describe('retention', () => {
  const hex = (n: number) => String(n).repeat(12).slice(0, 12);
  const digest = (n: number) => `sha256:${hex(n)}${'0'.repeat(52)}`;
  const images = [1, 2, 3, 4].map((n) => ({ tag: hex(n), id: `id${n}` }));

  it('keeps the newest N healthy images and always :stable and the live one', () => {
    const plan = planRetention({ keep: 2, images: [...images, { tag: 'stable', id: 'id1' }], healthy: [4, 3, 2, 1].map(digest), protectedIds: ['id1', 'id4'], containers: [] });
    expect(plan.untag).toEqual([hex(2)]);
  });
  it('prunes tags it has no history for first', () => {
    const plan = planRetention({ keep: 1, images, healthy: [digest(2)], protectedIds: [], containers: [] });
    expect(plan.untag.sort()).toEqual([hex(1), hex(3), hex(4)].sort());
  });
  it('keeps the newest N stopped containers, never the live or a running one', () => {
    const containers = ['berth-x-app-20260101000001-a', 'berth-x-app-20260101000003-a', 'berth-x-app-20260101000002-a', 'berth-x-app-20260101000004-a'].map((name) => ({ name, state: 'exited' }));
    containers.push({ name: 'berth-x-app-20260101000000-a', state: 'running' });
    const plan = planRetention({ keep: 2, images: [], healthy: [], protectedIds: [], containers, live: 'berth-x-app-20260101000004-a' });
    expect(plan.removeContainers).toEqual(['berth-x-app-20260101000001-a']);
  });
  it('removes a version as a pair: its stopped container goes with its image, so rmi is not refused', () => {
    // keep 2 containers by age would keep 0001's container; its image (tag 1) is dropped, so it goes too.
    const containers = [
      { name: 'berth-x-app-20260101000004-a', state: 'running', digest: digest(4) },
      { name: 'berth-x-app-20260101000001-a', state: 'exited', digest: digest(1) },
    ];
    const plan = planRetention({ keep: 1, images, healthy: [4, 3, 2, 1].map(digest), protectedIds: ['id4'], containers, live: 'berth-x-app-20260101000004-a' });
    expect(plan.untag.sort()).toEqual([hex(1), hex(2), hex(3)]);
    expect(plan.removeContainers).toEqual(['berth-x-app-20260101000001-a']);
  });
  it('removes the registry name a dropped version was deployed by, unless another environment or a hand pull names it', () => {
    const plan = planRetention({
      keep: 1,
      images,
      healthy: [4, 3, 2, 1].map(digest),
      protectedIds: ['id4'],
      containers: [],
      names: {
        id1: ['localhost/berth-x:111111111111', 'reg.example/berth:v1'],
        id2: ['berth-x:222222222222', 'reg.example/berth:v2', 'berth-production:222222222222'],
        id3: ['berth-x:333333333333', 'reg.example/berth:pulled-by-hand'],
      },
      deployedRefs: ['reg.example/berth:v1', 'reg.example/berth:v2', 'reg.example/berth:v4'],
      otherEnvTag: /(^|\/)berth-(production|testing):/,
    });
    expect(plan.removeNames).toEqual(['reg.example/berth:v1']);
  });
  it('keeps the names of a dropped version whose container stays', () => {
    const containers = [{ name: 'berth-x-app-20260101000002-a', state: 'running', digest: digest(2) }];
    const plan = planRetention({ keep: 1, images, healthy: [4, 3, 2, 1].map(digest), protectedIds: ['id4'], containers, names: { id2: ['reg.example/berth:v2'] }, deployedRefs: ['reg.example/berth:v2'] });
    expect(plan.removeNames).toEqual([]);
  });
});

describe('health verdicts', () => {
  const o = { path: '/health', timeoutS: 20, successes: 2 };
  const running = parseContainerState('running\t0\t0\t2026-01-01T00:00:00Z\tsha256:1\tsha256:d\tr/b:v1');
  it('reads docker inspect', () => {
    expect(running).toEqual({ status: 'running', exitCode: 0, restarts: 0, startedAt: '2026-01-01T00:00:00Z', imageId: 'sha256:1', digest: 'sha256:d', image: 'r/b:v1' });
    expect(parseContainerState('running\t0\t0\t\tsha256:1\t<no value>\t<no value>')?.digest).toBe('');
  });
  it('passes only on exit 0', () => {
    expect(judgeHealth({ code: 0, stdout: 'healthy: 2 answers in a row, last HTTP 200\n', stderr: '' }, running, o).healthy).toBe(true);
  });
  it('says which path and what it last answered', () => {
    expect(judgeHealth({ code: 1, stdout: 'unhealthy: last answer HTTP 500\n', stderr: '' }, running, o).reason).toBe('the new container did not pass the health check: GET /health was not 2xx 2 time(s) in a row within 20 s (last answer HTTP 500)');
  });
  it('calls a restarting or exited container a crash', () => {
    expect(judgeHealth({ code: 137, stdout: '', stderr: '' }, { ...running!, restarts: 3 }, o).reason).toMatch(/kept crashing .*restarted 3/);
    expect(judgeHealth({ code: 125, stdout: '', stderr: '' }, { ...running!, status: 'exited', exitCode: 3 }, o).reason).toMatch(/exited with code 3/);
    expect(judgeHealth({ code: 125, stdout: '', stderr: '' }, undefined, o).reason).toMatch(/disappeared/);
  });
});

describe('lock holder', () => {
  it('says who and since when, and how long ago', () => {
    const line = holderLine({ who: 'ana@laptop', action: 'deploy', since: '2026-01-01T10:00:00Z', pid: 42, token: 'abc' });
    expect(describeHolder(line, new Date('2026-01-01T10:01:30Z'))).toBe('ana@laptop (deploy since 2026-01-01T10:00:00Z, 90 s ago)');
    expect(describeHolder('someone (no holder file yet)\n')).toBe('someone (no holder file yet)');
  });
});

describe.skipIf(!hasKeygen)('settings', () => {
  const key = keygen('client');
  const known = path.join(scratch, 'kh');
  writeFileSync(known, '[h]:22 ssh-ed25519 AAAA\n');
  const base = { VM_HOST: 'vm', VM_USER: 'deploy', VM_SSH_KEY_FILE: key.file, VM_KNOWN_HOSTS_FILE: known };
  const fails = (env: Record<string, string>) => {
    try {
      loadConfig(env, 'me@here');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error('expected a ConfigError');
  };
  it('has defaults for everything but the VM', () => {
    expect(loadConfig(base, 'me@here')).toMatchObject({ host: 'vm', port: 22, remoteDir: '/opt/berth', healthPath: '/health', healthSuccesses: 3, keep: 3, lockWaitS: 0, who: 'me@here' });
  });
  it('names the variable that is wrong', () => {
    expect(fails({ ...base, VM_HOST: '' })).toMatch(/^VM_HOST /);
    expect(fails({ ...base, VM_SSH_PORT: 'abc' })).toMatch(/^VM_SSH_PORT /);
    expect(fails({ ...base, DEPLOY_HEALTH_SUCCESSES: '0' })).toMatch(/^DEPLOY_HEALTH_SUCCESSES /);
    expect(fails({ ...base, BERTH_REMOTE_DIR: 'relative' })).toMatch(/^BERTH_REMOTE_DIR /);
    expect(fails({ ...base, VM_SSH_KEY_FILE: '/nope' })).toMatch(/^VM_SSH_KEY_FILE: cannot read \/nope/);
    expect(fails({ VM_HOST: 'vm', VM_USER: 'd', VM_KNOWN_HOSTS_FILE: known })).toMatch(/VM_SSH_KEY or VM_SSH_KEY_FILE is required/);
    expect(fails({ ...base, VM_SSH_KEY_FILE: known })).toMatch(/does not hold a private key/);
  });
  it('takes the key as text (CI secrets) and names the CI actor', () => {
    const cfg = loadConfig({ VM_HOST: 'vm', VM_USER: 'd', VM_SSH_KEY: readFileSync(key.file, 'utf8'), VM_KNOWN_HOSTS: 'h ssh-ed25519 AAAA', GITHUB_ACTOR: 'octo' }, 'runner@x');
    expect(cfg.who).toBe('octo@github-actions');
    expect(cfg.knownHosts).toBe('h ssh-ed25519 AAAA\n');
  });
  it('redacts the key from anything printed', () => {
    const text = readFileSync(key.file, 'utf8');
    const body = text.split('\n')[1] ?? '';
    expect(redact(`oops ${body} here`, [text])).toBe('oops [redacted] here');
  });
});

describe('environments', () => {
  it('maps branches to environments and ports', () => {
    expect(envForBranch('refs/heads/main')).toBe('production');
    expect(envForBranch('staging')).toBe('staging');
    expect(envForBranch('feature/x')).toBeUndefined();
    expect(Object.values(environmentInfo).map((e) => e.port)).toEqual([8000, 8001, 8002]);
  });
  it('names containers so they sort by age and resolve in DNS', () => {
    const name = containerName('staging', new Date('2026-03-04T05:06:07Z'));
    expect(name).toMatch(/^berth-staging-app-20260304050607-[0-9a-f]{4}$/);
  });
});
