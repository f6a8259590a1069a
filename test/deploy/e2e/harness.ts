// Shared by the deploy end-to-end scenarios: the images they ship, the deploy CLI as a real
// subprocess (exactly what users run), and what actually serves on the test VM afterwards.
// The VM is scripts/test-env/vm.sh's sshd; the engine behind it is engine.sh's Docker Engine, which
// this process also reaches directly (as root) to look at containers without going through the tool.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  chownSync,
} from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { portsWithOffset, type EnvName } from '../../../src/deploy/environments.js';
import { loadTestEnv, repoRoot, requirePart, testEnvDir } from '../../helpers/real-tools.js';
import { awkwardSettingsFile } from '../../helpers/settings.js';
import { sleep } from '../../../src/deploy/time.js';

const execFileAsync = promisify(execFile);

export const testEnv = loadTestEnv();

/** True when the engine, the registry and the test VM are up (fails under CI=true otherwise). */
export const vmReady = requirePart(
  'the deploy test VM (sshd + Docker Engine + registry)',
  () =>
    [
      'DOCKER_HOST',
      'REGISTRY',
      'PROXY_IMAGE',
      'VM_HOST',
      'VM_SSH_KEY_FILE',
      'BERTH_REMOTE_DIR',
    ].every((k) => testEnv[k]) && existsSync(path.join(repoRoot, 'scripts', 'deploy.mjs')),
  'run `bash scripts/test-env/engine.sh up && bash scripts/test-env/vm.sh up` as root (and the deploy CLI must exist)',
);

export type { EnvName };

/**
 * Public ports the scenarios give each environment through the VM's .env (APP_PORT), so they never
 * collide with a service someone runs on 8000-8002 on this machine.
 */
export const testPorts = portsWithOffset(10_000);

// ---------------------------------------------------------------------------------------------
// the engine, seen directly

const dockerEnv = { ...process.env, DOCKER_HOST: testEnv.DOCKER_HOST };

export async function docker(args: string[], timeoutMs = 300_000): Promise<string> {
  const { stdout } = await execFileAsync('docker', args, {
    env: dockerEnv,
    timeout: timeoutMs,
    maxBuffer: 32 * 1024 * 1024,
  });
  return stdout.trim();
}

export interface ContainerRow {
  id: string;
  image: string;
  name: string;
  state: string;
  labels: Record<string, string>;
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of text.split(',')) {
    const at = pair.indexOf('=');
    if (at > 0) labels[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return labels;
}

/** Containers of compose project `berth-<env>` (running only unless `all`). */
export async function projectContainers(
  env: EnvName,
  opts: { all?: boolean } = {},
): Promise<ContainerRow[]> {
  const args = [
    'ps',
    '--no-trunc',
    '--filter',
    `label=com.docker.compose.project=berth-${env}`,
    '--format',
    '{{json .}}',
  ];
  if (opts.all) args.splice(1, 0, '-a');
  const out = await docker(args);
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const row = JSON.parse(line) as {
        ID: string;
        Image: string;
        Names: string;
        State: string;
        Labels: string;
      };
      return {
        id: row.ID,
        image: row.Image,
        name: row.Names,
        state: row.State,
        labels: parseLabels(row.Labels ?? ''),
      };
    });
}

/** Running `app` containers of an environment (the proxy and the database are not). */
export async function appContainers(env: EnvName): Promise<ContainerRow[]> {
  return (await projectContainers(env)).filter(
    (c) =>
      !['proxy', 'db'].includes(c.labels['com.docker.compose.service'] ?? '') &&
      !/proxy/.test(c.name),
  );
}

