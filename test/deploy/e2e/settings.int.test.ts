// The app's settings as the deploy hands them over: app.env reaches the app's process.env byte
// for byte, compose's .env never reaches it, and a VM from before the split (settings in .env, no
// app.env) keeps giving the app exactly what it had.
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awkwardSettings } from '../../helpers/settings.js';
import {
  appContainers,
  deploy,
  docker,
  explain,
  images,
  remoteDir,
  takeVm,
  vmReady,
  writeVmFile,
} from './harness.js';

const env = 'testing';
const appEnvFile = path.join(remoteDir, env, 'app.env');

async function liveProcessEnv(): Promise<Record<string, string>> {
  const [app] = await appContainers(env);
  if (!app) throw new Error(`no ${env} app container`);
  return JSON.parse(
    await docker(['exec', app.id, 'node', '-e', 'console.log(JSON.stringify(process.env))']),
  ) as Record<string, string>;
}

describe.skipIf(!vmReady)("deploy: the app's settings (app.env)", () => {
  let releaseVm = (): void => {};
  beforeAll(async () => {
    releaseVm = await takeVm(env);
  }, 900_000);
  afterAll(() => releaseVm());

  it("gives the app every value of app.env byte for byte ($, $$, quotes, #, \\, spaces, =), and none of .env's", async () => {
    const r = await deploy(env, images.v1);
    expect(r.code, explain(r)).toBe(0);
    const processEnv = await liveProcessEnv();
    for (const [key, value] of Object.entries(awkwardSettings))
      expect({ key, value: processEnv[key] }).toEqual({ key, value });
    expect(processEnv.LOG_LEVEL).toBe('info');
    expect(processEnv.APP_PORT).toBeUndefined();
    expect(processEnv.PORT).toBe('8000');
  });

  it('upgrades a VM from the single .env: app.env becomes a byte-for-byte copy, and the app keeps its values', async () => {
    const old = `APP_PORT=${readFileSync(path.join(remoteDir, env, '.env'), 'utf8').match(/^APP_PORT=(\d+)$/m)?.[1]}\nAPP_BIND=127.0.0.1\nSECRET=pa$$word 'x' #1\n`;
    rmSync(appEnvFile);
    writeVmFile(env, '.env', old);
    const r = await deploy(env, images.v2);
    expect(r.code, explain(r)).toBe(0);
    expect(r.output).toContain(`created ${appEnvFile} as a copy of`);
    expect(existsSync(appEnvFile)).toBe(true);
    expect(readFileSync(appEnvFile, 'utf8')).toBe(old);
    expect((statSync(appEnvFile).mode & 0o777).toString(8)).toBe('600');
    expect((await liveProcessEnv()).SECRET).toBe("pa$$word 'x' #1");

    // A second deploy leaves the operator's app.env alone.
    writeVmFile(env, 'app.env', 'SECRET=changed by the operator\n');
    const again = await deploy(env, images.v1);
    expect(again.code, explain(again)).toBe(0);
    expect(readFileSync(appEnvFile, 'utf8')).toBe('SECRET=changed by the operator\n');
    expect((await liveProcessEnv()).SECRET).toBe('changed by the operator');
  });
});
