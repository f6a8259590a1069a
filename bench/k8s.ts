// npm run bench:k8s [-- --rounds 5]
// What the Kubernetes proof costs: helm template per environment x strategy, schema validation
// of every rendered object, and the GitOps digest pin (the CLI the workflow runs, and the pure
// function under it). Prints medians and the ratio validate/render.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { writeImageDigest } from '../src/gitops/digest.js';
import { helmBin, render, schemaErrors, type K8sObject } from '../test/k8s/manifests.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' } } });
const rounds = Number(values.rounds);
const root = path.resolve(import.meta.dirname, '..');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
async function time(fn: () => unknown): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

const variants = ['values-dev.yaml', 'values-staging.yaml', 'values-prod.yaml'].flatMap((file) =>
  [
    ['rollout.enabled=false'],
    ['rollout.enabled=true', 'rollout.strategy=canary'],
    ['rollout.enabled=true', 'rollout.strategy=blueGreen'],
  ].map((set) => ({ file, set })),
);

console.log(
  `helm ${execFileSync(helmBin(), ['version', '--short'], { encoding: 'utf8' }).trim()}, ${rounds} rounds, ${variants.length} variants`,
);

const renderMs: number[] = [];
const validateMs: number[] = [];
let objects: K8sObject[] = [];
for (let r = 0; r < rounds; r++) {
  let renderTotal = 0;
  let validateTotal = 0;
  for (const v of variants) {
    renderTotal += await time(() => {
      objects = render({ valuesFiles: [v.file], set: v.set });
    });
    validateTotal += await time(async () => {
      const errors = (await Promise.all(objects.map(schemaErrors))).flat();
      if (errors.length > 0) throw new Error(errors.join('\n'));
    });
  }
  renderMs.push(renderTotal);
  validateMs.push(validateTotal);
}
const perRender = median(renderMs) / variants.length;
const perValidate = median(validateMs) / variants.length;
console.log(
  `helm template, all ${variants.length} variants:   ${median(renderMs).toFixed(0)} ms (${perRender.toFixed(1)} ms each)`,
);
console.log(
  `schema validation, all objects: ${median(validateMs).toFixed(1)} ms (${perValidate.toFixed(2)} ms per variant, ${objects.length} objects in the last)`,
);
console.log(`ratio validate/render:          ${(perValidate / perRender).toFixed(3)}`);

const staging = readFileSync(path.join(root, 'charts/berth/values-staging.yaml'), 'utf8');
const digest = `sha256:${'ab'.repeat(32)}`;
const pureMs: number[] = [];
for (let r = 0; r < rounds; r++)
  pureMs.push(
    (await time(() => {
      for (let i = 0; i < 1000; i++) writeImageDigest(staging, digest);
    })) / 1000,
  );
const cliMs: number[] = [];
for (let r = 0; r < rounds; r++) {
  cliMs.push(
    await time(() =>
      execFileSync(process.execPath, ['--import', 'tsx', 'src/gitops/cli.ts', 'get', 'staging'], {
        cwd: root,
        stdio: 'ignore',
      }),
    ),
  );
}
console.log(`digest pin, pure function:      ${(median(pureMs) * 1000).toFixed(0)} µs`);
console.log(
  `digest CLI (node --import tsx): ${median(cliMs).toFixed(0)} ms per call (process start dominates: ratio ${(median(cliMs) / median(pureMs)).toFixed(0)}x)`,
);
