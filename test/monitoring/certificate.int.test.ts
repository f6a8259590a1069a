// The certificate-expiry alert with real parts: blackbox_exporter (Debian's) probes HTTPS servers
// whose certificates come from a test CA made here with openssl and live 10 days and 2 days; the
// shipped rules in a real Prometheus fire BerthCertificateExpiring, warning (< 14 days) for both,
// critical (< 3 days) for the 2-day one only. The exporter trusts the test CA through
// SSL_CERT_FILE, so blackbox.yml stays as shipped; the probe files are the deploy's for an
// environment with APP_DOMAIN, addresses mapped to loopback.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeTargetsFile } from '../../src/deploy/commands/targets.js';
import { repoRoot, requireTool } from '../helpers/real-tools.js';
import { freePort, startProcess, stopProcess, waitFor, type Proc } from './lib/processes.js';
import {
  shippedFlags,
  startPrometheus,
  untilReady,
  writeLocalPrometheusConfig,
  writeLocalRules,
  writeLocalTargets,
} from './lib/stack.js';

const hint =
  'run `bash scripts/test-env/monitoring.sh up` (Debian: prometheus, prometheus-blackbox-exporter)';
const ok = [
  requireTool('prometheus', hint),
  requireTool('prometheus-blackbox-exporter', hint),
  requireTool('openssl', 'apt-get install openssl'),
].every(Boolean);

const LOCAL = { scrape: '1s', evaluation: '1s', for: '2s' };
const SITES = [
  { env: 'staging', domain: 'staging.berth.test', days: 10 },
  { env: 'testing', domain: 'testing.berth.test', days: 2 },
] as const;

interface Alert {
  labels: Record<string, string>;
  state: string;
  activeAt: string;
}

describe.skipIf(!ok)('certificate expiry (real blackbox_exporter, Prometheus, test CA)', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'berth-monitoring-cert-'));
  const ports = { prometheus: 0, blackbox: 0, staging: 0, testing: 0 };
  const procs: Proc[] = [];
  const servers: https.Server[] = [];
  const openssl = (...args: string[]) =>
    execFileSync('openssl', args, { cwd: work, stdio: 'pipe' });

  /** A leaf for localhost signed by the test CA, valid `days` from now. */
  function leaf(name: string, days: number): { key: Buffer; cert: Buffer } {
    openssl(
      'req',
      '-new',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.csr`,
    );
    writeFileSync(path.join(work, `${name}.ext`), 'subjectAltName=DNS:localhost\n');
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      String(days),
      '-extfile',
      `${name}.ext`,
      '-out',
      `${name}.crt`,
    );
    return {
      key: readFileSync(path.join(work, `${name}.key`)),
      cert: readFileSync(path.join(work, `${name}.crt`)),
    };
  }

  beforeAll(async () => {
    for (const key of Object.keys(ports) as (keyof typeof ports)[]) ports[key] = await freePort();
    openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '30',
      '-subj',
      '/CN=Berth test CA',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
    );
    for (const site of SITES) {
      const server = https.createServer(leaf(site.env, site.days), (_req, res) =>
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok'),
      );
      await new Promise<void>((resolve) => server.listen(ports[site.env], '127.0.0.1', resolve));
      servers.push(server);
    }

    const probeFile = path.join(work, 'probe.yml');
    const groups = SITES.map(
      (s) =>
        probeTargetsFile(s.env, { basePath: '', port: 8000, bind: '0.0.0.0', domain: s.domain }) ??
        '',
    ).join('');
    writeLocalTargets(
      probeFile,
      groups,
      Object.fromEntries(
        SITES.map((s) => [
          `https://${s.domain}/health`,
          `https://localhost:${ports[s.env]}/health`,
        ]),
      ),
    );
    const prometheusYml = path.join(work, 'prometheus.yml');
    writeLocalPrometheusConfig(prometheusYml, {
      scrapeInterval: LOCAL.scrape,
      evaluationInterval: LOCAL.evaluation,
      ruleFiles: writeLocalRules(path.join(work, 'rules'), LOCAL.for),
      alertmanagers: [],
      jobs: {
        'blackbox-http': { file: probeFile, probeVia: `127.0.0.1:${ports.blackbox}` },
        prometheus: null,
        alertmanager: null,
        'node-exporter': null,
        cadvisor: null,
        'berth-app': null,
        postgres: null,
        'blackbox-exporter': null,
      },
    });
    const blackbox = startProcess(
      'blackbox-exporter',
      'prometheus-blackbox-exporter',
      [
        ...shippedFlags('blackbox-exporter', ['--config.file']),
        `--config.file=${path.join(repoRoot, 'blackbox', 'blackbox.yml')}`,
        `--web.listen-address=127.0.0.1:${ports.blackbox}`,
      ],
      {
        env: { PATH: process.env.PATH, SSL_CERT_FILE: path.join(work, 'ca.crt') },
        logFile: path.join(work, 'blackbox.log'),
      },
    );
    const prometheus = startPrometheus({
      work,
      port: ports.prometheus,
      configFile: prometheusYml,
      logName: 'prometheus.log',
      env: { GRAFANA_URL: 'http://grafana.cert.test:8950' },
    });
    procs.push(blackbox, prometheus);
    await untilReady(blackbox, `http://127.0.0.1:${ports.blackbox}/-/healthy`);
    await untilReady(prometheus, `http://127.0.0.1:${ports.prometheus}/-/ready`);
  });

  afterAll(async () => {
    for (const p of procs) await stopProcess(p);
    for (const s of servers) s.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('fires the warning for 10 days left and warning plus critical for 2 days left', async () => {
    const started = Date.now();
    const firing = () =>
      fetch(`http://127.0.0.1:${ports.prometheus}/api/v1/alerts`)
        .then((r) => r.json() as Promise<{ data: { alerts: Alert[] } }>)
        .then((b) =>
          b.data.alerts
            .filter(
              (a) => a.labels.alertname === 'BerthCertificateExpiring' && a.state === 'firing',
            )
            .map((a) => `${a.labels.env} ${a.labels.severity}`)
            .sort(),
        );
    const want = ['staging warning', 'testing critical', 'testing warning'];
    const got = await waitFor(
      'the three certificate alerts',
      async () => ((await firing()).length === want.length ? firing() : undefined),
      30_000,
      200,
    );
    expect(got).toEqual(want);
    console.log(
      `certificate: Prometheus started -> all three firing ${((Date.now() - started) / 1000).toFixed(1)} s (scrape 1 s, for 2 s)`,
    );
    // The probe itself succeeded: the certificate is valid, only close to its end.
    const q = await fetch(
      `http://127.0.0.1:${ports.prometheus}/api/v1/query?query=${encodeURIComponent('probe_success{job="blackbox-http"}')}`,
    ).then((r) => r.json() as Promise<{ data: { result: { value: [number, string] }[] } }>);
    expect(q.data.result.map((r) => r.value[1])).toEqual(['1', '1']);
  });
});
