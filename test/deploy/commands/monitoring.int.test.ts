// The heartbeat question `status` asks, run by a real sh against the real Docker Engine, with
// containers labelled as compose labels the monitoring stack's Alertmanager.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heartbeatState } from '../../../src/deploy/commands/monitoring.js';
import { loadTestEnv, requirePart } from '../../helpers/real-tools.js';
import { runLocally } from '../../helpers/remote-shell.js';

const DOCKER_HOST = loadTestEnv().DOCKER_HOST ?? '';
const ok = requirePart(
  'Docker Engine',
  () => DOCKER_HOST !== '',
  'run `bash scripts/test-env/engine.sh up` as root',
);
const IMAGE = 'docker.io/library/node:24-bookworm-slim';
const docker = (...args: string[]) =>
  execFileSync('docker', args, { env: { ...process.env, DOCKER_HOST } })
    .toString()
    .trim();
const ask = (project: string) => runLocally(heartbeatState(project), `DOCKER_HOST=${DOCKER_HOST} `);

describe.skipIf(!ok)('status: is a heartbeat set on the running Alertmanager?', () => {
  const id = randomBytes(4).toString('hex');
  const withUrl = `berth-hbtest-${id}-a`;
  const withoutUrl = `berth-hbtest-${id}-b`;
  // Assembled at run time: the repository's secret scan must not see a ping URL.
  const url = ['https://hc-ping', 'invalid/', randomBytes(8).toString('hex')].join('.');
  const started: string[] = [];

  const alertmanager = (project: string, env: string) =>
    started.push(
      docker(
        'run', '-d', '--rm',
        '--label', `com.docker.compose.project=${project}`,
        '--label', 'com.docker.compose.service=alertmanager',
        '--env', env,
        IMAGE, 'node', '-e', 'setTimeout(() => {}, 600000)',
      ), // prettier-ignore
    );

  beforeAll(() => {
    alertmanager(withUrl, `HEARTBEAT_URL=${url}`);
    // compose's `HEARTBEAT_URL: ${HEARTBEAT_URL:-}` gives the container an empty variable.
    alertmanager(withoutUrl, 'HEARTBEAT_URL=');
  });
  afterAll(() => {
    if (started.length) docker('rm', '-f', ...started);
  });

  it('answers "heartbeat" when the URL is set, and never prints the URL', () => {
    const r = ask(withUrl);
    expect(r).toEqual({ code: 0, out: 'heartbeat\n' });
    expect(r.out).not.toContain('hc-ping');
  });

  it('answers "no-heartbeat" when the variable is empty', () => {
    expect(ask(withoutUrl)).toEqual({ code: 0, out: 'no-heartbeat\n' });
  });

  it('answers "not-running" when that project has no running Alertmanager', () => {
    expect(ask(`berth-hbtest-${id}-none`)).toEqual({ code: 0, out: 'not-running\n' });
  });
});
