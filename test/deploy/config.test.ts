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
  describe("the app's settings from CI", () => {
    // Assembled at run time: the secret scanner must not take these for real credentials.
    const secrets = {
      DATABASE_URL: ['postgres://app:', 'pa$$ w#rd', '@db/app'].join(''),
      API_KEY: ['k', 'ey-', '123'].join(''),
      VM_SSH_KEY: 'not for the app',
      github_token: 'not for the app either',
    };
    const withSettings = (allow: string, json: string | null = JSON.stringify(secrets)) => ({
      ...base,
      DEPLOY_APP_SETTINGS: allow,
      ...(json === null ? {} : { DEPLOY_SECRETS_JSON: json }),
    });
    const failsDeploy = (env: Record<string, string>) => {
      try {
        loadConfig(env, 'me@here', { appSettings: true });
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      throw new Error('expected a ConfigError');
    };
    const one = (value: unknown) => JSON.stringify({ API_KEY: value });

    it('keeps only the allow-listed secrets, in allow-list order, values verbatim', () => {
      const cfg = loadConfig(withSettings('API_KEY, DATABASE_URL api_key'), 'me', {
        appSettings: true,
      });
      expect(cfg.appSettings).toEqual({
        API_KEY: secrets.API_KEY,
        DATABASE_URL: secrets.DATABASE_URL,
        api_key: secrets.API_KEY,
      });
      expect(Object.keys(cfg.appSettings ?? {})).toEqual(['API_KEY', 'DATABASE_URL', 'api_key']);
    });

    it('only for a deploy, and nothing without an allow-list', () => {
      expect(loadConfig(withSettings('API_KEY', null), 'me').appSettings).toBeUndefined();
      const none = loadConfig(withSettings('', '{}'), 'me', { appSettings: true });
      expect(none.appSettings).toBeUndefined();
    });

    it('refuses, naming the variable and never showing a value', () => {
      const cases: [Record<string, string>, RegExp][] = [
        [
          withSettings('API_KEY,MISSING'),
          /^MISSING is in DEPLOY_APP_SETTINGS but there is no secret MISSING/,
        ],
        [
          withSettings('API_KEY', null),
          /^DEPLOY_APP_SETTINGS names API_KEY but DEPLOY_SECRETS_JSON is not set/,
        ],
        [
          withSettings('API_KEY', `{"API_KEY": "${secrets.API_KEY}"`),
          /^DEPLOY_SECRETS_JSON is not valid JSON \(value not shown/,
        ],
        [
          withSettings('API_KEY', `["${secrets.API_KEY}"]`),
          /^DEPLOY_SECRETS_JSON is not a JSON object/,
        ],
        [
          withSettings('API_KEY', one(`${secrets.API_KEY}\nline2`)),
          /^secret API_KEY holds a line break or NUL/,
        ],
        [
          withSettings('API_KEY', one(`${secrets.API_KEY}\r`)),
          /^secret API_KEY holds a line break/,
        ],
        [
          withSettings('API_KEY', one('x'.repeat(70_000))),
          /^secret API_KEY is not valid UTF-8 text of at most/,
        ],
        [
          withSettings('API_KEY', one(`${secrets.API_KEY}\uD800`)),
          /^secret API_KEY is not valid UTF-8/,
        ],
        [withSettings('API_KEY', one(42)), /^secret API_KEY is not a string/],
        [withSettings('API-KEY'), /^DEPLOY_APP_SETTINGS: "API-KEY" is not a variable name/],
        [withSettings('PORT'), /^DEPLOY_APP_SETTINGS: PORT is set by the deploy itself/],
        [
          withSettings('VM_SSH_KEY'),
          /^DEPLOY_APP_SETTINGS: VM_SSH_KEY is the deploy's own setting/,
        ],
        [withSettings('GITHUB_TOKEN'), /^DEPLOY_APP_SETTINGS: GITHUB_TOKEN is the deploy's own/],
      ];
      for (const [env, message] of cases) {
        const m = failsDeploy(env);
        expect(m).toMatch(message);
        for (const v of [secrets.API_KEY, secrets.DATABASE_URL]) expect(m).not.toContain(v);
      }
    });
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
