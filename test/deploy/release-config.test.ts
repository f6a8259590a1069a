// DEPLOY_RELEASE_COMMAND, DEPLOY_RELEASE_TIMEOUT_S and DEPLOY_SLACK_WEBHOOK_URL: parsed and
// validated once, with a message naming the variable (and never repeating the webhook URL).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseReleaseCommand } from '../../src/deploy/config.js';
import { hasKeygen, keygen, scratch } from '../helpers/keys.js';

describe('parseReleaseCommand', () => {
  it('splits plain words on whitespace', () => {
    expect(parseReleaseCommand('  node   dist/service/db/migrate.js --to=latest ')).toEqual([
      'node',
      'dist/service/db/migrate.js',
      '--to=latest',
    ]);
  });
  it('takes a JSON array as it is (spaces and quotes inside words)', () => {
    expect(parseReleaseCommand('["node","-e","console.log(\\"a b\\")"]')).toEqual([
      'node',
      '-e',
      'console.log("a b")',
    ]);
  });
  it.each([
    ['node -e "x"', /quotes or backslashes.*JSON array/],
    ["sh -c 'a'", /quotes or backslashes/],
    ['[node', /not a JSON array/],
    ['[]', /non-empty JSON array/],
    ['["node", 3]', /non-empty JSON array of non-empty strings/],
    ['["node", ""]', /non-empty strings/],
  ])('refuses %s, naming the variable', (text, msg) => {
    expect(() => parseReleaseCommand(text)).toThrow(ConfigError);
    expect(() => parseReleaseCommand(text)).toThrow(/^DEPLOY_RELEASE_COMMAND /);
    expect(() => parseReleaseCommand(text)).toThrow(msg);
  });
});

describe.skipIf(!hasKeygen)('release and notification settings', () => {
  const key = keygen('client');
  const known = path.join(scratch, 'kh-release');
  writeFileSync(known, '[h]:22 ssh-ed25519 AAAA\n');
  const base = {
    VM_HOST: 'vm',
    VM_USER: 'deploy',
    VM_SSH_KEY_FILE: key.file,
    VM_KNOWN_HOSTS_FILE: known,
  };
  const message = (env: Record<string, string>): string => {
    try {
      loadConfig(env, 'me@here');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error('expected a ConfigError');
  };

  it('none by default; a 300 s release timeout', () => {
    const c = loadConfig(base, 'me@here');
    expect(c.releaseCommand).toBeUndefined();
    expect(c.slackWebhookUrl).toBeUndefined();
    expect(c.releaseTimeoutS).toBe(300);
  });
  it('reads all three', () => {
    // Assembled at run time, as elsewhere in the tests, so the secret scan has no false alarm.
    const webhook = ['https://hooks.slack.com/services', 'T0', 'B0', 'xyz'].join('/');
    const c = loadConfig(
      {
        ...base,
        DEPLOY_RELEASE_COMMAND: 'node dist/service/db/migrate.js',
        DEPLOY_RELEASE_TIMEOUT_S: '20',
        DEPLOY_SLACK_WEBHOOK_URL: webhook,
      },
      'me@here',
    );
    expect(c.releaseCommand).toEqual(['node', 'dist/service/db/migrate.js']);
    expect(c.releaseTimeoutS).toBe(20);
    expect(c.slackWebhookUrl).toBe(webhook);
  });
  it('names the variable that is wrong', () => {
    expect(message({ ...base, DEPLOY_RELEASE_TIMEOUT_S: '0' })).toMatch(
      /^DEPLOY_RELEASE_TIMEOUT_S /,
    );
    expect(message({ ...base, DEPLOY_RELEASE_COMMAND: 'a "b"' })).toMatch(
      /^DEPLOY_RELEASE_COMMAND /,
    );
  });
  it('a bad webhook URL is named but never repeated', () => {
    for (const bad of ['not a url secretpart', 'ftp://secretpart.example/x']) {
      const m = message({ ...base, DEPLOY_SLACK_WEBHOOK_URL: bad });
      expect(m).toMatch(/^DEPLOY_SLACK_WEBHOOK_URL /);
      expect(m).not.toMatch(/secretpart/);
    }
  });
});
