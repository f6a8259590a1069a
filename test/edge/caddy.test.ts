// The edge's Caddy config and admin requests, as data (the real Caddy runs them in *.int.test.ts).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/real-tools.js';
import {
  acmeIssuer,
  ADMIN_LISTEN,
  adminArgv,
  appSite,
  bootstrapConfig,
  buildCaddyConfig,
  certificateFile,
  edgeCommand,
  edgeSettingsFromEnv,
  issuerKey,
  LETS_ENCRYPT,
  loadConfig,
  parseRoute,
  readRoute,
  readUpstream,
  sameIssuer,
  switchUpstream,
  upsertSite,
  type EdgeSettings,
} from '../../src/edge/caddy.js';

const settings = (over: Partial<EdgeSettings> = {}): EdgeSettings => ({
  sites: [
    { name: 'production', domain: 'api.example.com', upstream: 'berth-production-app:8000' },
    { name: 'staging', domain: 'staging.api.example.com', upstream: 'berth-staging-app:8000' },
    { name: 'grafana', domain: 'grafana.example.com', upstream: 'berth-grafana:3000' },
  ],
  acme: { ca: LETS_ENCRYPT, email: 'ops@example.com' },
  storageRoot: '/data/caddy',
  admin: ADMIN_LISTEN,
  httpPort: 80,
  httpsPort: 443,
  hstsMaxAge: 31536000,
  ...over,
});

// The shapes the tests walk; the builder returns plain JSON.
interface Route {
  '@id'?: string;
  match?: { host?: string[]; protocol?: string; file?: { try_files: string[] } }[];
  handle: {
    handler: string;
    routes?: Route[];
    upstreams?: { '@id': string; dial: string }[];
    status_code?: number;
    headers?: Record<string, string[]>;
    response?: { set: Record<string, string[]> };
  }[];
  terminal?: boolean;
}
interface Config {
  admin: { listen: string };
  storage: { root: string };
  apps: {
    http: {
      http_port: number;
      https_port: number;
      grace_period?: string;
      servers: {
        edge: {
          listen: string[];
          routes: Route[];
          strict_sni_host: boolean;
          tls_connection_policies: { protocol_min: string }[];
          automatic_https: { disable_redirects: boolean };
        };
      };
    };
    tls: {
      automation: {
        policies: {
          subjects: string[];
          issuers: {
            module: string;
            ca: string;
            email?: string;
            trusted_roots_pem_files?: string[];
          }[];
        }[];
      };
    };
  };
}
const build = (s = settings()) => buildCaddyConfig(s) as unknown as Config;
const inner = (r: Route) => r.handle[0]?.routes ?? [];

