// npm run bench:image [-- --rounds 3 --cold]
// The image's operating figures on the real engine (scripts/test-env/engine.sh up first):
// build time (cold with --cold, and warm = a new version on unchanged sources, what CI does for a
// docs-only commit), size added to the base, docker run -> first 200 on /health, and
// `docker stop` with a request in flight. Prints medians and the ratio to each budget.
import { parseArgs } from 'node:util';
import { repoRoot } from '../test/helpers/real-tools.js';
import {
  docker,
  engineAvailable,
  exec,
  freePort,
  must,
  testEnv,
  unique,
  waitFor200,
} from '../test/image/engine.js';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '3' }, cold: { type: 'boolean', default: false } },
});
const rounds = Number(values.rounds);
const BASE_IMAGE = testEnv.NODE_IMAGE ?? 'docker.io/library/node:24-bookworm-slim';
const ADDED_BUDGET_MB = 25;
const STOP_BUDGET_S = 5;

const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const seconds = async (fn: () => Promise<unknown>): Promise<number> => {
  const started = performance.now();
  await fn();
  return (performance.now() - started) / 1000;
};

async function build(ref: string, version: string, noCache: boolean): Promise<number> {
  const args = [
    'build',
    '--pull=false',
    '-q',
    ...(noCache ? ['--no-cache'] : []),
    '--build-arg',
    `APP_VERSION=${version}`,
    '-t',
    ref,
    '.',
  ];
  return seconds(() => must('docker', args, { cwd: repoRoot }));
}

async function main(): Promise<void> {
  if (!engineAvailable()) process.exit(1);
  const refs: string[] = [];
  const containers: string[] = [];
  try {
    const figures: [string, string, string][] = [];

    if (values.cold) {
      const ref = `localhost/berth-test/berth:${unique('bench-cold')}`;
      refs.push(ref);
      figures.push([
        'build, cold (--no-cache)',
        `${(await build(ref, 'bench-cold', true)).toFixed(1)} s`,
        '',
      ]);
    }
    const warm: number[] = [];
    let ref = '';
    for (let i = 0; i < rounds; i++) {
      ref = `localhost/berth-test/berth:${unique(`bench-${i}`)}`;
      refs.push(ref);
      warm.push(await build(ref, `9.9.9-bench.${i}.${Date.now()}`, false));
    }
    figures.push([
      'build, new version, same sources',
      `${median(warm).toFixed(1)} s`,
      `median of ${rounds}`,
    ]);

    const size = Number(await docker('image', 'inspect', '--format', '{{.Size}}', ref));
    const base = Number(await docker('image', 'inspect', '--format', '{{.Size}}', BASE_IMAGE));
    const addedMb = (size - base) / 1024 / 1024;
    figures.push(['image size (stand-in base)', `${(size / 1024 / 1024).toFixed(1)} MB`, '']);
    figures.push([
      'added by Berth',
      `${addedMb.toFixed(1)} MB`,
      `${((addedMb / ADDED_BUDGET_MB) * 100).toFixed(0)} % of ${ADDED_BUDGET_MB} MB budget`,
    ]);

    const ready: number[] = [];
    const stops: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const name = unique(`berth-bench-${i}`);
      containers.push(name);
      const port = await freePort();
      ready.push(
        await seconds(async () => {
          await docker('run', '-d', '--name', name, '-p', `127.0.0.1:${port}:8000`, ref);
          await waitFor200(`http://127.0.0.1:${port}/health`);
        }),
      );
      const inFlight = fetch(`http://127.0.0.1:${port}/work?delay_ms=500`);
      await new Promise((r) => setTimeout(r, 100));
      stops.push(await seconds(() => docker('stop', '--time', '10', name)));
      if ((await inFlight).status !== 200)
        throw new Error('the request in flight did not complete with 200');
    }
    figures.push([
      'docker run -> first 200 /health',
      `${median(ready).toFixed(2)} s`,
      `median of ${rounds}`,
    ]);
    const stop = median(stops);
    figures.push([
      'docker stop, 0.5 s request in flight',
      `${stop.toFixed(2)} s`,
      `${((stop / STOP_BUDGET_S) * 100).toFixed(0)} % of ${STOP_BUDGET_S} s budget`,
    ]);

    const width = Math.max(...figures.map(([k]) => k.length));
    console.log(
      `bench:image (${BASE_IMAGE} stand-in, Docker Engine ${await docker('version', '--format', '{{.Server.Version}}')})`,
    );
    for (const [k, v, note] of figures)
      console.log(`  ${k.padEnd(width)}  ${v.padStart(9)}  ${note}`);
  } finally {
    if (containers.length > 0) await exec('docker', ['rm', '-f', ...containers]);
    for (const r of refs) await exec('docker', ['image', 'rm', r]);
  }
}

await main();
