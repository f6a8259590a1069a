// docker-compose.edge.yml as the tests run it on the real Docker Engine: the TEST-ONLY stand-in
// image (test/edge/standin: Debian's caddy shaped like caddy:2.10-alpine), and the compose file
// laid out as init_setup.sh would, with loopback ports and volumes of the test's own.
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../helpers/real-tools.js';
import { recipeImage } from '../image/engine.js';

const standin = recipeImage('caddy', path.join(import.meta.dirname, 'standin'));
export const EDGE_STANDIN_IMAGE = standin.image;
export const ensureEdgeImage = standin.ensure;

export interface EdgeLayout {
  /** compose project; its volumes are `<project>-data` and `<project>-config`. */
  project: string;
  network: string;
  httpPort: number;
  httpsPort?: number;
  /** Default: the compose file's own (berth-edge). */
  container?: string;
  /** Files for the edge's trust folder (name -> PEM): a private ACME CA's root (ACME_CA_ROOT). */
  trust?: Record<string, string>;
}

/**
 * Writes docker-compose.edge.yml, edge/bootstrap.json, an override (loopback ports, the test's
 * volumes) and .env into `dir`; returns the `docker compose` arguments that use them.
 */
export function layOutEdge(dir: string, o: EdgeLayout): string[] {
  mkdirSync(path.join(dir, 'edge', 'trust'), { recursive: true });
  for (const [name, pem] of Object.entries(o.trust ?? {}))
    writeFileSync(path.join(dir, 'edge', 'trust', name), pem, { mode: 0o644 });
  copyFileSync(
    path.join(repoRoot, 'docker-compose.edge.yml'),
    path.join(dir, 'docker-compose.edge.yml'),
  );
  copyFileSync(
    path.join(repoRoot, 'edge', 'bootstrap.json'),
    path.join(dir, 'edge', 'bootstrap.json'),
  );
  writeFileSync(
    path.join(dir, 'override.yml'),
    [
      'services:',
      '  edge:',
      ...(o.container ? [`    container_name: ${o.container}`] : []),
      '    ports: !override',
      `      - "127.0.0.1:${o.httpPort}:80"`,
      ...(o.httpsPort ? [`      - "127.0.0.1:${o.httpsPort}:443"`] : []),
      'volumes:',
      `  edge-data: {name: ${o.project}-data}`,
      `  edge-config: {name: ${o.project}-config}`,
      '',
    ].join('\n'),
  );
  writeFileSync(
    path.join(dir, '.env'),
    `EDGE_IMAGE=${EDGE_STANDIN_IMAGE}\nBERTH_NETWORK=${o.network}\n`,
  );
  // prettier-ignore
  return ['compose', '-p', o.project, '--project-directory', dir,
    '-f', path.join(dir, 'docker-compose.edge.yml'), '-f', path.join(dir, 'override.yml')];
}
