// Thin wrappers over the real docker CLI (pointed at the Docker Engine scripts/test-env/engine.sh
// starts), shared by the image tests. No logic to test here: each call is one CLI invocation.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadTestEnv, onPath, requirePart } from '../helpers/real-tools.js';
export { freePort } from '../helpers/net.js';

const run = promisify(execFile);
export const testEnv = loadTestEnv();

export const engineEnv: NodeJS.ProcessEnv = {
  ...process.env,
  ...(testEnv.DOCKER_HOST ? { DOCKER_HOST: testEnv.DOCKER_HOST } : {}),
};

export type Result = { code: number; stdout: string; stderr: string };

/** Runs a command; never throws on a non-zero exit, so tests can assert failures too. */
export async function exec(
  cmd: string,
  args: string[],
  opts: { cwd?: string } = {},
): Promise<Result> {
  try {
    const { stdout, stderr } = await run(cmd, args, {
      env: engineEnv,
      maxBuffer: 64 * 1024 * 1024,
      ...opts,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? e.message };
  }
}

/** Runs a command that must succeed; the error names the command and carries its stderr. */
export async function must(
  cmd: string,
  args: string[],
  opts: { cwd?: string } = {},
): Promise<string> {
  const r = await exec(cmd, args, opts);
  if (r.code !== 0)
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

export const docker = (...args: string[]): Promise<string> => must('docker', args);

/** Streams `docker export` of a container through `tar -t`: every path in its filesystem. */
export function listFiles(container: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const exporter = spawn('docker', ['export', container], {
      env: engineEnv,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const tar = spawn('tar', ['-t'], { stdio: ['pipe', 'pipe', 'inherit'] });
    exporter.stdout.pipe(tar.stdin);
    let out = '';
    tar.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    tar.on('error', reject);
    exporter.on('error', reject);
    tar.on('close', (code) =>
      code === 0
        ? resolve(
            out
              .split('\n')
              .filter(Boolean)
              .map((p) => p.replace(/^\.?\//, '')),
          )
        : reject(new Error(`tar -t exited ${code}`)),
    );
  });
}

/** Polls `url` until it answers 200 (the container needs a moment to start listening). */
export async function waitFor200(url: string, timeoutMs = 30_000): Promise<Response> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (res.status === 200) return res;
      last = `status ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms (last: ${last})`);
}

/** Polls Docker's own health status of `container` until it is `want`; returns the last status. */
export async function waitForHealth(
  container: string,
  want: 'healthy' | 'unhealthy',
  timeoutMs: number,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let status = '';
  while (Date.now() < deadline) {
    status = await must('docker', ['inspect', '--format', '{{.State.Health.Status}}', container]);
    if (status === want) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return status;
}

/** True when the engine answers; under CI=true its absence fails the file instead of skipping. */
export function engineAvailable(): boolean {
  return requirePart(
    'Docker Engine (with compose v2 and buildx)',
    () => onPath('docker') && Boolean(testEnv.DOCKER_HOST) && engineAnswers(),
    'run `bash scripts/test-env/engine.sh up` as root',
  );
}

function engineAnswers(): boolean {
  try {
    // Synchronous on purpose: it decides describe.skipIf at module load.
    execFileSync('docker', ['version', '--format', '{{.Server.Version}}'], {
      env: engineEnv,
      stdio: 'ignore',
      timeout: 10_000,
    });
    return true;
  } catch {
    return false;
  }
}

export const unique = (prefix: string): string =>
  `${prefix}-${process.pid}-${Date.now().toString(36)}`;

/**
 * A TEST-ONLY image built from `dir/Dockerfile` as localhost/berth-test/NAME:debian-HASH. The tag
 * carries the recipe's hash: a changed Dockerfile is built again, never an old image reused.
 */
export function recipeImage(
  name: string,
  dir: string,
): { image: string; ensure: () => Promise<string> } {
  const hash = createHash('sha256')
    .update(readFileSync(path.join(dir, 'Dockerfile')))
    .digest('hex')
    .slice(0, 12);
  const image = `localhost/berth-test/${name}:debian-${hash}`;
  return {
    image,
    ensure: async () => {
      if ((await exec('docker', ['image', 'inspect', image])).code !== 0)
        await must('docker', ['build', '--pull=false', '-q', '-t', image, dir]);
      return image;
    },
  };
}
