// The edge's TEST-ONLY stand-in image (test/edge/standin: Debian's caddy shaped like
// caddy:2.8-alpine), built once per engine and recipe: its tag carries the Dockerfile's hash, so
// a changed recipe is built again instead of an old image being reused.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { exec, must } from '../image/engine.js';

const recipe = path.join(import.meta.dirname, 'standin');
const hash = createHash('sha256')
  .update(readFileSync(path.join(recipe, 'Dockerfile')))
  .digest('hex')
  .slice(0, 12);

export const EDGE_STANDIN_IMAGE = `localhost/berth-test/caddy:debian-${hash}`;

export async function ensureEdgeImage(): Promise<string> {
  if ((await exec('docker', ['image', 'inspect', EDGE_STANDIN_IMAGE])).code !== 0)
    await must('docker', ['build', '--pull=false', '-q', '-t', EDGE_STANDIN_IMAGE, recipe]);
  return EDGE_STANDIN_IMAGE;
}
