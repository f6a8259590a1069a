// The per-VM HTTPS edge (Caddy) as data: the whole JSON config, the admin-API request that
// switches one environment's upstream, and the command the deploy runs on the VM to send it.
// Pure: nothing here touches a host, so every field is pinned by a unit test
// (test/edge/caddy.test.ts) and the same values drive the real Caddy in test/edge/*.int.test.ts.
// How the deploy uses it: docs/edge.md.

/** One host the edge serves: an environment's APP_DOMAIN, or Grafana's GRAFANA_DOMAIN. */
export interface EdgeSite {
  /** Stable name: the route's `@id` is `berth-<name>`, its upstream's `berth-<name>-upstream`. */
  name: string;
  domain: string;
  /** host:port on the shared docker network, e.g. `berth-production-app:8000`. */
  upstream: string;
}

export interface EdgeAcme {
  /** ACME directory URL; Let's Encrypt's production directory by default. */
  ca: string;
  /** Contact address for expiry notices; optional for Let's Encrypt. */
  email?: string;
  /** PEM file(s) that sign the ACME server's own TLS certificate (a private CA; tests: pebble). */
  caRootFiles?: string[];
}

export interface EdgeSettings {
  sites: EdgeSite[];
  acme: EdgeAcme;
  /** Where Caddy keeps certificates and ACME accounts: the named volume deploys never touch. */
  storageRoot: string;
  /** Admin API listener, inside the edge container only (never published). */
  admin: string;
  httpPort: number;
  httpsPort: number;
  /** HSTS max-age in seconds (0 leaves the header out, e.g. while trying a new domain). */
  hstsMaxAge: number;
  /**
   * Left unset on purpose: Caddy then lets requests in flight on the old config finish and
   * closes each old keep-alive connection after its current answer. With a grace period,
   * Caddy (2.6.2 up to today's source, modules/caddyhttp/app.go Stop) cancels the shutdown
   * as soon as a reload returns, and the old server's keep-alive connections then stay open
   * serving the OLD upstream indefinitely (measured: v1 and v2 interleaved for good).
   */
  gracePeriod?: string;
}

export const LETS_ENCRYPT = 'https://acme-v02.api.letsencrypt.org/directory';
// 127.0.0.1, not `localhost`: busybox wget tries ::1 for localhost, where Caddy does not listen.
export const ADMIN_LISTEN = '127.0.0.1:2019';
export const EDGE_CONTAINER = 'berth-edge';
/** Where the edge container sees /opt/berth/edge/edge/trust (docker-compose.edge.yml). */
export const EDGE_TRUST_DIR = '/etc/caddy/trust';
const PEM_FILE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*\.(pem|crt)$/;

export const routeId = (name: string): string => `berth-${name}`;
export const upstreamId = (name: string): string => `berth-${name}-upstream`;

const DOMAIN = /^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$/;
const UPSTREAM = /^[A-Za-z0-9_.-]+:\d{1,5}$/;
const NAME = /^[a-z][a-z0-9-]*$/;

/** Throws naming the first bad value; the config is only ever built from checked input. */
export function validateSettings(s: EdgeSettings): void {
  const seen = new Map<string, string>();
  for (const site of s.sites) {
    if (!NAME.test(site.name))
      throw new Error(
        `edge: site name must be lower-case letters, digits and dashes (got "${site.name}")`,
      );
    if (!DOMAIN.test(site.domain))
      throw new Error(
        `edge: ${site.name}'s domain must be a lower-case host name with a dot, no port or scheme (got "${site.domain}")`,
      );
    if (!UPSTREAM.test(site.upstream))
      throw new Error(`edge: ${site.name}'s upstream must be host:port (got "${site.upstream}")`);
    const other = seen.get(site.domain);
    if (other !== undefined)
      throw new Error(`edge: ${site.domain} is the domain of both ${other} and ${site.name}`);
    seen.set(site.domain, site.name);
  }
  if (new Set(s.sites.map((x) => x.name)).size !== s.sites.length)
    throw new Error('edge: two sites share a name');
  if (!Number.isInteger(s.hstsMaxAge) || s.hstsMaxAge < 0)
    throw new Error(
      `edge: EDGE_HSTS_MAX_AGE must be a whole number of seconds (got "${s.hstsMaxAge}")`,
    );
  if (!/^https:\/\/\S+$/.test(s.acme.ca))
    throw new Error(`edge: ACME_CA must be an https:// directory URL (got "${s.acme.ca}")`);
  if (s.acme.email !== undefined && s.acme.email !== '' && !/^[^\s@]+@[^\s@]+$/.test(s.acme.email))
    throw new Error(`edge: ACME_EMAIL is not an email address (got "${s.acme.email}")`);
}