export async function imageExists(ref: string): Promise<boolean> {
  try {
    await docker(['image', 'inspect', ref]);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// what serves

export interface Served {
  status: number;
  version?: string;
  error?: string;
}

/** GET /health through the environment's published port on the VM (the proxy). */
export async function served(env: EnvName): Promise<Served> {
  try {
    const res = await fetch(`http://127.0.0.1:${testPorts[env]}/health`, {
      signal: AbortSignal.timeout(3000),
    });
    const body = (await res.json().catch(() => ({}))) as { version?: string };
    return { status: res.status, version: body.version };
  } catch (err) {
    return { status: 0, error: (err as Error).message };
  }
}

// ---------------------------------------------------------------------------------------------
// images: the real Dockerfile twice (two versions) and the broken fixtures on top of it

export const registry = testEnv.REGISTRY ?? '127.0.0.1:5000';
export const imageRepo = `${registry}/berth-e2e`;
export const versions = { v1: '1.0.0-e2e', v2: '2.0.0-e2e' } as const;
export const images = {
  v1: `${imageRepo}:v1`,
  v2: `${imageRepo}:v2`,
  unhealthy: `${imageRepo}:unhealthy`,
  crash: `${imageRepo}:crash`,
  sickens: `${imageRepo}:sickens`,
  missing: `${imageRepo}:no-such-tag`,
};

const buildInputs = [
  'Dockerfile',
  '.dockerignore',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'src/service',
  'test/deploy/fixtures',
];

function hashInputs(): string {
  const hash = createHash('sha256');
  const walk = (rel: string): void => {
    const abs = path.join(repoRoot, rel);
    if (!existsSync(abs)) return;
    if (statSync(abs).isDirectory()) {
      for (const entry of readdirSync(abs).sort()) walk(path.join(rel, entry));
    } else {
      hash.update(rel).update('\0').update(readFileSync(abs)).update('\0');
    }
  };
  buildInputs.forEach(walk);
  return hash.digest('hex').slice(0, 16);
}

/**
 * Builds and pushes the scenario images once per source state: a marker in .test-env records the
 * hash of the build inputs, so later test files (and reruns) reuse the pushed images.
 */
export async function ensureImages(): Promise<typeof images> {
  const marker = path.join(testEnvDir, 'deploy-e2e-images.json');
  const key = hashInputs();
  const cached = existsSync(marker)
    ? (JSON.parse(readFileSync(marker, 'utf8')) as { key?: string })
    : {};
  const present = await Promise.all(
    [images.v1, images.v2, images.unhealthy, images.crash, images.sickens].map(imageExists),
  );
  if (cached.key === key && present.every(Boolean)) return images;

  // The repo's Dockerfile twice, as CI builds it; only the version build args differ, so every
  // layer but the last few comes from the cache.
  for (const [name, version] of Object.entries(versions) as ['v1' | 'v2', string][]) {
    const args = ['--build-arg', `APP_VERSION=${version}`, '--build-arg', `GIT_COMMIT=e2e-${name}`];
    await docker(['build', '--pull=false', '-q', ...args, '-t', images[name], repoRoot], 900_000);
  }
  for (const target of ['unhealthy', 'crash', 'sickens'] as const) {
    await docker([
      'build',
      '--pull=false',
      '-q',
      '--build-arg',
      `BASE_IMAGE=${images.v1}`,
      '--target',
      target,
      '-t',
      images[target],
      path.join(repoRoot, 'test/deploy/fixtures'),
    ]);
  }
  for (const ref of [images.v1, images.v2, images.unhealthy, images.crash, images.sickens])
    await docker(['push', '-q', ref]);
  mkdirSync(testEnvDir, { recursive: true });
  writeFileSync(marker, JSON.stringify({ key, images }, null, 2));
  return images;
}

// ---------------------------------------------------------------------------------------------
// the VM's environments

export const remoteDir = testEnv.BERTH_REMOTE_DIR ?? '/var/lib/berth-test/vm/opt-berth';
const vmUser = testEnv.VM_USER ?? 'berth';

export function uidOf(user: string): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`));
  const [, , uid, gid] = line?.split(':') ?? [];
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * Gives an environment a clean slate on the VM: no containers of its compose project, no state
 * directory, no images it tagged (its `:stable`); then the operator's .env with a test port on
 * loopback, as a user would write it before the first deploy.
 */
export async function resetEnv(env: EnvName): Promise<void> {
  const ids = (await projectContainers(env, { all: true })).map((c) => c.id);
  if (ids.length > 0) await docker(['rm', '-f', ...ids]);
  const envImages = (await docker(['images', '--format', '{{.Repository}}:{{.Tag}}']))
    .split('\n')
    .filter((r) => new RegExp(`(^|/)berth-${env}[:/]`).test(r));
  if (envImages.length > 0) await docker(['rmi', '-f', ...envImages]).catch(() => '');
  const dir = path.join(remoteDir, env);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeVmFile(
    env,
    '.env',
    `# written by the deploy e2e tests\nAPP_PORT=${testPorts[env]}\nAPP_BIND=127.0.0.1\n`,
  );
  writeVmFile(
    env,
    'app.env',
    `# written by the deploy e2e tests\nLOG_LEVEL=info\n${awkwardSettingsFile}\n`,
  );
  const { uid, gid } = uidOf(vmUser);
  chownSync(dir, uid, gid);
}

/** Writes a file into the environment's directory on the VM as an operator would: private, theirs. */
export function writeVmFile(env: EnvName, name: string, content: string): void {
  const file = path.join(remoteDir, env, name);
  writeFileSync(file, content, { mode: 0o600 });
  const { uid, gid } = uidOf(vmUser);
  chownSync(file, uid, gid);
}

/** Hands a path on the VM to the deploy user, as init_setup.sh does with the directories it makes. */
export function giveToVmUser(file: string): void {
  const { uid, gid } = uidOf(vmUser);
  chownSync(file, uid, gid);
}

/**
 * What every deploy e2e file does first: hold the test VM for the whole file, have the images,
 * and start the given environments from nothing. Returns the release of the VM lock.
 */
export async function takeVm(...envs: EnvName[]): Promise<() => void> {
  const release = await lockVm();
  await ensureImages();
  for (const env of envs) await resetEnv(env);
  return release;
}

/**
 * One user of the test VM at a time: the scenarios, the bench and anyone deploying to it by hand
 * (`flock /var/lib/berth-test/vm/e2e.lock npm run deploy -- ...`) share its three environments.
 * The holder exits by itself when this process dies, so a crashed run never leaves it held.
 */
