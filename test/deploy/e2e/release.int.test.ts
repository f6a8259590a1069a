// The release step (DEPLOY_RELEASE_COMMAND) on the real VM, and the Slack notification to a local
// receiver: a command that succeeds runs in the new image with the app's settings, read-only; one
// that fails or hangs refuses the deploy while v1 keeps serving, shows its last lines, records why,
// and leaves no one-off container; the webhook gets the JSON of a deploy and of a refusal, without
// its own URL in it. A load loop sees 0 failed requests while a release is refused.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cliEnv,
  deploy,
  docker,
  explain,
  failureLine,
  historyLines,
  images,
  runCli,
  served,
  takeVm,
  testPorts,
  versions,
  vmReady,
} from './harness.js';
import { startPoller } from './poller.js';

const env = 'testing';
const TOKEN = 'secret-webhook-token-0123456789';

const oneOffs = async (): Promise<string> =>
  (
    await docker(['ps', '-a', '--filter', `label=berth.release=${env}`, '--format', '{{.Names}}'])
  ).trim();

describe.skipIf(!vmReady)('deploy: the release command and the Slack notification', () => {
  let releaseVm = (): void => {};
  let server: Server;
  const posts: string[] = [];
  let webhook = '';
  beforeAll(async () => {
    releaseVm = await takeVm(env);
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        posts.push(body);
        res.end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    webhook = `http://127.0.0.1:${(server.address() as AddressInfo).port}/services/T0/B0/${TOKEN}`;
    const first = await deploy(env, images.v1);
    expect(first.code, explain(first)).toBe(0);
  }, 900_000);
  afterAll(() => {
    server?.closeAllConnections();
    server?.close();
    releaseVm();
  });

  const withRelease = (command: unknown[], extra: Record<string, string> = {}) =>
    cliEnv({
      DEPLOY_RELEASE_COMMAND: JSON.stringify(command),
      DEPLOY_SLACK_WEBHOOK_URL: webhook,
      ...extra,
    });

  it('a release command that exits 3: refused, v1 serves, its last lines shown, history says why, Slack told', async () => {
    posts.length = 0;
    const poller = startPoller(`http://127.0.0.1:${testPorts[env]}/health`);
    const r = await deploy(
      env,
      images.v2,
      withRelease([
        'node',
        '-e',
        "console.log('migrating step 1'); console.error('cannot migrate: column exists'); process.exit(3)",
      ]),
    );
    const load = await poller.stop();
    expect(r.code, explain(r)).toBe(1);
    expect(load.failed, load.failures.join('\n')).toBe(0);
    expect(load.sent).toBeGreaterThan(0);
    expect(load.served).toEqual([versions.v1]);
    expect(failureLine(r.output)).toMatch(/the release command `node -e .*` failed \(exit 3\)/);
    expect(failureLine(r.output)).toMatch(/keeps serving/);
    expect(r.output).toContain('--- last log lines of the release command ---');
    expect(r.output).toContain('cannot migrate: column exists');
    expect((await served(env)).version).toBe(versions.v1);
    expect(historyLines(env).at(-1)).toMatch(/result=failed.*failed \(exit 3\)/);
    expect(await oneOffs()).toBe('');
    expect(r.output).not.toContain(TOKEN);
    expect(posts).toHaveLength(1);
    const msg = JSON.parse(posts[0] ?? '{}') as { text: string; blocks: unknown[] };
    expect(msg.text).toMatch(/deploy to testing refused/);
    expect(JSON.stringify(msg.blocks)).toContain('failed (exit 3)');
    expect(posts[0]).not.toContain(TOKEN);
  });

  it('a release command that hangs: killed after DEPLOY_RELEASE_TIMEOUT_S, refused, no one-off container left', async () => {
    const r = await deploy(
      env,
      images.v2,
      withRelease(
        ['node', '-e', "console.log('waiting for a lock'); setInterval(() => {}, 1000)"],
        {
          DEPLOY_RELEASE_TIMEOUT_S: '3',
        },
      ),
    );
    expect(r.code, explain(r)).toBe(1);
    expect(failureLine(r.output)).toMatch(/ran longer than 3 s \(DEPLOY_RELEASE_TIMEOUT_S\)/);
    expect(r.output).toContain('waiting for a lock');
    expect((await served(env)).version).toBe(versions.v1);
    expect(historyLines(env).at(-1)).toMatch(/result=failed.*ran longer than 3 s/);
    expect(await oneOffs()).toBe('');
  });

  it('a release command that succeeds: ran in the new image with app.env, read-only; then v2 serves; Slack told', async () => {
    posts.length = 0;
    const r = await deploy(
      env,
      images.v2,
      withRelease([
        'node',
        '-e',
        "let ro = 'writable'; try { require('fs').writeFileSync('/probe', 'x') } catch (e) { ro = e.code } console.log('release ran', process.env.LOG_LEVEL, ro)",
      ]),
    );
    expect(r.code, explain(r)).toBe(0);
    expect(r.output).toMatch(/✓ release command .* exited 0: release ran info EROFS/);
    expect((await served(env)).version).toBe(versions.v2);
    expect(await oneOffs()).toBe('');
    expect(posts).toHaveLength(1);
    const msg = JSON.parse(posts[0] ?? '{}') as { text: string };
    expect(msg.text).toMatch(/deploy to testing deployed: .*by /);
    expect(posts[0]).not.toContain(TOKEN);
  });

  it('a rollback: never runs the release command, v1 serves again, Slack told it was a rollback', async () => {
    posts.length = 0;
    const r = await runCli(
      ['rollback', '--env', env],
      withRelease(['node', '-e', "console.log('must not run'); process.exit(9)"]),
    );
    expect(r.code, explain(r)).toBe(0);
    expect(r.output).not.toContain('must not run');
    expect((await served(env)).version).toBe(versions.v1);
    expect(posts).toHaveLength(1);
    expect((JSON.parse(posts[0] ?? '{}') as { text: string }).text).toMatch(
      /rollback to testing rolled back/,
    );
  });
});