/**
 * certmagic's folder for one issuer under <storage>/certificates (its ACMEIssuer.issuerKey, then
 * StorageKeys.Safe): the CA's host, '-', its path with '/' as '-' and no leading or trailing '-',
 * lower-cased, ':' as '-', anything but letters, digits, '_', '@', '.', '-' dropped
 * (https://acme-v02.api.letsencrypt.org/directory -> acme-v02.api.letsencrypt.org-directory).
 */
export function issuerKey(ca: string): string {
  const url = new URL(ca);
  const p = url.pathname.replace(/[/\\]/g, '-').replace(/^-+|-+$/g, '');
  const key = p ? `${url.host}-${p}` : url.host;
  return key
    .trim()
    .toLowerCase()
    .replace(/ /g, '_')
    .replace(/\+/g, 'x')
    .replace(/\*/g, 'wildcard_')
    .replace(/:/g, '-')
    .replace(/\.\./g, '')
    .replace(/[^\w@.-]/g, '');
}

/** Where Caddy stores a domain's certificate once it has one. */
export const certificateFile = (
  s: Pick<EdgeSettings, 'storageRoot' | 'acme'>,
  domain: string,
): string => `${s.storageRoot}/certificates/${issuerKey(s.acme.ca)}/${domain}/${domain}.crt`;

export type Json = Record<string, unknown>;

/**
 * One route per site, on the one server that listens on both ports (Caddy puts TLS on every
 * listener but the HTTP port's), so the site has ONE upstream object for both schemes and a
 * switch is one change. Over HTTP: a host whose certificate is already in storage is redirected
 * to HTTPS (308); a host without one yet (a new domain while the CA is unreachable) is served
 * over plain HTTP rather than sent to a TLS handshake that cannot succeed. Caddy answers ACME
 * HTTP-01 challenges on the HTTP port before any route runs.
 */
function siteRoute(s: EdgeSettings, site: EdgeSite): Json {
  const target =
    s.httpsPort === 443
      ? 'https://{http.request.host}{http.request.uri}'
      : `https://{http.request.host}:${s.httpsPort}{http.request.uri}`;
  const hsts: Json[] =
    s.hstsMaxAge > 0
      ? [
          {
            match: [{ protocol: 'https' }],
            handle: [
              {
                handler: 'headers',
                response: { set: { 'Strict-Transport-Security': [`max-age=${s.hstsMaxAge}`] } },
              },
            ],
          },
        ]
      : [];
  return {
    '@id': routeId(site.name),
    match: [{ host: [site.domain] }],
    handle: [
      {
        handler: 'subroute',
        routes: [
          {
            match: [
              {
                protocol: 'http',
                file: { root: '/', try_files: [certificateFile(s, site.domain)] },
              },
            ],
            handle: [
              { handler: 'static_response', status_code: 308, headers: { Location: [target] } },
            ],
            terminal: true,
          },
          ...hsts,
          // Caddy sets X-Forwarded-For/-Proto/-Host itself and passes the client's Host on.
          {
            handle: [
              {
                handler: 'reverse_proxy',
                upstreams: [{ '@id': upstreamId(site.name), dial: site.upstream }],
              },
            ],
          },
        ],
      },
    ],
    terminal: true,
  };
}

