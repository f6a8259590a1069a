// The deploy tool's entry (scripts/deploy.mjs), run through `npm run deploy` in a copy of the
// checkout: it bundles src/ with esbuild once per change of the sources, runs the bundle (never a
// stale one), prunes bundles unused for a day, makes a broken one anew, and runs src/ through tsx
// when it cannot bundle.
import { spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/real-tools.js';

let root: string;
/** A run that used the bundle of the sources as they are now. */
let bundleRun: Run | undefined;
const cache = () => path.join(root, 'node_modules', '.cache', 'berth-deploy');

interface Run {
  code: number | null;
  stderr: string;
}

/** `npm run deploy -- status --env testing --verbose` with no VM configured: exit 2. */
function status(): Promise<Run> {
  const args = ['run', '-s', 'deploy', '--', 'status', '--env', 'testing', '--verbose'];
  const child = spawn('npm', args, {
    cwd: root,
    env: {
      PATH: process.env.PATH,
      HOME: root,
      DEPLOY_WHO: 'entry-test',
      DEPLOY_ENV_FILE: '/dev/null',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

const toolLine = (r: Run): string => /· tool: (.*)/.exec(r.stderr)?.[1] ?? `(none) ${r.stderr}`;
const bundleDirs = () => readdirSync(cache()).sort();

/** A change to src/ whose effect the output shows: the advice after a bad configuration. */
function editAdvice(from: string, to: string): void {
  const file = path.join(root, 'src', 'deploy', 'cli.ts');
  const text = readFileSync(file, 'utf8');
  expect(text).toContain(from);
  writeFileSync(file, text.replace(from, to));
}

beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'berth-entry-'));
  for (const f of [
    'package.json',
    'tsconfig.json',
    'scripts/deploy.mjs',
    'scripts/deploy-bundle.mjs',
  ])
    cpSync(path.join(repoRoot, f), path.join(root, f));
  cpSync(path.join(repoRoot, 'src'), path.join(root, 'src'), { recursive: true });
  // The repository's packages, but a .cache of this copy's own.
  mkdirSync(path.join(root, 'node_modules'));
  for (const name of readdirSync(path.join(repoRoot, 'node_modules')))
    if (name !== '.cache')
      symlinkSync(path.join(repoRoot, 'node_modules', name), path.join(root, 'node_modules', name));
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('scripts/deploy.mjs', () => {
  it('bundles src/ on the first run and reuses the bundle after it', async () => {
    const first = await status();
    expect(first.code, first.stderr).toBe(2);
    expect(first.stderr).toContain('VM_HOST is required');
    expect(toolLine(first)).toMatch(
      /^node_modules\/\.cache\/berth-deploy\/[0-9a-f]{16}\/cli\.mjs \(bundled now from src\/ in \d+ ms\)$/,
    );
    const [dir] = bundleDirs();
    // The remote programs beside the bundle, where src/deploy/remote/programs.ts reads them.
    expect(readFileSync(path.join(cache(), dir!, 'proxy.sh'), 'utf8')).toBe(
      readFileSync(path.join(root, 'src', 'deploy', 'remote', 'proxy.sh'), 'utf8'),
    );

    const again = await status();
    expect(again.code, again.stderr).toBe(2);
    expect(toolLine(again)).toBe(`node_modules/.cache/berth-deploy/${dir}/cli.mjs`);
    expect(bundleDirs()).toEqual([dir]);
  });

  it('runs the changed code after a change to src/, never the old bundle', async () => {
    const [old] = bundleDirs();
    editAdvice('Set it in .env', 'Put it in .env');
    const r = await status();
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('Put it in .env');
    expect(toolLine(r)).toContain('bundled now');
    expect(toolLine(r)).not.toContain(old);
    expect(bundleDirs()).toHaveLength(2);
  });

  it('prunes the bundles unused for a day when it makes a new one', async () => {
    const dirs = bundleDirs();
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600 * 1000);
    utimesSync(path.join(cache(), dirs[0]!), twoDaysAgo, twoDaysAgo);
    editAdvice('Put it in .env', 'Write it in .env');
    const r = await status();
    expect(r.stderr).toContain('Write it in .env');
    const now = bundleDirs();
    expect(now).toHaveLength(2);
    expect(now).not.toContain(dirs[0]);
    expect(now).toContain(dirs[1]);
  });

  it('makes one whole bundle when several deploys start at once', async () => {
    editAdvice('Write it in .env', 'Add it to .env');
    const before = bundleDirs();
    const runs = await Promise.all([status(), status(), status()]);
    bundleRun = runs[0];
    const made = bundleDirs().filter((d) => !before.includes(d));
    expect(made).toHaveLength(1);
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain('Add it to .env');
      expect(toolLine(r)).toMatch(
        new RegExp(`^node_modules/\\.cache/berth-deploy/${made[0]}/cli\\.mjs`),
      );
    }
    expect(existsSync(path.join(cache(), made[0]!, 'cli.mjs'))).toBe(true);
  });

  it('makes a bundle that will not load anew, running src/ through tsx meanwhile', async () => {
    const [dir] = bundleDirs().filter((d) => toolLine(bundleRun!).includes(d));
    writeFileSync(path.join(cache(), dir!, 'cli.mjs'), 'export const main = ;\n');
    const broken = await status();
    expect(broken.code, broken.stderr).toBe(2);
    expect(broken.stderr).toContain('deploy: running src/ through tsx, slower to start');
    expect(broken.stderr).toContain('Add it to .env');
    expect(bundleDirs()).not.toContain(dir);
    const again = await status();
    expect(toolLine(again)).toMatch(new RegExp(`${dir}/cli\\.mjs \\(bundled now`));
  });

  it('runs src/ through tsx, and says so, when it cannot bundle', async () => {
    rmSync(cache(), { recursive: true });
    writeFileSync(cache(), 'not a folder');
    const r = await status();
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /^deploy: running src\/ through tsx, slower to start: cannot bundle it \(.+\)$/m,
    );
    expect(toolLine(r)).toBe('src/deploy through tsx');
    expect(r.stderr).toContain('Add it to .env');
  });
});
