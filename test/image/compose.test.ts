// docker-compose.yml, proxy/ and the Dockerfile read as data: the settings the VM relies on are
// stated, and nothing the deploy or tests must override is hard-coded. The real engine run is
// compose.int.test.ts; this catches a dropped line in milliseconds.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoRoot } from '../helpers/real-tools.js';

type Service = Record<string, unknown> & { networks?: unknown; image?: string };
const read = (file: string): string => readFileSync(path.join(repoRoot, file), 'utf8');
const compose = parse(read('docker-compose.yml')) as {
  services: Record<string, Service>;
  networks: Record<string, unknown>;
};
const { app, proxy, db } = compose.services as { app: Service; proxy: Service; db: Service };

describe('docker-compose.yml', () => {
  it('has exactly the app, the proxy and the database', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['app', 'db', 'proxy']);
  });

  it('keeps the database out of a plain `up`, unpublished, on the project network only, its data on an external volume', () => {
    const d = db;
    expect(d.profiles).toEqual(['db']);
    expect(d.ports).toBeUndefined();
    expect(Object.keys(d.networks as object)).toEqual(['default']);
    expect(d.image).toBe('${DB_IMAGE:-postgres:17.6-bookworm}');
    expect(d.user).toBe('postgres');
    expect(d.volumes).toEqual(['db-data:/var/lib/postgresql/data']);
    const volumes = (compose as unknown as { volumes: Record<string, unknown> }).volumes;
    expect(volumes['db-data']).toEqual({ external: true, name: '${COMPOSE_PROJECT_NAME}-db' });
    expect((d.environment as Record<string, string>).POSTGRES_PASSWORD).toBe('${DB_PASSWORD:-}');
    expect((d.healthcheck as { test: string[] }).test.slice(0, 2)).toEqual(['CMD', 'pg_isready']);
  });

  it('keeps the app out of a plain `up`, so compose never recreates a deployed container', () => {
    expect(app.profiles).toEqual(['standalone']);
    expect(proxy.profiles).toBeUndefined();
    expect(proxy.depends_on).toBeUndefined();
  });

  it('takes every image from the environment, with production defaults', () => {
    expect(app.image).toBe('${IMAGE:-docker.io/acme/berth}:${TAG:-latest}');
    expect(proxy.image).toBe('${PROXY_IMAGE:-nginx:1.27-alpine}');
  });

  it.each([
    ['app', app],
    ['proxy', proxy],
  ])('hardens the %s container', (_name, service) => {
    expect(service).toMatchObject({
      restart: 'unless-stopped',
      read_only: true,
      tmpfs: [expect.stringMatching(/^\/tmp(:|$)/)],
      cap_drop: ['ALL'],
      security_opt: ['no-new-privileges=true'],
      logging: {
        driver: 'json-file',
        options: { 'max-size': expect.any(String), 'max-file': expect.any(String) },
      },
    });
    expect(service.mem_limit).toMatch(/^\$\{[A-Z_]+:-\d+m\}$/);
    expect(service.cpus).toMatch(/^\$\{[A-Z_]+:-[\d.]+\}$/);
    expect(service.pids_limit).toBeGreaterThan(0);
  });

  it("gives the app no host port, its own raw settings file, a fixed port 8000 and the image's own healthcheck", () => {
    expect(app.ports).toBeUndefined();
    expect(app.expose).toEqual(['8000']);
    // app.env, not .env: compose's interpolation file never reaches the app, and `raw` keeps
    // every value byte for byte, as `docker create --env-file` does in a deploy.
    expect(app.env_file).toEqual([{ path: 'app.env', format: 'raw', required: false }]);
    expect(app.environment).toMatchObject({ PORT: '8000' });
    // None stated here: an image without node (or any shell) would be marked unhealthy by it.
    // Berth's image brings its own (the Dockerfile's HEALTHCHECK, tested below).
    expect(app.healthcheck).toBeUndefined();
  });

  it('puts the app on the shared network under its per-environment alias', () => {
    expect(app.networks).toMatchObject({
      default: null,
      berth: { aliases: ['berth-${BERTH_ENV:-production}-app'] },
    });
    expect(compose.networks.berth).toEqual({ external: true, name: '${BERTH_NETWORK:-berth}' });
  });

  it('lets only the proxy publish the public port, and keeps it off the shared network', () => {
    expect(proxy.ports).toEqual(['${APP_BIND:-0.0.0.0}:${APP_PORT:-8000}:8080']);
    // On `berth`, the name `app` would also match other environments' app containers.
    expect(proxy.networks).toEqual(['default']);
    expect(proxy.volumes).toEqual(['./proxy:/etc/nginx/berth:ro']);
    expect(proxy.user).toBe('101:101');
    expect(proxy.stop_signal).toBe('SIGQUIT');
  });
});

