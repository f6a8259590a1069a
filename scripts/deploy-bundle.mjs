// The deploy tool as one ES module, bundled by esbuild from src/ and its packages, and kept in
// node_modules/.cache under the hash of what it is made from. Loading it takes 0.12 s where
// loading the TypeScript sources through tsx takes 0.5 s (1.5 s on a busy machine), time every
// deploy's wall clock paid; making it takes 0.12 s, once per change of src/ or of the packages.
import { createHash, randomBytes } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
} from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';

const DAY_MS = 24 * 3600 * 1000;

/**
 * The hash of what a bundle is made from: src/ (paths and contents), tsconfig.json, the locked
 * packages, this file (how it bundles) and esbuild's version.
 */
export function sourcesHash(root) {
  const files = readdirSync(path.join(root, 'src'), { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => path.relative(root, path.join(d.parentPath, d.name)))
    .concat(
      'tsconfig.json',
      'package-lock.json',
      'scripts/deploy-bundle.mjs',
      'node_modules/esbuild/package.json',
    )
    .sort();
  const hash = createHash('sha256');
  for (const file of files) {
    const abs = path.join(root, file);
    hash
      .update(`${file}\0`)
      .update(existsSync(abs) ? readFileSync(abs) : '')
      .update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * The bundle of the sources as they are now: its path, and how long making it took (0 when it
 * was there). Made in a folder of its own and renamed into place, so a deploy starting at the same
 * moment sees a whole bundle or none.
 */
export async function deployBundle(root) {
  const cache = path.join(root, 'node_modules', '.cache', 'berth-deploy');
  const hash = sourcesHash(root);
  const dir = path.join(cache, hash);
  const file = path.join(dir, 'cli.mjs');
  if (existsSync(file)) {
    // The folder's time says when it was last used, which prune reads.
    bestEffort(() => utimesSync(dir, new Date(), new Date()));
    return { file, madeMs: 0 };
  }
  const started = performance.now();
  const tmp = `${dir}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    mkdirSync(tmp, { recursive: true });
    const { build } = await import('esbuild');
    await build({
      entryPoints: [path.join(root, 'src', 'deploy', 'cli.ts')],
      outfile: path.join(tmp, 'cli.mjs'),
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      // The packages go in too: one file to read and compile instead of a few hundred (zod alone
      // has 0.1 s of them). ssh2 stays outside (its optional native add-ons load by path), and
      // the CommonJS code bundled here needs a `require` to reach it.
      external: ['ssh2'],
      banner: {
        js: "import { createRequire as berthCreateRequire } from 'node:module'; const require = berthCreateRequire(import.meta.url);",
      },
      logLevel: 'silent',
    });
    // src/deploy/remote/programs.ts reads the remote programs from beside itself.
    cpSync(path.join(root, 'src', 'deploy', 'remote'), tmp, {
      recursive: true,
      filter: (f) => !f.endsWith('.ts'),
    });
    if (sourcesHash(root) !== hash) throw new Error('src/ changed while it was being bundled');
    renameSync(tmp, dir);
  } catch (err) {
    bestEffort(() => rmSync(tmp, { recursive: true, force: true }));
    // Another deploy made the same bundle first: use theirs.
    if (!existsSync(file)) throw err;
  }
  prune(cache, dir);
  return { file, madeMs: performance.now() - started };
}

/** A bundle that would not load (cut short on disk, say): gone, so the next run makes it anew. */
export const dropBundle = (file) =>
  bestEffort(() => rmSync(path.dirname(file), { recursive: true, force: true }));

// Bundles of other sources, unused for a day: no deploy still reads their remote programs.
// Best effort: another deploy may be pruning or renaming the same folders.
function prune(cache, keep) {
  for (const name of readdirSync(cache)) {
    const p = path.join(cache, name);
    bestEffort(() => {
      if (p !== keep && Date.now() - statSync(p).mtimeMs > DAY_MS)
        rmSync(p, { recursive: true, force: true });
    });
  }
}

function bestEffort(fn) {
  try {
    fn();
  } catch {
    // the bundle works without it
  }
}
