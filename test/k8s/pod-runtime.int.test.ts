// The chart's pod settings against the real image, on the real container engine (no cluster
// here): the rendered securityContext, /tmp emptyDir, memory limit and ConfigMap become
// `docker run` flags. The startup, liveness and readiness probes must then answer on their
// rendered paths, and a stop must finish inside terminationGracePeriodSeconds, before SIGKILL.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTestEnv, repoRoot, requirePart } from '../helpers/real-tools.js';
import { helmAvailable, one, render, type K8sObject } from './manifests.js';
import { freePort } from '../helpers/net.js';

const env = { ...process.env, ...loadTestEnv() };
const docker = (args: string[]) =>
  spawnSync('docker', args, { env, encoding: 'utf8', cwd: repoRoot });
const hasHelm = requirePart('helm', helmAvailable, 'run `bash scripts/test-env/k8s-tools.sh up`');
const hasEngine = requirePart(
  'container engine',
  () => docker(['info']).status === 0,
  'run `bash scripts/test-env/engine.sh up`',
);
const hasDockerfile = requirePart(
  'Dockerfile',
  () => existsSync(path.join(repoRoot, 'Dockerfile')),
  'the image is built from ./Dockerfile',
);

const IMAGE = 'localhost/berth-test/berth:k8s';
const NAME = `berth-k8s-pod-${process.pid}`;

type Probe = { httpGet: { path: string }; periodSeconds: number; failureThreshold: number };
type Container = {
  securityContext: {
    readOnlyRootFilesystem: boolean;
    allowPrivilegeEscalation: boolean;
    capabilities: { drop: string[] };
  };
  resources: { limits: { memory: string } };
  volumeMounts: { name: string; mountPath: string }[];
  startupProbe: Probe;
  livenessProbe: Probe;
  readinessProbe: Probe;
  lifecycle: { preStop: { sleep: { seconds: number } } };
};
type PodSpec = {
  securityContext: { runAsUser: number; runAsGroup: number; runAsNonRoot: boolean };
  terminationGracePeriodSeconds: number;
  containers: Container[];
  volumes: { name: string; emptyDir?: { sizeLimit?: string } }[];
};

/** The rendered pod as `docker run` flags: what the kubelet would enforce, as far as an engine can. */
function runFlags(pod: PodSpec, config: Record<string, string>): string[] {
  const c = pod.containers[0]!;
  const flags = ['--user', `${pod.securityContext.runAsUser}:${pod.securityContext.runAsGroup}`];
  if (c.securityContext.readOnlyRootFilesystem) flags.push('--read-only');
  if (!c.securityContext.allowPrivilegeEscalation)
    flags.push('--security-opt', 'no-new-privileges');
  for (const cap of c.securityContext.capabilities.drop) flags.push('--cap-drop', cap);
  for (const mount of c.volumeMounts) {
    const volume = pod.volumes.find((v) => v.name === mount.name);
    if (volume?.emptyDir)
      flags.push(
        '--tmpfs',
        `${mount.mountPath}:rw,size=${volume.emptyDir.sizeLimit?.replace(/i$/, '').toLowerCase() ?? '64m'}`,
      );
  }
  flags.push('--memory', c.resources.limits.memory.replace(/i$/, '').toLowerCase());
  for (const [key, value] of Object.entries(config)) flags.push('--env', `${key}=${value}`);
  return flags;
}

async function get(port: number, urlPath: string): Promise<number> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, {
      signal: AbortSignal.timeout(2_000),
    });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

describe.skipIf(!hasHelm || !hasEngine || !hasDockerfile)(
  'the chart pod settings on the real image',
  () => {
    let objects: K8sObject[] = [];
    let pod: PodSpec;
    let port = 0;
    let startedAt = 0;

    beforeAll(async () => {
      // BASE_PATH on, so the probe paths under test are the prefixed ones.
      objects = render({ valuesFiles: ['values-prod.yaml'], set: ['config.basePath=/api'] });
      pod = (one(objects, 'Rollout').spec as { template: { spec: PodSpec } }).template.spec;
      const build = docker([
        'build',
        '--quiet',
        '--pull=false',
        '--build-arg',
        'APP_VERSION=9.9.9-k8s',
        '-t',
        IMAGE,
        '.',
      ]);
      if (build.status !== 0) throw new Error(`docker build failed:\n${build.stderr}`);
      port = await freePort();
      const config = one(objects, 'ConfigMap').data as Record<string, string>;
      const run = docker([
        'run',
        '--detach',
        '--name',
        NAME,
        '-p',
        `127.0.0.1:${port}:${config.PORT}`,
        ...runFlags(pod, config),
        IMAGE,
      ]);
      if (run.status !== 0) throw new Error(`docker run failed:\n${run.stderr}`);
      startedAt = Date.now();
    }, 600_000);

    afterAll(() => {
      docker(['rm', '--force', NAME]);
    });

    it('passes the startup probe within its budget, then liveness and readiness', async () => {
      const c = pod.containers[0]!;
      const budgetMs = c.startupProbe.periodSeconds * c.startupProbe.failureThreshold * 1000;
      let status = 0;
      while (Date.now() - startedAt < budgetMs && status !== 200) {
        status = await get(port, c.startupProbe.httpGet.path);
        if (status !== 200) await new Promise((r) => setTimeout(r, 250));
      }
      expect(status, `${c.startupProbe.httpGet.path} within ${budgetMs} ms`).toBe(200);
      expect(c.startupProbe.httpGet.path).toBe('/api/health');
      expect(await get(port, c.livenessProbe.httpGet.path)).toBe(200);
      expect(await get(port, c.readinessProbe.httpGet.path)).toBe(200);
      // The image's own APP_VERSION survives: the ConfigMap does not override it.
      const health = (await (await fetch(`http://127.0.0.1:${port}/api/health`)).json()) as {
        version: string;
      };
      expect(health.version).toBe('9.9.9-k8s');
    });

    it('runs as the non-root user with a read-only root and a writable /tmp', () => {
      const id = execFileSync('docker', ['exec', NAME, 'id', '-u'], {
        env,
        encoding: 'utf8',
      }).trim();
      expect(id).toBe(String(pod.securityContext.runAsUser));
      expect(docker(['exec', NAME, 'sh', '-c', 'touch /app/x']).status).not.toBe(0);
      expect(docker(['exec', NAME, 'sh', '-c', 'touch /tmp/x && rm /tmp/x']).status).toBe(0);
      const capEff = execFileSync(
        'docker',
        ['exec', NAME, 'sh', '-c', 'grep CapEff /proc/self/status'],
        { env, encoding: 'utf8' },
      );
      expect(capEff.trim()).toMatch(/CapEff:\s+0+$/);
    });

    it('stops by itself inside the grace period after the preStop pause (no SIGKILL)', () => {
      const c = pod.containers[0]!;
      // The kubelet runs preStop, then sends SIGTERM and waits for the rest of the grace period.
      const afterPreStop = pod.terminationGracePeriodSeconds - c.lifecycle.preStop.sleep.seconds;
      const started = Date.now();
      const stop = docker(['stop', '--time', String(afterPreStop), NAME]);
      const tookS = (Date.now() - started) / 1000;
      expect(stop.status, stop.stderr).toBe(0);
      const exitCode = execFileSync(
        'docker',
        ['inspect', '--format', '{{.State.ExitCode}}', NAME],
        { env, encoding: 'utf8' },
      ).trim();
      expect(exitCode, 'exit code (137 would be SIGKILL)').toBe('0');
      expect(tookS).toBeLessThan(afterPreStop);
    });
  },
);