describe('buildCaddyConfig', () => {
  const c = build();
  const server = c.apps.http.servers.edge;

  it('one server on 80 and 443, TLS 1.2 or newer, strict SNI, redirects left to the routes, no grace period', () => {
    expect(server.listen).toEqual([':80', ':443']);
    expect(server.tls_connection_policies).toEqual([{ protocol_min: 'tls1.2' }]);
    expect(server.strict_sni_host).toBe(true);
    expect(server.automatic_https).toEqual({ disable_redirects: true });
    expect(c.apps.http.grace_period).toBeUndefined();
  });

  it('keeps the admin API on loopback and certificates in the volume', () => {
    expect(c.admin.listen).toBe('127.0.0.1:2019');
    expect(c.storage.root).toBe('/data/caddy');
  });

  it('one route per site with stable ids, then the unknown-host catch-all last', () => {
    expect(server.routes.map((r) => r['@id'])).toEqual([
      'berth-production',
      'berth-staging',
      'berth-grafana',
      'berth-unknown-host',
    ]);
    expect(server.routes[0]?.match).toEqual([{ host: ['api.example.com'] }]);
    expect(server.routes.slice(0, 3).every((r) => r.terminal === true)).toBe(true);
    const unknown = server.routes[3]!;
    expect(unknown.match).toBeUndefined();
    expect(
      inner(unknown).map((r) => [r.match?.[0]?.protocol ?? 'any', r.handle[0]?.status_code]),
    ).toEqual([
      ['https', 421],
      ['any', 404],
    ]);
  });

  it('a site: HTTP with a stored certificate -> 308 to HTTPS; HSTS on HTTPS only; one upstream with its own id', () => {
    const [redirect, hsts, proxy] = inner(server.routes[0]!);
    expect(redirect?.match).toEqual([
      {
        protocol: 'http',
        file: {
          root: '/',
          try_files: [
            '/data/caddy/certificates/acme-v02.api.letsencrypt.org-directory/api.example.com/api.example.com.crt',
          ],
        },
      },
    ]);
    expect(redirect?.handle[0]).toMatchObject({
      handler: 'static_response',
      status_code: 308,
      headers: { Location: ['https://{http.request.host}{http.request.uri}'] },
    });
    expect(hsts?.match).toEqual([{ protocol: 'https' }]);
    expect(hsts?.handle[0]?.response?.set).toEqual({
      'Strict-Transport-Security': ['max-age=31536000'],
    });
    expect(proxy?.handle[0]).toEqual({
      handler: 'reverse_proxy',
      upstreams: [{ '@id': 'berth-production-upstream', dial: 'berth-production-app:8000' }],
    });
  });

  it('redirects to the HTTPS port when it is not 443; leaves HSTS out at max-age 0', () => {
    const routes = inner(
      build(settings({ httpsPort: 8443, hstsMaxAge: 0 })).apps.http.servers.edge.routes[0]!,
    );
    expect(routes[0]?.handle[0]?.headers?.Location).toEqual([
      'https://{http.request.host}:8443{http.request.uri}',
    ]);
    expect(routes.map((r) => r.handle[0]?.handler)).toEqual(['static_response', 'reverse_proxy']);
  });

  it('certificates only for the configured names (no on-demand), from the configured CA', () => {
    const policies = c.apps.tls.automation.policies;
    expect(policies).toEqual([
      {
        subjects: ['api.example.com', 'staging.api.example.com', 'grafana.example.com'],
        issuers: [{ module: 'acme', ca: LETS_ENCRYPT, email: 'ops@example.com' }],
      },
    ]);
    expect(JSON.stringify(c)).not.toContain('on_demand');
    const test = build(
      settings({ acme: { ca: 'https://127.0.0.1:14000/dir', caRootFiles: ['/x/pebble.pem'] } }),
    );
    expect(test.apps.tls.automation.policies[0]?.issuers).toEqual([
      {
        module: 'acme',
        ca: 'https://127.0.0.1:14000/dir',
        trusted_roots_pem_files: ['/x/pebble.pem'],
      },
    ]);
  });

  it('with no domains: no sites, no certificates, every request gets the catch-all', () => {
    const bare = build(settings({ sites: [] }));
    expect(bare.apps.http.servers.edge.routes.map((r) => r['@id'])).toEqual(['berth-unknown-host']);
    expect(bare.apps.tls.automation.policies).toEqual([]);
  });

  it('refuses bad input, naming it', () => {
    const site = {
      name: 'production',
      domain: 'api.example.com',
      upstream: 'berth-production-app:8000',
    };
    expect(() =>
      build(settings({ sites: [{ ...site, domain: 'https://api.example.com' }] })),
    ).toThrow(/production's domain/);
    expect(() => build(settings({ sites: [{ ...site, domain: 'API.example.com' }] }))).toThrow(
      /lower-case/,
    );
    expect(() => build(settings({ sites: [{ ...site, domain: 'localhost' }] }))).toThrow(
      /with a dot/,
    );
    expect(() => build(settings({ sites: [{ ...site, upstream: 'app' }] }))).toThrow(/host:port/);
    expect(() => build(settings({ sites: [site, { ...site, name: 'staging' }] }))).toThrow(
      /api.example.com is the domain of both production and staging/,
    );
    expect(() => build(settings({ sites: [site, { ...site, domain: 'b.example.com' }] }))).toThrow(
      /share a name/,
    );
    expect(() => build(settings({ acme: { ca: 'http://ca.example.com/dir' } }))).toThrow(/ACME_CA/);
    expect(() => build(settings({ acme: { ca: LETS_ENCRYPT, email: 'ops' } }))).toThrow(
      /ACME_EMAIL/,
    );
    expect(() => build(settings({ hstsMaxAge: Number('a year') }))).toThrow(/EDGE_HSTS_MAX_AGE/);
  });
});

describe('where certificates live', () => {
  it('names the issuer folder as certmagic does', () => {
    expect(issuerKey(LETS_ENCRYPT)).toBe('acme-v02.api.letsencrypt.org-directory');
    expect(issuerKey('https://127.0.0.1:14000/dir')).toBe('127.0.0.1-14000-dir');
    expect(issuerKey('https://CA.example.com/acme/directory/')).toBe(
      'ca.example.com-acme-directory',
    );
    expect(issuerKey('https://ca.example.com')).toBe('ca.example.com');
    expect(certificateFile(settings(), 'a.example.com')).toBe(
      '/data/caddy/certificates/acme-v02.api.letsencrypt.org-directory/a.example.com/a.example.com.crt',
    );
  });
});

describe('admin requests', () => {
  it('a switch sets the dial of one upstream, by id, and nothing else', () => {
    expect(switchUpstream('staging', 'berth-staging-app-2f9c1e:8000')).toEqual({
      method: 'PATCH',
      path: '/id/berth-staging-upstream/dial',
      body: '"berth-staging-app-2f9c1e:8000"',
    });
    expect(() => switchUpstream('staging', 'x; rm -rf /')).toThrow(/host:port/);
    expect(readUpstream('production')).toEqual({
      method: 'GET',
      path: '/id/berth-production-upstream/dial',
    });
  });

  it('runs inside the edge container with wget (busybox has no PATCH: a key is set by POST)', () => {
    expect(edgeCommand(switchUpstream('production', 'berth-production-app-1:8000')).argv).toEqual([
      'docker',
      'exec',
      'berth-edge',
      'wget',
      '-q',
      '-O',
      '-',
      '--header',
      'Content-Type: application/json',
      '--post-data',
      '"berth-production-app-1:8000"',
      'http://127.0.0.1:2019/id/berth-production-upstream/dial',
    ]);
    expect(adminArgv(readUpstream('production'), '127.0.0.1:1')).toEqual([
      'wget',
      '-q',
      '-O',
      '-',
      'http://127.0.0.1:1/id/berth-production-upstream/dial',
    ]);
    // POST on an array element appends: refused rather than sent.
    expect(() =>
      adminArgv({
        method: 'PATCH',
        path: '/config/apps/http/servers/edge/routes/0/handle/0/upstreams/0',
        body: '{}',
      }),
    ).toThrow(/append/);
    expect(loadConfig({ a: 1 })).toEqual({ method: 'POST', path: '/load', body: '{"a":1}' });
  });
});

describe('readRoute / parseRoute', () => {
  it('reads a site’s host and upstream in one request', () => {
    expect(readRoute('staging')).toEqual({ method: 'GET', path: '/id/berth-staging' });
    const config = build(
      settings({
        sites: [
          { name: 'staging', domain: 'staging.example.com', upstream: 'berth-staging-app-1:8000' },
          { name: 'testing', domain: 'testing.example.com', upstream: 'berth-testing-app-9:8000' },
        ],
      }),
    );
    const route = config.apps.http.servers.edge.routes.find((r) => r['@id'] === 'berth-staging');
    // As the admin API answers it: JSON text of the route.
    expect(parseRoute(JSON.parse(JSON.stringify(route)), 'staging')).toEqual({
      upstream: 'berth-staging-app-1:8000',
      domain: 'staging.example.com',
    });
    // Another site's route, an error answer, nothing: no route of this site.
    expect(parseRoute(route, 'testing')).toBeUndefined();
    expect(parseRoute({ error: 'unknown object ID' }, 'staging')).toBeUndefined();
    expect(parseRoute(undefined, 'staging')).toBeUndefined();
  });
});

describe('upsertSite', () => {
  const base = buildCaddyConfig(
    settings({
      sites: [
        { name: 'production', domain: 'api.example.com', upstream: 'berth-production-app:8000' },
      ],
    }),
  );

  it('adds a site before the catch-all and its name to the certificate policy', () => {
    const next = upsertSite(base, settings(), {
      name: 'testing',
      domain: 'testing.example.com',
      upstream: 'berth-testing-app:8000',
    }) as unknown as Config;
    expect(next.apps.http.servers.edge.routes.map((r) => r['@id'])).toEqual([
      'berth-production',
      'berth-testing',
      'berth-unknown-host',
    ]);
    expect(next.apps.tls.automation.policies[0]?.subjects).toEqual([
      'api.example.com',
      'testing.example.com',
    ]);
    expect((base as unknown as Config).apps.http.servers.edge.routes).toHaveLength(2);
  });

  it('replaces a site whose domain changed, and drops the old name from the policy', () => {
    const next = upsertSite(base, settings(), {
      name: 'production',
      domain: 'www.example.com',
      upstream: 'berth-production-app:8000',
    }) as unknown as Config;
    expect(next.apps.http.servers.edge.routes.map((r) => r.match?.[0]?.host?.[0])).toEqual([
      'www.example.com',
      undefined,
    ]);
    expect(next.apps.tls.automation.policies[0]?.subjects).toEqual(['www.example.com']);
  });

  it('puts in the issuer the settings ask for (a CA or contact changed since), and says when the running one differs', () => {
    const staging = 'https://acme-staging-v02.api.letsencrypt.org/directory';
    const wanted = settings({ acme: { ca: staging, caRootFiles: ['/etc/caddy/trust/ca.pem'] } });
    const next = upsertSite(base, wanted, {
      name: 'production',
      domain: 'api.example.com',
      upstream: 'berth-production-app:8000',
    });
    const issuer = (
      next as unknown as { apps: { tls: { automation: { policies: { issuers: unknown[] }[] } } } }
    ).apps.tls.automation.policies[0]?.issuers[0];
    expect(issuer).toEqual({
      module: 'acme',
      ca: staging,
      trusted_roots_pem_files: ['/etc/caddy/trust/ca.pem'],
    });
    expect(sameIssuer(issuer, acmeIssuer(wanted))).toBe(true);
    // The contact, the CA and the private root each count; key order does not.
    expect(sameIssuer(issuer, acmeIssuer(settings()))).toBe(false);
    expect(sameIssuer({ ...(issuer as object), email: 'x@example.com' }, acmeIssuer(wanted))).toBe(
      false,
    );
    expect(sameIssuer({ ca: staging, module: 'acme' }, acmeIssuer(wanted))).toBe(false);
    expect(
      sameIssuer(
        { trusted_roots_pem_files: ['/etc/caddy/trust/ca.pem'], ca: staging, module: 'acme' },
        acmeIssuer(wanted),
      ),
    ).toBe(true);
    expect(sameIssuer(undefined, acmeIssuer(wanted))).toBe(false);
  });

  it('starts the certificate policy in a config that had no sites', () => {
    const empty = buildCaddyConfig(settings({ sites: [] }));
    const next = upsertSite(empty, settings(), {
      name: 'production',
      domain: 'api.example.com',
      upstream: 'a:1',
    }) as unknown as Config;
    expect(next.apps.tls.automation.policies[0]?.subjects).toEqual(['api.example.com']);
  });
});

describe('edgeSettingsFromEnv and appSite', () => {
  it('an environment has a site only when its settings give APP_DOMAIN; its app by network alias', () => {
    expect(appSite('production', { APP_DOMAIN: 'api.example.com' })).toEqual({
      name: 'production',
      domain: 'api.example.com',
      upstream: 'berth-production-app:8000',
    });
    expect(appSite('testing', { APP_DOMAIN: '' })).toBeUndefined();
    expect(appSite('testing', {})).toBeUndefined();
  });

  it("adds Grafana when GRAFANA_DOMAIN is set; Let's Encrypt by default", () => {
    const s = edgeSettingsFromEnv({ GRAFANA_DOMAIN: 'grafana.example.com' }, [
      appSite('production', { APP_DOMAIN: 'api.example.com' })!,
    ]);
    expect(s.sites).toEqual([
      { name: 'production', domain: 'api.example.com', upstream: 'berth-production-app:8000' },
      { name: 'grafana', domain: 'grafana.example.com', upstream: 'berth-grafana:3000' },
    ]);
    expect(s.acme).toEqual({ ca: LETS_ENCRYPT });
    expect(s.hstsMaxAge).toBe(31536000);
  });

  it('takes the CA, contact and HSTS from the environment; no domains means no sites', () => {
    const s = edgeSettingsFromEnv(
      {
        ACME_CA: 'https://acme-staging-v02.api.letsencrypt.org/directory',
        ACME_EMAIL: 'ops@example.com',
        EDGE_HSTS_MAX_AGE: '300',
      },
      [],
    );
    expect(s.sites).toEqual([]);
    expect(s.acme).toEqual({
      ca: 'https://acme-staging-v02.api.letsencrypt.org/directory',
      email: 'ops@example.com',
    });
    expect(s.hstsMaxAge).toBe(300);
  });

  it("trusts a private CA's root from the edge's trust folder (ACME_CA_ROOT), and refuses a path", () => {
    const s = edgeSettingsFromEnv(
      { ACME_CA: 'https://ca.internal:9000/acme/acme/directory', ACME_CA_ROOT: 'step-ca.pem' },
      [appSite('production', { APP_DOMAIN: 'api.example.com' })!],
    );
    expect(s.acme.caRootFiles).toEqual(['/etc/caddy/trust/step-ca.pem']);
    const issuer = JSON.stringify(buildCaddyConfig(s));
    expect(issuer).toContain('"trusted_roots_pem_files":["/etc/caddy/trust/step-ca.pem"]');
    for (const bad of ['../etc/shadow', '/etc/ssl/ca.pem', 'root', '.pem'])
      expect(() => edgeSettingsFromEnv({ ACME_CA_ROOT: bad }, [])).toThrow(
        `edge: ACME_CA_ROOT must name a .pem or .crt file in /opt/berth/edge/edge/trust, no path (got "${bad}")`,
      );
    expect(edgeSettingsFromEnv({ ACME_CA_ROOT: '' }, []).acme).toEqual({ ca: LETS_ENCRYPT });
  });
});

describe('edge/bootstrap.json', () => {
  it('is what buildCaddyConfig makes with no sites (regenerate: npx tsx src/edge/write-bootstrap.ts)', () => {
    const file = JSON.parse(
      readFileSync(path.join(repoRoot, 'edge', 'bootstrap.json'), 'utf8'),
    ) as unknown;
    expect(file).toEqual(bootstrapConfig());
  });
});
