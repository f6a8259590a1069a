// docker-compose.edge.yml read as data: the edge's hardening, ports, volumes and the admin API's
// absence from every published port. `docker compose config` (ci.yml) checks the syntax.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoRoot } from '../helpers/real-tools.js';

type Service = Record<string, unknown>;
const text = readFileSync(path.join(repoRoot, 'docker-compose.edge.yml'), 'utf8');
const compose = parse(text) as {
  services: Record<string, Service>;
  volumes: Record<string, { name: string }>;
  networks: Record<string, unknown>;
};
const edge = compose.services.edge!;

describe('docker-compose.edge.yml', () => {
  it('runs the pinned official Caddy by default, replaceable from the environment', () => {
    expect(edge.image).toBe('${EDGE_IMAGE:-caddy:2.10-alpine}');
    expect(compose.services['edge-volumes']?.image).toBe(edge.image);
  });

  it('owns 80 and 443 only: the admin API (2019) is never published', () => {
    expect(edge.ports).toEqual(['80:80', '443:443']);
    expect(text).not.toMatch(/2019:|:2019"?\s*$/m);
  });

  it('is hardened: uid 1000, read-only root, every capability dropped but the one the binary is marked with', () => {
    expect(edge).toMatchObject({
      user: '1000:1000',
      read_only: true,
      cap_drop: ['ALL'],
      cap_add: ['NET_BIND_SERVICE'],
      security_opt: ['no-new-privileges:true'],
      sysctls: { 'net.ipv4.ip_unprivileged_port_start': '80' },
      restart: 'unless-stopped',
      container_name: 'berth-edge',
    });
    expect(edge.tmpfs).toEqual([expect.stringMatching(/^\/tmp:/)]);
    expect(compose.services['edge-volumes']).toMatchObject({
      cap_drop: ['ALL'],
      cap_add: ['CHOWN'],
      network_mode: 'none',
      restart: 'no',
    });
  });

  it('keeps certificates and the running config on named volumes, and starts from the bootstrap config with --resume', () => {
    expect(edge.volumes).toEqual([
      './edge/bootstrap.json:/etc/caddy/bootstrap.json:ro',
      './edge/trust:/etc/caddy/trust:ro',
      'edge-data:/data',
      'edge-config:/config',
    ]);
    expect(compose.volumes).toEqual({
      'edge-data': { name: 'berth-edge-data' },
      'edge-config': { name: 'berth-edge-config' },
    });
    expect(edge.command).toEqual([
      'caddy',
      'run',
      '--config',
      '/etc/caddy/bootstrap.json',
      '--resume',
    ]);
  });

  it('joins the shared network, where it reaches each app by its alias', () => {
    expect(edge.networks).toEqual(['berth']);
    expect(compose.networks.berth).toEqual({ external: true, name: '${BERTH_NETWORK:-berth}' });
  });
});