/** Anything no site matched: the edge answers itself (421 over TLS, 404 over HTTP); no app sees it. */
const UNKNOWN_HOST: Json = {
  '@id': 'berth-unknown-host',
  handle: [
    {
      handler: 'subroute',
      routes: [
        {
          match: [{ protocol: 'https' }],
          handle: [
            { handler: 'static_response', status_code: 421, body: 'unknown host\n', close: true },
          ],
          terminal: true,
        },
        {
          handle: [
            { handler: 'static_response', status_code: 404, body: 'unknown host\n', close: true },
          ],
        },
      ],
    },
  ],
};

/** The certificate issuer the settings ask for: their ACME CA, contact and private root. */
export function acmeIssuer(s: EdgeSettings): Json {
  const issuer: Json = { module: 'acme', ca: s.acme.ca };
  if (s.acme.email) issuer.email = s.acme.email;
  if (s.acme.caRootFiles?.length) issuer.trusted_roots_pem_files = s.acme.caRootFiles;
  return issuer;
}

/** Is the running issuer (as `readIssuer` read it) the one the settings ask for? */
export function sameIssuer(running: unknown, wanted: Json): boolean {
  const r = (running ?? {}) as Json;
  return ['module', 'ca', 'email', 'trusted_roots_pem_files'].every(
    (k) => JSON.stringify(r[k]) === JSON.stringify(wanted[k]),
  );
}

export function buildCaddyConfig(s: EdgeSettings): Json {
  validateSettings(s);
  const domains = s.sites.map((x) => x.domain);
  const issuer = acmeIssuer(s);
  return {
    admin: { listen: s.admin, config: { persist: true } },
    logging: {
      logs: {
        default: { level: 'INFO', writer: { output: 'stderr' }, encoder: { format: 'json' } },
      },
    },
    storage: { module: 'file_system', root: s.storageRoot },
    apps: {
      http: {
        http_port: s.httpPort,
        https_port: s.httpsPort,
        ...(s.gracePeriod ? { grace_period: s.gracePeriod } : {}),
        servers: {
          edge: {
            listen: [`:${s.httpPort}`, `:${s.httpsPort}`],
            routes: [...s.sites.map((site) => siteRoute(s, site)), UNKNOWN_HOST],
            // Over TLS, a Host that differs from the server name (SNI) gets 421 before any route.
            strict_sni_host: true,
            tls_connection_policies: [{ protocol_min: 'tls1.2' }],
            // The redirects are the routes' own (per host, only once a certificate exists).
            automatic_https: { disable_redirects: true },
            protocols: ['h1', 'h2'],
          },
        },
      },
      tls: {
        automation: {
          // Only the configured names (no on-demand TLS): an unknown SNI gets no certificate,
          // and each name gets its own certificate, never a shared SAN list.
          policies: domains.length > 0 ? [{ subjects: domains, issuers: [issuer] }] : [],
        },
      },
    },
  };
}

/** A request to the edge's admin API, as data. */
export interface AdminRequest {
  method: 'GET' | 'POST' | 'PATCH';
  path: string;
  body?: string;
}

/**
 * Switch one site to a new upstream: replaces the `dial` of the one upstream object that carries
 * the site's `@id`. Caddy applies it as a whole new config (validated first; on any error the
 * running config stays), so every request that starts after the answer goes to the new upstream,
 * and requests in flight finish on the old one. The path names the `dial` KEY, never the upstream
 * object itself: that object is an array element, and a POST there would APPEND a second upstream
 * (measured on Caddy 2.6.2: v1 and v2 then share the traffic).
 */
export function switchUpstream(name: string, upstream: string): AdminRequest {
  if (!UPSTREAM.test(upstream))
    throw new Error(`edge: upstream must be host:port (got "${upstream}")`);
  return { method: 'PATCH', path: `/id/${upstreamId(name)}/dial`, body: JSON.stringify(upstream) };
}

