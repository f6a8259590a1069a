// npm run rehearse [-- --json] [-- --keep]
//
// Plays deploy.yml and promote.yml locally with real parts: the container engine and registry
// (scripts/test-env/engine.sh), the test VM with sshd (scripts/test-env/vm.sh), the real
// Dockerfile and the real deploy CLI. Builds ONE image, pushes it, deploys its digest to testing,
// promotes the digest testing runs to staging and production without rebuilding, then ships a
// broken build and checks it is rejected while the old one keeps serving. Prints a table; exits
// 1 when any check fails. The test VM's environments are reset first and emptied afterwards
// (--keep leaves them running). Root on Debian, like `npm test`.
import { execFile, spawn } from 'node:child_process';
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  environments,
  portsWithOffset,
  promotionsFrom,
  type EnvName,
} from '../src/deploy/environments.js';
import { startPoller } from '../test/deploy/e2e/poller.js';
import { registryDigest } from './rehearse/registry.js';
import { formatTable, shortDigest, type Row } from './rehearse/table.js';

const execFileAsync = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '..');
// Public ports of the rehearsal's environments on the test VM: apart from the real 8000-8002
// and from the deploy tests' 18000-18002.
const PORTS = portsWithOffset(20_000);

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

interface DeployResult {
  code: number | null;
  output: string;
  json?: { ok?: boolean; digest?: string; image?: string; rolledBack?: boolean };
  summary: string;
  seconds: number;
}

const json = process.argv.includes('--json');
const keep = process.argv.includes('--keep');
const log = (line: string) => (json ? process.stderr : process.stdout).write(`${line}\n`);
const checks: Check[] = [];
const rows: Row[] = [];

function check(name: string, ok: boolean, detail = ''): boolean {
  checks.push({ name, ok, detail });
  log(`${ok ? '✓' : '✗'} ${name}${detail ? ` — ${detail}` : ''}`);
  return ok;
}

// ---------------------------------------------------------------------------------------------
// parts

function readTestEnv(): Record<string, string> {
  const dir = path.join(repoRoot, '.test-env');
  const vars: Record<string, string> = {};
  for (const file of existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.env')) : []) {
    for (const line of readFileSync(path.join(dir, file), 'utf8').split('\n')) {
      const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
      if (m?.[1]) vars[m[1]] = m[2] ?? '';
    }
  }
  return vars;
}

async function sh(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  timeout = 900_000,
): Promise<string> {
  const { stdout } = await execFileAsync(cmd, args, {
    cwd: repoRoot,
    env,
    timeout,
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout.trim();
}

async function partsUp(): Promise<Record<string, string>> {
  for (const part of ['engine', 'vm']) await sh('bash', [`scripts/test-env/${part}.sh`, 'up']);
  const env = readTestEnv();
  for (const key of [
    'DOCKER_HOST',
    'REGISTRY',
    'PROXY_IMAGE',
    'VM_HOST',
    'VM_USER',
    'VM_SSH_KEY_FILE',
    'BERTH_REMOTE_DIR',
  ]) {
    if (!env[key]) throw new Error(`.test-env has no ${key} after engine.sh/vm.sh up`);
  }
  return env;
}

// ---------------------------------------------------------------------------------------------
// the engine and the VM's environments

function dockerEnv(t: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, DOCKER_HOST: t.DOCKER_HOST };
}

async function resetEnv(t: Record<string, string>, env: EnvName): Promise<void> {
  const ids = await sh(
    'docker',
    ['ps', '-aq', '--filter', `label=com.docker.compose.project=berth-${env}`],
    dockerEnv(t),
  );
  if (ids) await sh('docker', ['rm', '-f', ...ids.split('\n')], dockerEnv(t));
  const dir = path.join(t.BERTH_REMOTE_DIR ?? '', env);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, '.env'),
    `# written by npm run rehearse\nAPP_PORT=${PORTS[env]}\nAPP_BIND=127.0.0.1\n`,
    { mode: 0o600 },
  );
  // The deploy runs as the VM's user: its directory and .env are that user's, as on a real VM.
  const uid = Number(await sh('id', ['-u', t.VM_USER ?? '']));
  const gid = Number(await sh('id', ['-g', t.VM_USER ?? '']));
  chownSync(dir, uid, gid);
  chownSync(path.join(dir, '.env'), uid, gid);
}

async function health(
  env: EnvName,
): Promise<{ status: number; version?: string; commit?: string }> {
  try {
    const res = await fetch(`http://127.0.0.1:${PORTS[env]}/health`, {
      signal: AbortSignal.timeout(3000),
    });
    const body = (await res.json()) as { version?: string; commit?: string };
    return { status: res.status, version: body.version, commit: body.commit };
  } catch {
    return { status: 0 };
  }
}

// ---------------------------------------------------------------------------------------------
// the deploy CLI, exactly as the workflows run it

