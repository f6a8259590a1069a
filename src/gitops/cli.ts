// npm run gitops -- set <env> <sha256:...>   pin a pushed image in an environment's values file
// npm run gitops -- get <env>                print the pinned digest
// npm run gitops -- promote <from> <to>      copy one environment's digest to another
// npm run gitops -- file <env>               print the environment's values file
// npm run gitops -- read <path|->            print the digest a values file (or stdin) pins
// The deploy workflow calls this in GitOps mode; the commit or pull request is its own step.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  GitopsError,
  promoteImageDigest,
  readImageDigest,
  valuesFileFor,
  writeImageDigest,
} from './digest.js';

const USAGE =
  'usage: gitops set <env> <digest> | get <env> | promote <from-env> <to-env> | file <env> | read <path|->   (env: production, staging, testing)';

function main(argv: string[], root: string): string {
  const [command, a, b] = argv;
  const file = (env: string) => path.join(root, valuesFileFor(env));
  switch (command) {
    case 'get':
      if (a === undefined) break;
      return readImageDigest(readFileSync(file(a), 'utf8'), valuesFileFor(a)) || '(none)';
    case 'file':
      if (a === undefined) break;
      return valuesFileFor(a);
    case 'read': {
      if (a === undefined) break;
      const digest = readImageDigest(
        readFileSync(a === '-' ? 0 : a, 'utf8'),
        a === '-' ? 'stdin' : a,
      );
      if (digest === '') throw new GitopsError(`${a === '-' ? 'stdin' : a} pins no image digest`);
      return digest;
    }
    case 'set': {
      if (a === undefined || b === undefined) break;
      const before = readFileSync(file(a), 'utf8');
      writeFileSync(file(a), writeImageDigest(before, b, valuesFileFor(a)));
      return `${valuesFileFor(a)}: image.digest ${b}`;
    }
    case 'promote': {
      if (a === undefined || b === undefined) break;
      const result = promoteImageDigest(
        readFileSync(file(a), 'utf8'),
        readFileSync(file(b), 'utf8'),
        valuesFileFor(a),
        valuesFileFor(b),
      );
      writeFileSync(file(b), result.yaml);
      return `${valuesFileFor(b)}: image.digest ${result.digest} (from ${valuesFileFor(a)})`;
    }
  }
  throw new GitopsError(USAGE);
}

try {
  // Paths are relative to the repository root, where npm run and the workflow start.
  console.log(main(process.argv.slice(2), process.cwd()));
} catch (error) {
  console.error(`gitops: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(error instanceof GitopsError ? 2 : 1);
}