/** Where a site's upstream points now (the deploy reads it before and after a switch). */
export const readUpstream = (name: string): AdminRequest => ({
  method: 'GET',
  path: `/id/${upstreamId(name)}/dial`,
});

/** The host a site's route matches (the deploy compares it with APP_DOMAIN). */
export const readDomain = (name: string): AdminRequest => ({
  method: 'GET',
  path: `/id/${routeId(name)}/match/0/host/0`,
});

/** The certificate issuer in force (one policy, one issuer: buildCaddyConfig's shape). */
export const readIssuer = (): AdminRequest => ({
  method: 'GET',
  path: '/config/apps/tls/automation/policies/0/issuers/0',
});

/** A site's whole route: its host and its upstream in one read (`parseRoute`). */
export const readRoute = (name: string): AdminRequest => ({
  method: 'GET',
  path: `/id/${routeId(name)}`,
});

/** The host and upstream of a route `readRoute` read; undefined when it is not one of ours. */
export function parseRoute(
  route: unknown,
  name: string,
): { upstream: string; domain?: string } | undefined {
  const r = route as { match?: { host?: unknown[] }[] } | null;
  const host = r?.match?.[0]?.host?.[0];
  const find = (node: unknown): string | undefined => {
    if (Array.isArray(node)) {
      for (const x of node) {
        const found = find(x);
        if (found !== undefined) return found;
      }
    } else if (node && typeof node === 'object') {
      const o = node as Record<string, unknown>;
      if (o['@id'] === upstreamId(name) && typeof o.dial === 'string') return o.dial;
      return find(Object.values(o));
    }
    return undefined;
  };
  const upstream = find(route);
  if (upstream === undefined) return undefined;
  return { upstream, ...(typeof host === 'string' ? { domain: host } : {}) };
}

/** The whole running config (read, changed with `upsertSite`, loaded back). */
export const readConfig = (): AdminRequest => ({ method: 'GET', path: '/config/' });

/** Load a whole config (first start of a new site, or a changed domain). */
export const loadConfig = (config: Json): AdminRequest => ({
  method: 'POST',
  path: '/load',
  body: JSON.stringify(config),
});

/**
 * The argv that sends `req` from inside the edge container, where the admin API listens on
 * loopback. `wget` because the official caddy:*-alpine image has busybox's, which sends only GET
 * and POST: a PATCH goes as POST. On a path that ends in an object's key (every PATCH built here
 * does: `.../dial`) Caddy's POST sets that key exactly as PATCH replaces it; an unknown @id is a
 * 404 either way. wget exits non-zero on any 4xx/5xx, so a refused switch fails the step.
 */
export function adminArgv(req: AdminRequest, admin = ADMIN_LISTEN): string[] {
  const url = `http://${admin}${req.path}`;
  if (req.method === 'GET') return ['wget', '-q', '-O', '-', url];
  if (req.method === 'PATCH' && /\/\d+$/.test(req.path))
    throw new Error(
      `edge: ${req.path} names an array element; POST would append there, not replace`,
    );
  return [
    'wget',
    '-q',
    '-O',
    '-',
    '--header',
    'Content-Type: application/json',
    '--post-data',
    req.body ?? '',
    url,
  ];
}

/** The same, run in the edge container on the VM (the deploy user is in the docker group). */
export function edgeCommand(req: AdminRequest, container = EDGE_CONTAINER): { argv: string[] } {
  return { argv: ['docker', 'exec', container, ...adminArgv(req)] };
}

/** An environment's site, when its settings give it a domain (APP_DOMAIN; none on a bare IP). */
export function appSite(
  env: string,
  vars: Record<string, string | undefined>,
  upstream = `berth-${env}-app:8000`,
): EdgeSite | undefined {
  const domain = vars.APP_DOMAIN?.trim();
  return domain ? { name: env, domain, upstream } : undefined;
}