export async function lockVm(): Promise<() => void> {
  const lockFile = path.join(path.dirname(remoteDir), 'e2e.lock');
  const holder = spawn(
    'flock',
    [
      '-w',
      '900',
      lockFile,
      'sh',
      '-c',
      'echo locked; while kill -0 "$1" 2>/dev/null; do sleep 1; done',
      'sh',
      String(process.pid),
    ],
    {
      detached: true,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    holder.stdout?.once('data', () => resolve());
    holder.once('exit', (code) =>
      reject(new Error(`could not lock ${lockFile} within 900 s (flock exit ${code})`)),
    );
  });
  holder.unref();
  return () => {
    if (holder.pid && holder.exitCode === null) process.kill(-holder.pid, 'SIGTERM');
  };
}

export function historyLines(env: EnvName): string[] {
  const file = path.join(remoteDir, env, 'history.log');
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

// ---------------------------------------------------------------------------------------------
// the CLI

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout + stderr, in the order lines arrived. */
  output: string;
  json?: DeployJson;
}

export interface DeployJson {
  ok: boolean;
  env: string;
  image: string;
  digest?: string;
  rolledBack?: boolean;
  steps?: { name: string; ms: number; ok: boolean }[];
  [key: string]: unknown;
}

/** The environment a user (or CI) would give the deploy: the VM's address, key and known host. */
export function cliEnv(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(VM_|DEPLOY_|BERTH_|DOCKER_|GITHUB_)/.test(k)) continue;
    env[k] = v;
  }
  Object.assign(env, {
    VM_HOST: testEnv.VM_HOST,
    VM_SSH_PORT: testEnv.VM_SSH_PORT,
    VM_USER: testEnv.VM_USER,
    VM_SSH_KEY_FILE: testEnv.VM_SSH_KEY_FILE,
    VM_KNOWN_HOSTS_FILE: testEnv.VM_KNOWN_HOSTS_FILE,
    BERTH_REMOTE_DIR: remoteDir,
    PROXY_IMAGE: testEnv.PROXY_IMAGE,
    DEPLOY_HEALTH_TIMEOUT_S: '10',
    DEPLOY_HEALTH_INTERVAL_S: '0.5',
    DEPLOY_HEALTH_SUCCESSES: '2',
    DEPLOY_LOCK_WAIT_S: '0',
    DEPLOY_KEEP: '3',
    NO_COLOR: '1',
    // Never the developer's own .env: only what the test gives.
    DEPLOY_ENV_FILE: '/dev/null',
  });
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

export interface CliRun {
  child: ChildProcess;
  /** Everything printed so far. */
  output: () => string;
  done: Promise<CliResult>;
}

function lastJsonLine(stdout: string): DeployJson | undefined {
  const line = stdout
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.trim().startsWith('{'));
  if (!line) return undefined;
  try {
    return JSON.parse(line) as DeployJson;
  } catch {
    return undefined;
  }
}

/**
 * Starts the deploy tool as the workflows run it (`node scripts/deploy.mjs ARGS`, which is what
 * `npm run deploy -- ARGS` runs) in its own process group (so a test can press Ctrl-C on the whole
 * group, as a terminal does).
 */
export function startCli(
  args: string[],
  env: NodeJS.ProcessEnv = cliEnv(),
  timeoutMs = 240_000,
): CliRun {
  const child = spawn(process.execPath, ['scripts/deploy.mjs', ...args], {
    cwd: repoRoot,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let output = '';
  child.stdout?.on('data', (d: Buffer) => ((stdout += d.toString()), (output += d.toString())));
  child.stderr?.on('data', (d: Buffer) => ((stderr += d.toString()), (output += d.toString())));
  const timer = setTimeout(() => {
    output += `\n[harness] killed after ${timeoutMs} ms\n`;
    if (child.pid) process.kill(-child.pid, 'SIGKILL');
  }, timeoutMs);
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, output, json: lastJsonLine(stdout) });
    });
  });
  return { child, output: () => output, done };
}

export function runCli(
  args: string[],
  env?: NodeJS.ProcessEnv,
  timeoutMs?: number,
): Promise<CliResult> {
  return startCli(args, env, timeoutMs).done;
}

/** `deploy --env ENV --image IMAGE --json`, with any further flags (`--verbose`). */
export function deploy(
  env: EnvName,
  image: string,
  cli?: NodeJS.ProcessEnv,
  flags: string[] = [],
): Promise<CliResult> {
  return runCli(['deploy', '--env', env, '--image', image, '--json', ...flags], cli);
}

/** A compact view of a CLI run for assertion messages. */
export function explain(r: CliResult): string {
  return `exit ${r.code}\n--- output ---\n${r.output}`;
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
  everyMs = 200,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** The one-line failure reason the contract asks for. */
export function failureLine(output: string): string | undefined {
  return output
    .split('\n')
    .find((l) => l.includes('deploy failed:') || l.includes('rollback failed:'));
}
