// Real ACME on loopback: pebble-challtestsrv (mock DNS: every name -> 127.0.0.1), pebble (the
// CA, validating HTTP-01 on the edge's HTTP port), Caddy as a plain process with the config
// src/edge/caddy.ts builds, and one recording HTTP server per upstream. Every process lives in
// a temp dir on free ports and is stopped by `stop()`.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import {
  buildCaddyConfig,
  issuerKey,
  type EdgeSettings,
  type EdgeSite,
} from '../../src/edge/caddy.js';
import { watchReuse } from '../helpers/keep-alive.js';
import { freePort } from '../helpers/net.js';
import { loadTestEnv, requirePart, requireTool } from '../helpers/real-tools.js';

const HINT =
  "sudo bash scripts/test-env/edge.sh up (installs Debian caddy + pebble and makes pebble's listener certificate)";

export function edgeToolsReady(): boolean {
  const tools = ['caddy', 'pebble', 'pebble-challtestsrv'].every((t) => requireTool(t, HINT));
  return (
    tools &&
    requirePart(
      "pebble's listener certificate",
      () => Boolean(loadTestEnv().EDGE_PEBBLE_CERT),
      HINT,
    )
  );
}

export interface Proc {
  child: ChildProcess;
  log: () => string;
}

function start(
  name: string,
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  cpu?: number,
): Proc {
  let out = '';
  // taskset execs the command in place: the child's pid (and its /proc/<pid>/stat) is cmd's.
  const [file, argv] =
    cpu === undefined ? [cmd, args] : ['taskset', ['-c', String(cpu), cmd, ...args]];
  const child = spawn(file, argv, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  child.on('error', (err) => (out += `${name}: ${err.message}\n`));
  return { child, log: () => out };
}

async function stopProc(p: Proc | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => p.child.kill('SIGKILL'), 5000);
    p.child.once('exit', () => (clearTimeout(timer), resolve()));
    p.child.kill('SIGTERM');
  });
}

