// The app's settings as the deploy hands them over: app.env reaches the app's process.env byte
// for byte, compose's .env never reaches it, and a VM from before the split (settings in .env, no
// app.env) keeps giving the app exactly what it had. Then settings from CI: written into app.env
// by each deploy, never leaked, and brought back with their version by a rollback.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awkwardSettings } from '../../helpers/settings.js';
import {
  appContainers,
  cliEnv,
  deploy,
  docker,
  explain,
  historyLines,
  imageRepo,
  images,
  remoteDir,
  resetEnv,
  runCli,
  takeVm,
  vmReady,
  writeVmFile,
} from './harness.js';
import { sleep } from '../../../src/deploy/time.js';

const env = 'testing';
const appEnvFile = path.join(remoteDir, env, 'app.env');

async function liveProcessEnv(): Promise<Record<string, string>> {
  const [app] = await appContainers(env);
  if (!app) throw new Error(`no ${env} app container`);
  return JSON.parse(
    await docker(['exec', app.id, 'node', '-e', 'console.log(JSON.stringify(process.env))']),
  ) as Record<string, string>;
}

// One hold on the test VM for the whole file: the queue for it is long on a shared machine.
let releaseVm = (): void => {};
beforeAll(async () => {
  if (vmReady) releaseVm = await takeVm(env);
}, 900_000);
afterAll(() => releaseVm());