describe('proxy/', () => {
  const conf = read('proxy/nginx.conf');
  const upstream = read('proxy/upstream.conf');

  it('listens unprivileged on 8080 with everything writable in /tmp', () => {
    expect(conf).toMatch(/^\s*listen 8080 default_server;$/m);
    expect(conf).toMatch(/^pid \/tmp\/nginx\.pid;$/m);
    for (const kind of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) {
      expect(conf).toMatch(new RegExp(`^\\s*${kind}_temp_path /tmp/`, 'm'));
    }
  });

  it('forwards to the rewritable upstream with keep-alive and the forwarding headers', () => {
    expect(conf).toMatch(
      /upstream berth_app \{\s*(#.*\s*)*include \/etc\/nginx\/berth\/upstream\.conf;\s*keepalive \d+;/,
    );
    expect(conf).toContain('proxy_http_version 1.1;');
    expect(conf).toContain('proxy_set_header Connection "";');
    for (const header of [
      'X-Request-Id',
      'X-Forwarded-For',
      'X-Forwarded-Proto',
      'X-Forwarded-Host',
    ]) {
      expect(conf).toMatch(new RegExp(`proxy_set_header ${header} \\$`));
    }
    expect(upstream.replace(/#.*$/gm, '').trim()).toMatch(/^(server [\w.-]+:8000[^;]*;\s*)+$/);
  });
});

describe('Dockerfile and .dockerignore', () => {
  const dockerfile = read('Dockerfile');
  const ignore = read('.dockerignore')
    .split('\n')
    .filter((l) => l && !l.startsWith('#'));

  it('builds on Node 24 by default, overridable by build argument', () => {
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:24-bookworm-slim$/m);
    expect(dockerfile.match(/^FROM \$\{NODE_IMAGE\} AS \w[\w-]*$/gm)).toHaveLength(3);
  });

  it('runs as the unprivileged node user, node as PID 1, with a node HEALTHCHECK', () => {
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^CMD \["node", "dist\/service\/server\.js"\]$/m);
    expect(dockerfile).toMatch(/CMD \["node", "dist\/service\/healthcheck\.js"\]/);
    for (const label of ['source', 'revision', 'version', 'created']) {
      expect(dockerfile).toContain(`org.opencontainers.image.${label}=`);
    }
  });

  it('sends only manifests, TypeScript config, the service sources and migrations to the build', () => {
    expect(ignore[0]).toBe('*');
    expect(ignore.filter((l) => l.startsWith('!'))).toEqual([
      '!package.json',
      '!package-lock.json',
      '!tsconfig.json',
      '!tsconfig.build.json',
      '!src/service/',
      '!migrations/',
    ]);
    // The release step's command finds them beside dist/ (src/service/db/migrate.ts).
    expect(dockerfile).toMatch(/^COPY migrations \.\/migrations$/m);
    expect(ignore).toEqual(expect.arrayContaining(['**/node_modules', '**/*.test.ts', '**/.env*']));
  });
});