function toolEnv(t: Record<string, string>, summaryFile: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!/^(VM_|DEPLOY_|BERTH_|DOCKER_|GITHUB_)/.test(k)) env[k] = v;
  return {
    ...env,
    VM_HOST: t.VM_HOST,
    VM_SSH_PORT: t.VM_SSH_PORT,
    VM_USER: t.VM_USER,
    VM_SSH_KEY_FILE: t.VM_SSH_KEY_FILE,
    VM_KNOWN_HOSTS_FILE: t.VM_KNOWN_HOSTS_FILE,
    BERTH_REMOTE_DIR: t.BERTH_REMOTE_DIR,
    PROXY_IMAGE: t.PROXY_IMAGE,
    DEPLOY_HEALTH_TIMEOUT_S: '30',
    DEPLOY_HEALTH_INTERVAL_S: '0.5',
    DEPLOY_HEALTH_SUCCESSES: '2',
    // Queue behind another deploy of the same environment (the deploy tests share this VM), as
    // the workflows' concurrency groups do.
    DEPLOY_LOCK_WAIT_S: '120',
    GITHUB_STEP_SUMMARY: summaryFile,
    NO_COLOR: '1',
  };
}

function runTool(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; output: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', 'deploy', '--', ...args], {
      cwd: repoRoot,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => ((stdout += d.toString()), (output += d.toString())));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 300_000);
    child.on('error', reject);
    child.on('close', (code) => (clearTimeout(timer), resolve({ code, output, stdout })));
  });
}

function lastJson<T>(stdout: string): T | undefined {
  const line = stdout
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.trim().startsWith('{'));
  try {
    return line ? (JSON.parse(line) as T) : undefined;
  } catch {
    return undefined;
  }
}

