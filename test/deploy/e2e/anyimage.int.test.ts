// An app image with no Node, no shell and no curl (test/deploy/fixtures/any-image: one static
// binary FROM scratch) goes through everything Berth promises on the real test VM: a first deploy
// (the proxy not running yet), a switch under load with no failed request, a refused unhealthy
// deploy, a rollback and `status`. Nothing may run inside the app's image: the probes come from
// the proxy's side, and the proxy image itself has no node either (scripts/test-env/engine.sh).
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, requireTool } from '../../helpers/real-tools.js';
import {
  appContainers,
  cliEnv,
  deploy,
  docker,
  explain,
  failureLine,
  lockVm,
  registry,
  resetEnv,
  runCli,
  served,
  testPorts,
  vmReady,
} from './harness.js';
import { startPoller } from './poller.js';

const env = 'testing';
const fixture = path.join(repoRoot, 'test/deploy/fixtures/any-image');
const repo = `${registry}/berth-any-image`;
const images = { v1: `${repo}:v1`, v2: `${repo}:v2`, sick: `${repo}:sick` };
const hasGcc = requireTool('gcc', 'apt-get install gcc libc6-dev');

/** gcc -static into a build context, then one scratch image per variant, pushed for the VM to pull. */
async function buildImages(): Promise<void> {
  const ctx = mkdtempSync(path.join(os.tmpdir(), 'berth-any-image-'));
  try {
    execFileSync('gcc', ['-static', '-O2', '-o', path.join(ctx, 'server'), 'server.c'], {
      cwd: fixture,
    });
    copyFileSync(path.join(fixture, 'Dockerfile'), path.join(ctx, 'Dockerfile'));
    const variants = [
      [images.v1, '1.0.0-any', '200'],
      [images.v2, '2.0.0-any', '200'],
      [images.sick, '3.0.0-any', '500'],
    ];
    for (const [ref = '', version = '', health = ''] of variants) {
      // prettier-ignore
      await docker(['build', '-q', '--build-arg', `VERSION=${version}`, '--build-arg', `HEALTH=${health}`, '-t', ref, ctx]);
      await docker(['push', '-q', ref]);
    }
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
}

const version = async (): Promise<string | undefined> => (await served(env)).version;

describe.skipIf(!vmReady || !hasGcc)('deploy: an image with no node, no shell, no curl', () => {
  let releaseVm = (): void => {};
  afterAll(() => releaseVm());
  const digests: Record<string, string> = {};

  beforeAll(async () => {
    releaseVm = await lockVm();
    await buildImages();
    await resetEnv(env);
  }, 900_000);

  it('the fixture really has no shell, and the proxy image no node', async () => {
    await expect(
      docker(['run', '--rm', '--entrypoint', '/bin/sh', images.v1, '-c', 'true']),
    ).rejects.toThrow(/no such file or directory/);
    const proxyImage = cliEnv().PROXY_IMAGE ?? '';
    await expect(
      docker(['run', '--rm', '--entrypoint', 'node', proxyImage, '-v']),
    ).rejects.toThrow();
  });

  it('first deploy: health-gated before the proxy ever ran, then serves; no node healthcheck forced on it', async () => {
    const r = await deploy(env, images.v1);
    expect(r.code, explain(r)).toBe(0);
    expect(r.output).toMatch(/health check .*answers in a row, last HTTP 200/);
    expect(await served(env)).toEqual({ status: 200, version: '1.0.0-any' });
    digests.v1 = r.json?.digest ?? '';
    const [app] = await appContainers(env);
    // The image has no HEALTHCHECK and the deploy adds none it could not run: no "unhealthy" alert.
    const health = await docker([
      'inspect',
      '--format',
      '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}',
      app?.id ?? '',
    ]);
    expect(health).toBe('none');
  });

  it('a second version switches under load with no failed request', async () => {
    const poller = startPoller(`http://127.0.0.1:${testPorts[env]}/health`);
    const r = await deploy(env, images.v2);
    const load = await poller.stop();
    expect(r.code, explain(r)).toBe(0);
    expect(r.output).toMatch(/switch traffic .*switched to/);
    expect(load.failed, JSON.stringify(load)).toBe(0);
    expect(load.served).toEqual(['1.0.0-any', '2.0.0-any']);
    expect(load.oldAfterNew).toBe(0);
    digests.v2 = r.json?.digest ?? '';
  });

  it('a version whose /health answers 500 is refused and v2 keeps serving', async () => {
    const before = (await appContainers(env)).map((c) => c.id);
    const r = await deploy(env, images.sick, cliEnv({ DEPLOY_HEALTH_TIMEOUT_S: '3' }));
    expect(r.code, explain(r)).toBe(1);
    expect(failureLine(r.output), explain(r)).toMatch(
      /did not pass the health check: GET \/health was not 2xx .*last answer HTTP 500/,
    );
    // Its own log lines, as for any refused image.
    expect(r.output).toContain(
      'any-image fixture: version 3.0.0-any on :8000, /health answers 500',
    );
    expect(await version()).toBe('2.0.0-any');
    expect((await appContainers(env)).map((c) => c.id)).toEqual(before);
  });

  it('rollback returns to v1, and status probes it from outside', async () => {
    const r = await runCli(['rollback', '--env', env, '--json']);
    expect(r.code, explain(r)).toBe(0);
    expect(r.json?.digest).toBe(digests.v1);
    expect(await version()).toBe('1.0.0-any');

    const status = await runCli(['status', '--env', env, '--json']);
    expect(status.code, explain(status)).toBe(0);
    const [row] = (status.json?.environments ?? []) as { health: string; version?: string }[];
    expect(row).toMatchObject({ health: 'healthy', version: '1.0.0-any' });
  });
});