/** The edge's settings from the environment (.env.example, section edge) and the sites of the environments. */
export function edgeSettingsFromEnv(
  env: Record<string, string | undefined>,
  sites: EdgeSite[],
): EdgeSettings {
  const all = [...sites];
  const grafana = env.GRAFANA_DOMAIN?.trim();
  if (grafana)
    all.push({
      name: 'grafana',
      domain: grafana,
      upstream: env.GRAFANA_UPSTREAM || 'berth-grafana:3000',
    });
  const email = env.ACME_EMAIL || undefined;
  // A private ACME CA (step-ca, an internal pebble) signs its own HTTPS listener with a root the
  // image does not trust; the file is dropped into the edge's trust folder on the VM.
  const root = env.ACME_CA_ROOT?.trim();
  if (root && !PEM_FILE.test(root))
    throw new Error(
      `edge: ACME_CA_ROOT must name a .pem or .crt file in /opt/berth/edge/edge/trust, no path (got "${root}")`,
    );
  return {
    sites: all,
    acme: {
      ca: env.ACME_CA || LETS_ENCRYPT,
      ...(email ? { email } : {}),
      ...(root ? { caRootFiles: [`${EDGE_TRUST_DIR}/${root}`] } : {}),
    },
    storageRoot: '/data/caddy',
    admin: ADMIN_LISTEN,
    httpPort: 80,
    httpsPort: 443,
    hstsMaxAge: Number(env.EDGE_HSTS_MAX_AGE || 31536000),
  };
}

/**
 * The running config with one site added or changed (its HTTPS route, its port-80 route and its
 * name in the certificate policy) and the issuer the settings ask for, everything else
 * untouched; sent whole with `loadConfig`, so the change is one atomic reload. For the first
 * deploy of an environment that has a domain, a changed APP_DOMAIN or a changed issuer; the
 * switch itself never needs it.
 */
export function upsertSite(current: Json, s: EdgeSettings, site: EdgeSite): Json {
  validateSettings({ ...s, sites: [site] });
  const next = structuredClone(current) as {
    apps: {
      http: { servers: Record<string, { routes: Json[] } | undefined> };
      tls: { automation: { policies: Json[] } };
    };
  };
  const routes = next.apps.http.servers.edge?.routes;
  if (!routes)
    throw new Error(
      'edge: the running config has no "edge" server (not built by buildCaddyConfig)',
    );
  const at = routes.findIndex((r) => r['@id'] === routeId(site.name));
  const old = at >= 0 ? (routes[at] as { match?: { host?: string[] }[] }) : undefined;
  const oldDomain = old?.match?.[0]?.host?.[0];
  if (at >= 0) routes[at] = siteRoute(s, site);
  else routes.splice(Math.max(0, routes.length - 1), 0, siteRoute(s, site)); // before the unknown-host catch-all
  const policies = next.apps.tls.automation.policies as { subjects?: string[]; issuers?: Json[] }[];
  const policy = policies[0];
  if (!policy) {
    policies.push(
      (
        buildCaddyConfig({ ...s, sites: [site] }).apps as {
          tls: { automation: { policies: Json[] } };
        }
      ).tls.automation.policies[0] as Json,
    );
  } else {
    const subjects = (policy.subjects ?? []).filter((d) => d !== oldDomain);
    if (!subjects.includes(site.domain)) subjects.push(site.domain);
    policy.subjects = subjects;
    // The issuer follows the settings too (a CA or contact changed in the edge's .env).
    policy.issuers = [acmeIssuer(s)];
  }
  return next;
}

/**
 * The config the edge container starts with on a new VM (edge/bootstrap.json): both ports, the
 * unknown-host answer for everything, no certificates. The first deploy with a domain loads the
 * real config through the admin API; Caddy autosaves it and `caddy run --resume` restores it
 * after a restart or a reboot.
 */
export function bootstrapConfig(): Json {
  return buildCaddyConfig(edgeSettingsFromEnv({}, []));
}