async function deploy(
  t: Record<string, string>,
  env: EnvName,
  image: string,
): Promise<DeployResult> {
  const dir = mkdtempSync(path.join(tmpdir(), 'berth-rehearse-'));
  const summaryFile = path.join(dir, 'summary.md');
  writeFileSync(summaryFile, '');
  const started = Date.now();
  try {
    const r = await runTool(
      ['deploy', '--env', env, '--image', image, '--json'],
      toolEnv(t, summaryFile),
    );
    return {
      code: r.code,
      output: r.output,
      json: lastJson(r.stdout),
      summary: readFileSync(summaryFile, 'utf8'),
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What an environment runs, asked the way promote.yml asks: `deploy status --env <env> --json`. */
async function running(t: Record<string, string>, env: EnvName): Promise<string> {
  const r = await runTool(['status', '--env', env, '--json'], toolEnv(t, '/dev/null'));
  const status = lastJson<{ environments?: { env: string; health?: string; digest?: string }[] }>(
    r.stdout,
  );
  const entry = status?.environments?.find((e) => e.env === env);
  if (r.code !== 0 || entry?.health !== 'healthy' || !entry.digest) {
    throw new Error(
      `deploy status --env ${env} --json: nothing healthy to promote (exit ${r.code}, ${entry?.health ?? 'no entry'}):\n${r.output}`,
    );
  }
  return entry.digest;
}

// ---------------------------------------------------------------------------------------------
// the pipeline

async function main(): Promise<number> {
  const started = Date.now();
  log('== parts: Docker Engine + registry (engine.sh), test VM with sshd (vm.sh)');
  const t = await partsUp();
  for (const env of environments) await resetEnv(t, env);

  const commit = (await sh('git', ['rev-parse', 'HEAD'])).slice(0, 40);
  const repo = `${t.REGISTRY}/berth`;
  const denv = dockerEnv(t);

  // build: once, like the build job; pushed as :<sha> and :<branch>.
  log('== build the image once and push :<sha> and :testing');
  let t0 = Date.now();
  const shaTag = `${repo}:${commit}`;
  await sh(
    'docker',
    [
      'build',
      '--pull=false',
      '-q',
      '--build-arg',
      `APP_VERSION=rehearsal-${commit.slice(0, 12)}`,
      '--build-arg',
      `GIT_COMMIT=${commit}`,
      '-t',
      shaTag,
      '-t',
      `${repo}:testing`,
      '.',
    ],
    denv,
  );
  await sh('docker', ['push', '-q', shaTag], denv);
  await sh('docker', ['push', '-q', `${repo}:testing`], denv);
  const digest = await registryDigest(shaTag);
  check(
    'build pushed one digest under both tags',
    (await registryDigest(`${repo}:testing`)) === digest,
    shortDigest(digest),
  );
  rows.push({
    step: 'build + push',
    env: '-',
    digest,
    result: 'pushed',
    seconds: (Date.now() - t0) / 1000,
  });
  const ref = `${repo}@${digest}`;

  // deploy to testing, as deploy.yml does on a push to `testing`.
  log('== deploy the digest to testing');
  const first = await deploy(t, 'testing', ref);
  const testingHealth = await health('testing');
  if (
    !check(
      'deploy to testing succeeds',
      first.code === 0 && first.json?.ok === true,
      `exit ${first.code}`,
    )
  )
    log(first.output);
  check(
    'testing serves the build',
    testingHealth.status === 200 && testingHealth.commit === commit,
    `/health ${testingHealth.status} commit ${testingHealth.commit?.slice(0, 12)}`,
  );
  check(
    'job summary names the environment and digest',
    first.summary.includes('testing') && first.summary.includes(digest),
    `${first.summary.split('\n').length} lines`,
  );
  rows.push({
    step: 'deploy',
    env: 'testing',
    digest: first.json?.digest ?? '?',
    result: first.code === 0 ? 'healthy' : 'FAILED',
    seconds: first.seconds,
  });

  // promote, as promote.yml does: read what the source runs, deploy that digest, no build.
  for (const [from, to] of promotionsFrom('testing')) {
    log(`== promote ${from} -> ${to} (no build)`);
    t0 = Date.now();
    const source = await running(t, from);
    const r = await deploy(t, to, `${repo}@${source}`);
    const h = await health(to);
    if (
      !check(
        `promote ${from} -> ${to} succeeds`,
        r.code === 0 && r.json?.ok === true,
        `exit ${r.code}`,
      )
    )
      log(r.output);
    check(
      `${to} runs the digest that was built`,
      source === digest && r.json?.digest === digest && h.commit === commit,
      `${shortDigest(r.json?.digest ?? '?')}, /health ${h.status} commit ${h.commit?.slice(0, 12) ?? '-'}`,
    );
    rows.push({
      step: `promote from ${from}`,
      env: to,
      digest: r.json?.digest ?? '?',
      result: r.code === 0 ? 'healthy' : 'FAILED',
      seconds: (Date.now() - t0) / 1000,
    });
  }
  check(
    'nothing was rebuilt: :<commit> is still the one digest every environment runs',
    (await registryDigest(shaTag)) === digest,
    shortDigest(digest),
  );

  // a broken build: same code path, /health answers 500. It must be rejected, and testing must
  // keep answering from the good build the whole time.
  log('== ship a broken build to testing');
  t0 = Date.now();
  const brokenTag = `${repo}:broken-${commit.slice(0, 12)}`;
  await sh(
    'docker',
    [
      'build',
      '--pull=false',
      '-q',
      '--build-arg',
      `BASE_IMAGE=${shaTag}`,
      '--target',
      'unhealthy',
      '-t',
      brokenTag,
      'test/deploy/fixtures',
    ],
    denv,
  );
  await sh('docker', ['push', '-q', brokenTag], denv);
  const brokenDigest = await registryDigest(brokenTag);
  const poller = startPoller(`http://127.0.0.1:${PORTS.testing}/health`);
  const broken = await deploy(t, 'testing', `${repo}@${brokenDigest}`);
  const polled = await poller.stop();
  const after = await health('testing');
  check(
    'the broken build is rejected',
    broken.code === 1 && broken.json?.ok === false,
    `exit ${broken.code}`,
  );
  check(
    'the failure says what happened',
    /deploy failed: .+/.test(broken.output),
    broken.output
      .split('\n')
      .find((l) => l.includes('deploy failed:'))
      ?.trim() ?? 'no "deploy failed:" line',
  );
  check(
    'testing kept serving the good build',
    polled.failed === 0 && after.commit === commit,
    `${polled.sent} requests during the deploy, ${polled.failed} failed`,
  );
  check(
    'the job summary says it was not deployed',
    broken.summary.includes(brokenDigest) || broken.summary.toLowerCase().includes('fail'),
    '',
  );
  rows.push({
    step: 'deploy broken build',
    env: 'testing',
    digest: brokenDigest,
    result:
      broken.code === 1
        ? `rejected, ${polled.failed}/${polled.sent} failed requests`
        : 'NOT REJECTED',
    seconds: (Date.now() - t0) / 1000,
  });

  if (!keep) for (const env of environments) await resetEnv(t, env);

  const failed = checks.filter((c) => !c.ok);
  log('');
  log(formatTable(rows));
  log('');
  log(
    `rehearsal ${failed.length === 0 ? 'passed' : 'FAILED'}: ${checks.length - failed.length} of ${checks.length} checks held (${((Date.now() - started) / 1000).toFixed(0)}s)`,
  );
  if (json)
    process.stdout.write(
      `${JSON.stringify({ ok: failed.length === 0, digest, commit, checks, rows })}\n`,
    );
  return failed.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`rehearsal failed: ${err instanceof Error ? err.message : String(err)}`);
    if (json)
      process.stdout.write(`${JSON.stringify({ ok: false, error: String(err), checks, rows })}\n`);
    process.exit(1);
  },
);