export async function waitFor(
  what: string,
  check: () => Promise<boolean> | boolean,
  ms = 20_000,
): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > until) throw new Error(`${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const portOpen = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = http.get(
      { host: '127.0.0.1', port, path: '/' },
      (res) => (res.resume(), resolve(true)),
    );
    s.on('error', () => resolve(false));
  });

/** An upstream that answers `{ version }` and records the Host of every request it got. */
export interface Upstream {
  port: number;
  version: string;
  hosts: string[];
  close: () => Promise<void>;
}

export async function upstream(version: string): Promise<Upstream> {
  const hosts: string[] = [];
  const server = http.createServer((req, res) => {
    hosts.push(req.headers.host ?? '');
    const delay = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('delay_ms') ?? 0);
    if (delay > 0) {
      setTimeout(() => {
        const body = JSON.stringify({ version, delayed: delay });
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
      }, delay);
      return;
    }
    const body = JSON.stringify({
      version,
      host: req.headers.host,
      proto: req.headers['x-forwarded-proto'] ?? null,
    });
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    version,
    hosts,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

export interface Ca {
  dir: string;
  acmeUrl: string;
  listenerCert: string;
  pebble?: Proc;
  dns: Proc;
  /** pebble's current issuing root (PEM); the only thing the test clients trust. */
  root: () => Promise<string>;
  startPebble: () => Promise<void>;
  stop: () => Promise<void>;
}

/** challtestsrv + pebble; `httpPort` is where pebble validates HTTP-01 (the edge's HTTP port). */
export async function startCa(
  httpPort: number,
  tlsPort: number,
  opts: { startPebble?: boolean } = {},
): Promise<Ca> {
  const env = loadTestEnv();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-edge-ca-'));
  const [acmePort, mgmtPort, dnsPort, dnsMgmt] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const listenerCert = env.EDGE_PEBBLE_CERT ?? '';
  writeFileSync(
    path.join(dir, 'pebble.json'),
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: listenerCert,
        privateKey: env.EDGE_PEBBLE_KEY,
        httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );
  const dns = start('challtestsrv', 'pebble-challtestsrv', [
    '-defaultIPv4',
    '127.0.0.1',
    '-defaultIPv6',
    '',
    '-dns01',
    `127.0.0.1:${dnsPort}`,
    '-http01',
    '',
    '-tlsalpn01',
    '',
    '-https01',
    '',
    '-management',
    `127.0.0.1:${dnsMgmt}`,
  ]);
  await waitFor('challtestsrv listens', () => portOpen(dnsMgmt));
  const ca: Ca = {
    dir,
    acmeUrl: `https://127.0.0.1:${acmePort}/dir`,
    listenerCert,
    dns,
    root: () =>
      fetchText(`https://127.0.0.1:${mgmtPort}/roots/0`, readFileSync(listenerCert, 'utf8')),
    startPebble: async () => {
      ca.pebble = start(
        'pebble',
        'pebble',
        ['-config', path.join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${dnsPort}`],
        // Pebble rejects 5 % of valid nonces by default to exercise client retries; Caddy then
        // waits a 60 s backoff, longer than a test should. Let's Encrypt rejects none.
        { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0' },
      );
      await waitFor(`pebble listens (${ca.pebble.log()})`, async () =>
        (await fetchText(ca.acmeUrl, readFileSync(listenerCert, 'utf8'))).includes('newOrder'),
      );
    },
    stop: async () => {
      await stopProc(ca.pebble);
      await stopProc(dns);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  if (opts.startPebble !== false) await ca.startPebble();
  return ca;
}

/** GET `url` over HTTPS trusting only the PEM `ca`; the body. */
export function fetchText(url: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

export interface Edge {
  dir: string;
  settings: EdgeSettings;
  adminPort: number;
  proc: Proc;
  stop: () => Promise<void>;
}

/** Caddy with buildCaddyConfig(settings) on loopback ports; storage in its own temp dir. */
export async function startEdge(
  ca: Ca,
  ports: { http: number; https: number },
  sites: EdgeSite[],
  storageRoot?: string,
  /** A test's change to the built config (e.g. renewal timing); the shipped config otherwise. */
  tweak: (config: Record<string, unknown>) => void = () => {},
  /** cpu: pin Caddy to this CPU from its start (bench:http), so Go sizes GOMAXPROCS to it. */
  o: { cpu?: number } = {},
): Promise<Edge> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-edge-'));
  const adminPort = await freePort();
  const settings: EdgeSettings = {
    sites,
    acme: { ca: ca.acmeUrl, email: 'ops@berth.test', caRootFiles: [ca.listenerCert] },
    storageRoot: storageRoot ?? path.join(dir, 'data'),
    admin: `127.0.0.1:${adminPort}`,
    httpPort: ports.http,
    httpsPort: ports.https,
    hstsMaxAge: 31536000,
  };
  const configFile = path.join(dir, 'caddy.json');
  const config = buildCaddyConfig(settings);
  tweak(config);
  // Debian's Caddy 2.6.2 (certmagic before 0.21.4) registers one ACME account per certificate it
  // obtains concurrently and may store one account's key beside another's URL; each later reload
  // then fails with "JWS verification error" for good. Production pins a Caddy with the fix
  // (2.9+); here the first host registers the account alone, then every host is loaded.
  const registerFirst = sites.length > 1 && ca.pebble !== undefined && !hasAccount(settings);
  const firstConfig = registerFirst
    ? buildCaddyConfig({ ...settings, sites: sites.slice(0, 1) })
    : config;
  if (registerFirst) tweak(firstConfig);
  writeFileSync(configFile, JSON.stringify(firstConfig, null, 2));
  const proc = start(
    'caddy',
    'caddy',
    ['run', '--config', configFile],
    {
      HOME: dir,
      XDG_DATA_HOME: path.join(dir, 'xdg-data'),
      XDG_CONFIG_HOME: path.join(dir, 'xdg-config'),
    },
    o.cpu,
  );
  await waitFor(`caddy's admin API answers (${proc.log().slice(-2000)})`, () =>
    portOpen(adminPort),
  );
  if (registerFirst) {
    await waitForCertificate(ports.https, sites[0]!.domain, ca);
    await postJson(adminPort, '/load', config);
  }
  return {
    dir,
    settings,
    adminPort,
    proc,
    stop: async () => {
      await stopProc(proc);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Whether Caddy's storage already holds an ACME account for this CA (a restart's second life). */
function hasAccount(settings: EdgeSettings): boolean {
  return existsSync(path.join(settings.storageRoot, 'acme', issuerKey(settings.acme.ca), 'users'));
}

function postJson(port: number, p: string, body: unknown): Promise<void> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: p,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () =>
          res.statusCode === 200
            ? resolve()
            : reject(new Error(`POST ${p}: ${res.statusCode} ${text}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  cert?: tls.PeerCertificate;
  protocol?: string | null;
}

/** GET https://host/path on the edge's loopback port, trusting only `root`, with SNI = host. */
export function httpsGet(
  port: number,
  host: string,
  root: string,
  p = '/',
  o: { hostHeader?: string; agent?: https.Agent; tls?: tls.SecureVersion } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: p,
        servername: host,
        ca: root,
        headers: { host: o.hostHeader ?? host },
        agent: o.agent ?? false,
        // SECLEVEL=0: OpenSSL 3 would refuse TLS 1.0/1.1 on the client side before asking the server.
        ...(o.tls ? { minVersion: o.tls, maxVersion: o.tls, ciphers: 'DEFAULT@SECLEVEL=0' } : {}),
      },
      (res) => {
        let body = '';
        const socket = res.socket as tls.TLSSocket;
        const cert = socket.getPeerCertificate?.();
        const protocol = socket.getProtocol?.();
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, cert, protocol }),
        );
      },
    );
    // Whether the request went out on a kept-alive connection, which the server may have closed
    // as idle at the same moment.
    const reused = watchReuse(req);
    req.on('error', (err: NodeJS.ErrnoException) =>
      reject(Object.assign(err, { reusedSocket: reused() })),
    );
    req.end();
  });
}

/**
 * What browsers, curl and Go's client do for an idempotent request (RFC 9112 9.3.1): when a
 * REUSED keep-alive connection was closed before any byte of the answer came back, send the
 * request once more on a new connection. Anything else is a failure.
 */
export async function httpsGetRetrying(
  port: number,
  host: string,
  root: string,
  p: string,
  agent: https.Agent,
): Promise<Answer & { retried: boolean }> {
  try {
    return { ...(await httpsGet(port, host, root, p, { agent })), retried: false };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { reusedSocket?: boolean };
    if (!e.reusedSocket || !(e.code === 'ECONNRESET' || /socket hang up/.test(e.message)))
      throw err;
    return { ...(await httpsGet(port, host, root, p, { agent })), retried: true };
  }
}

export function httpGet(port: number, host: string, p = '/'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: p, headers: { host }, agent: false }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      })
      .on('error', reject);
  });
}

/** Waits until `host` answers over HTTPS with a certificate that chains to pebble's root. */
export async function waitForCertificate(
  port: number,
  host: string,
  ca: Ca,
  ms = 30_000,
): Promise<string> {
  let root = '';
  await waitFor(
    `a certificate for ${host}`,
    async () => {
      root = await ca.root();
      return (await httpsGet(port, host, root)).status > 0;
    },
    ms,
  );
  return root;
}

export { stopProc };
