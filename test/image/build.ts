// Builds the repository's Dockerfile exactly as CI does (docker build, default NODE_IMAGE), with
// a version unique to this run so a test can tell that /health reports the build it started.
import { randomBytes } from 'node:crypto';
import { repoRoot } from '../helpers/real-tools.js';
import { docker, must, unique } from './engine.js';

export type BuiltImage = {
  ref: string;
  id: string;
  version: string;
  commit: string;
  created: string;
  seconds: number;
};

export async function buildImage(): Promise<BuiltImage> {
  const ref = `localhost/berth-test/berth:${unique('it')}`;
  const version = `9.9.9-it.${randomBytes(3).toString('hex')}`;
  const commit = randomBytes(20).toString('hex');
  const created = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const started = performance.now();
  // --pull=false: there is no Docker Hub here; the base is the local stand-in.
  await must(
    'docker',
    [
      'build',
      '--pull=false',
      '-q',
      '--build-arg',
      `APP_VERSION=${version}`,
      '--build-arg',
      `GIT_COMMIT=${commit}`,
      '--build-arg',
      `BUILD_DATE=${created}`,
      '-t',
      ref,
      '.',
    ],
    { cwd: repoRoot },
  );
  const seconds = (performance.now() - started) / 1000;
  const id = await docker('image', 'inspect', '--format', '{{.Id}}', ref);
  return { ref, id, version, commit, created, seconds };
}

export async function removeImage(...refs: string[]): Promise<void> {
  for (const ref of refs) await must('docker', ['image', 'rm', ref]).catch(() => undefined);
}