describe.skipIf(!vmReady)("deploy: the app's settings (app.env)", () => {
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

// ---------------------------------------------------------------------------------------------
// The app's settings from CI: DEPLOY_APP_SETTINGS names secrets in DEPLOY_SECRETS_JSON (what
// deploy.yml passes as toJSON(secrets)); each deploy writes them into app.env, each version keeps
// a snapshot, and a rollback starts a version with the settings it served with.

/** A value nothing else could contain: if it shows up anywhere, it leaked. Made at run time. */
const canary = `canary-${randomBytes(12).toString('hex')}`;
/** Values worth scanning for: long enough not to turn up by chance. */
const leakable = [canary, ...Object.values(awkwardSettings).filter((v) => v.trim().length >= 10)];

/** Every command line on this machine (the test VM's sshd and engine run here), sampled until stopped. */
function sampleCommandLines(): { stop: () => Promise<string> } {
  let seen = '';
  let running = true;
  const loop = (async () => {
    while (running) {
      seen += execFileSync('ps', ['-eww', '-o', 'args='], { encoding: 'utf8' });
      await sleep(50);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return seen;
    },
  };
}

const leaksIn = (text: string): string[] => leakable.filter((v) => text.includes(v));

describe.skipIf(!vmReady)("deploy: the app's settings from CI (DEPLOY_APP_SETTINGS)", () => {
  const summaryFile = path.join(mkdtempSync(path.join(tmpdir(), 'berth-summary-')), 'summary.md');
  const variants: Record<'v3' | 'v4', string> = {
    v3: `${imageRepo}:settings-v3`,
    v4: `${imageRepo}:settings-v4`,
  };
  const settingsOf = (gen: number): Record<string, string> => ({
    ...awkwardSettings,
    BERTH_T_GEN: `gen-${gen}`,
    BERTH_T_CANARY: canary,
  });
  // Four versions, all kept (image and settings snapshot) for the three rollbacks.
  const keepAll = { DEPLOY_KEEP: '4' };
  const ciEnv = (values: Record<string, string>, allow = Object.keys(values)) =>
    cliEnv({
      ...keepAll,
      DEPLOY_APP_SETTINGS: allow.join(','),
      // As GitHub hands them over: every secret of the environment, the app's and others.
      DEPLOY_SECRETS_JSON: JSON.stringify({ ...values, NOT_FOR_THE_APP: `other-${canary}` }),
      GITHUB_STEP_SUMMARY: summaryFile,
    });
  const liveDigest = async () => (await appContainers(env))[0]?.labels['berth.digest'];
  const digests: string[] = [];

  beforeAll(async () => {
    await resetEnv(env);
    // Two more healthy versions: the real image with one more label each (a digest of its own).
    for (const [n, ref] of Object.entries(variants)) {
      const dir = mkdtempSync(path.join(tmpdir(), 'berth-variant-'));
      writeFileSync(
        path.join(dir, 'Dockerfile'),
        `FROM ${images.v1}\nLABEL berth.e2e.variant=${n}\n`,
      );
      await docker(['build', '--pull=false', '-q', '-t', ref, dir]);
      await docker(['push', '-q', ref]);
      rmSync(dir, { recursive: true, force: true });
    }
    // The operator's app.env: one key kept by hand, one CI will take over.
    writeVmFile(env, 'app.env', 'LOG_LEVEL=info\nHAND_KEPT=by hand\nBERTH_T_DOLLAR=stale\n');
  }, 900_000);

  it('writes every allow-listed secret byte for byte into app.env (0600) and process.env, keeps hand-kept keys, and leaks no value', async () => {
    const ps = sampleCommandLines();
    const r = await deploy(env, images.v1, ciEnv(settingsOf(1)));
    const commandLines = await ps.stop();
    expect(r.code, explain(r)).toBe(0);
    digests.push(r.json?.digest ?? '');

    const processEnv = await liveProcessEnv();
    for (const [key, value] of Object.entries(settingsOf(1)))
      expect({ key, value: processEnv[key] }).toEqual({ key, value });
    expect(processEnv.HAND_KEPT).toBe('by hand');
    expect(processEnv.NOT_FOR_THE_APP).toBeUndefined();
    expect(readFileSync(appEnvFile, 'utf8')).not.toContain('NOT_FOR_THE_APP');

    const settingsDir = path.join(remoteDir, env, 'settings');
    const snapshot = path.join(settingsDir, `${(r.json?.digest ?? '').slice(7, 19)}.env`);
    expect(readFileSync(snapshot, 'utf8')).toBe(readFileSync(appEnvFile, 'utf8'));
    const mode = (f: string) => (statSync(f).mode & 0o777).toString(8);
    expect([mode(appEnvFile), mode(snapshot), mode(settingsDir)]).toEqual(['600', '600', '700']);
    expect(r.output).toMatch(
      /✓ settings .*BERTH_T_GEN, BERTH_T_CANARY from CI; the rest of app.env kept/,
    );

    // The leak scan: what the CLI printed (its --json line included), the job summary, the
    // history on the VM, every command line while it ran, the image it deployed.
    expect(r.stdout).toMatch(/"ok":true/);
    expect(readFileSync(summaryFile, 'utf8')).toMatch(/testing/);
    const image = await docker(['image', 'inspect', images.v1]);
    const layers = await docker(['history', '--no-trunc', images.v1]);
    expect({
      output: leaksIn(r.output),
      summary: leaksIn(readFileSync(summaryFile, 'utf8')),
      history: leaksIn(historyLines(env).join('\n')),
      commandLines: leaksIn(commandLines),
      image: leaksIn(image + layers),
    }).toEqual({ output: [], summary: [], history: [], commandLines: [], image: [] });
    expect(commandLines).toContain('scripts/deploy.mjs deploy --env testing'); // the sampler saw it
  });

  it('a missing allow-listed secret, or one with a line break, stops the deploy before anything changes', async () => {
    const before = {
      appEnv: readFileSync(appEnvFile, 'utf8'),
      history: historyLines(env),
      containers: (await appContainers(env)).map((c) => c.id),
    };
    const missing = await deploy(
      env,
      images.v2,
      ciEnv(settingsOf(2), [...Object.keys(settingsOf(2)), 'BERTH_T_MISSING']),
    );
    expect(missing.code, explain(missing)).toBe(2);
    expect(missing.output).toMatch(
      /deploy failed: bad configuration: BERTH_T_MISSING is in DEPLOY_APP_SETTINGS but there is no secret BERTH_T_MISSING/,
    );
    const broken = await deploy(
      env,
      images.v2,
      ciEnv({ ...settingsOf(2), BERTH_T_GEN: `a\n${canary}` }),
    );
    expect(broken.code, explain(broken)).toBe(2);
    expect(broken.output).toMatch(/secret BERTH_T_GEN holds a line break/);
    for (const r of [missing, broken]) {
      expect(leaksIn(r.output)).toEqual([]);
      expect(r.output).not.toMatch(/✓ connect/);
    }
    expect({
      appEnv: readFileSync(appEnvFile, 'utf8'),
      history: historyLines(env),
      containers: (await appContainers(env)).map((c) => c.id),
    }).toEqual(before);
  });

  it('three rollbacks in a row walk back, each version with the settings it was deployed with; what was left is marked and skipped', async () => {
    for (const [n, image] of [
      [2, images.v2],
      [3, variants.v3],
      [4, variants.v4],
    ] as const) {
      const r = await deploy(env, image, ciEnv(settingsOf(n)));
      expect(r.code, explain(r)).toBe(0);
      digests.push(r.json?.digest ?? '');
    }
    expect(new Set(digests).size).toBe(4);
    // A rollback needs no CI settings: each version's snapshot has them.
    for (const n of [3, 2, 1]) {
      const r = await runCli(['rollback', '--env', env, '--json'], cliEnv(keepAll));
      expect(r.code, explain(r)).toBe(0);
      expect(r.json?.digest).toBe(digests[n - 1]);
      expect(await liveDigest()).toBe(digests[n - 1]);
      const processEnv = await liveProcessEnv();
      expect(processEnv.BERTH_T_GEN).toBe(`gen-${n}`);
      expect(processEnv.BERTH_T_ALL).toBe(awkwardSettings.BERTH_T_ALL);
      expect(readFileSync(appEnvFile, 'utf8')).toContain(`\nBERTH_T_GEN=gen-${n}\n`);
      expect(r.output).toMatch(/✓ settings .*last served with them/);
      expect(leaksIn(r.output)).toEqual([]);
    }
    const fourth = await runCli(['rollback', '--env', env], cliEnv(keepAll));
    expect(fourth.code, explain(fourth)).toBe(1);
    expect(fourth.output).toMatch(
      /there is no earlier healthy version .*rolled away from are skipped/,
    );

    const history = await runCli(['history', '--env', env, '--json']);
    expect(history.code, explain(history)).toBe(0);
    const { entries } = JSON.parse(history.stdout.trim().split('\n').at(-1) ?? '{}') as {
      entries: { action: string; digest: string; result: string; rolledAway: boolean }[];
    };
    const away = entries.filter((e) => e.rolledAway).map((e) => e.digest);
    expect(away).toEqual([digests[1], digests[2], digests[3]]);
    expect((await runCli(['history', '--env', env])).output).toMatch(/ok, rolled away/);
    expect(leaksIn(history.output)).toEqual([]);

    // Still reachable by name, and again with its own settings.
    const named = await runCli(
      ['rollback', '--env', env, digests[3] ?? '', '--json'],
      cliEnv(keepAll),
    );
    expect(named.code, explain(named)).toBe(0);
    expect(await liveDigest()).toBe(digests[3]);
    expect((await liveProcessEnv()).BERTH_T_GEN).toBe('gen-4');
  });
});
