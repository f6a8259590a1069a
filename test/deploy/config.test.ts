// The deploy's settings: defaults, and an error naming the variable that is wrong.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/deploy/config.js';
import { hasKeygen, keygen, scratch } from '../helpers/keys.js';

describe.skipIf(!hasKeygen)('settings', () => {
  const key = keygen('client');
  const known = path.join(scratch, 'kh');
  writeFileSync(known, '[h]:22 ssh-ed25519 AAAA\n');
  const base = {
    VM_HOST: 'vm',
    VM_USER: 'deploy',
    VM_SSH_KEY_FILE: key.file,
    VM_KNOWN_HOSTS_FILE: known,
  };
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
    expect(loadConfig(base, 'me@here')).toMatchObject({
      host: 'vm',
      port: 22,
      remoteDir: '/opt/berth',
      healthPath: '/health',
      healthSuccesses: 3,
      keep: 3,
      backupKeep: 7,
      lockWaitS: 0,
      who: 'me@here',
    });
  });
  it('names the variable that is wrong', () => {
    expect(fails({ ...base, VM_HOST: '' })).toMatch(/^VM_HOST /);
    expect(fails({ ...base, VM_SSH_PORT: 'abc' })).toMatch(/^VM_SSH_PORT /);
    expect(fails({ ...base, DEPLOY_HEALTH_SUCCESSES: '0' })).toMatch(/^DEPLOY_HEALTH_SUCCESSES /);
    expect(fails({ ...base, BERTH_REMOTE_DIR: 'relative' })).toMatch(/^BERTH_REMOTE_DIR /);
    expect(fails({ ...base, VM_SSH_KEY_FILE: '/nope' })).toMatch(
      /^VM_SSH_KEY_FILE: cannot read \/nope/,
    );
    expect(fails({ VM_HOST: 'vm', VM_USER: 'd', VM_KNOWN_HOSTS_FILE: known })).toMatch(
      /VM_SSH_KEY or VM_SSH_KEY_FILE is required/,
    );
    expect(fails({ ...base, VM_SSH_KEY_FILE: known })).toMatch(/does not hold a private key/);
  });
  it('takes the key as text (CI secrets) and names the CI actor', () => {
    const cfg = loadConfig(
      {
        VM_HOST: 'vm',
        VM_USER: 'd',
        VM_SSH_KEY: readFileSync(key.file, 'utf8'),
        VM_KNOWN_HOSTS: 'h ssh-ed25519 AAAA',
        GITHUB_ACTOR: 'octo',
      },
      'runner@x',
    );
    expect(cfg.who).toBe('octo@github-actions');
    expect(cfg.knownHosts).toBe('h ssh-ed25519 AAAA\n');
  });
});
