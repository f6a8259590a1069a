// docker compose for the environment's proxy.
import { describe, expect, it } from 'vitest';
import { startProxy } from '../../../src/deploy/commands/compose.js';

describe('compose', () => {
  it('runs compose in the environment directory with its project name and image overrides', () => {
    expect(startProxy('staging', '/opt/berth/staging', { PROXY_IMAGE: 'nginx:x' }).argv).toEqual([
      'sh',
      '-c',
      'cd "$1" && shift && exec env "$@"',
      'sh',
      '/opt/berth/staging',
      'BERTH_ENV=staging',
      'PROXY_IMAGE=nginx:x',
      'docker',
      'compose',
      '-p',
      'berth-staging',
      'up',
      '-d',
      '--no-deps',
      'proxy',
    ]);
  });
});
