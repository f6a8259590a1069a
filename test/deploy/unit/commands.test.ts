// The remote commands, line by line: what the VM will run for each step, without any host.
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import * as c from '../../../src/deploy/commands.js';
import { repoRoot } from '../../helpers/real-tools.js';

/** Runs the shell line through a real sh and returns argv as the remote side sees it. */
function roundTrip(args: string[]): string[] {
  const line = c.toShell({ argv: ['printf', '%s\\0', ...args] });
  const out = execFileSync('sh', ['-c', line]);
  return out.toString().split('\0').slice(0, -1);
}

describe('quoting', () => {
  it('survives a real shell for every awkward argument', () => {
    const nasty = ["it's", 'a b', '$HOME', '`id`', '"q"', '\\n', '', '-x', '*', ';rm -rf /', 'ünï', 'a\nb'];
    expect(roundTrip(nasty)).toEqual(nasty);
  });
  it('leaves plain words unquoted so logs stay readable', () => {
    expect(c.toShell({ argv: ['docker', 'pull', '-q', '127.0.0.1:5000/berth@sha256:abc'] })).toBe('docker pull -q 127.0.0.1:5000/berth@sha256:abc');
  });
});

describe('paths and files', () => {
  const p = c.envPaths('/opt/berth', 'staging');
  it('keeps each environment in its own directory', () => {
    expect(p).toMatchObject({ dir: '/opt/berth/staging', env: '/opt/berth/staging/.env', upstream: '/opt/berth/staging/proxy/upstream.conf', history: '/opt/berth/staging/history.log', lock: '/opt/berth/staging/.deploy-lock' });
  });
  it('sends file contents on stdin, never on the command line', () => {
    const cmd = c.writeFile(p.compose, 'SECRET=hunter2\n');
    expect(cmd.stdin).toBe('SECRET=hunter2\n');
    expect(c.toShell(cmd)).not.toContain('hunter2');
  });
  it('creates .env only when missing, readable by the deploy user only', () => {
    expect(c.writeFileIfMissing(p.env, 'X=1\n').argv[2]).toMatch(/\[ -e "\$1" \] && exit 0; umask 077/);
  });
  it('reads only the tuning keys of .env, never its secrets', () => {
    const script = c.readTuning(p.env).argv[2] ?? '';
    expect(script).toContain("grep -E '^(APP_MEMORY_LIMIT|APP_CPUS|LOG_MAX_SIZE|LOG_MAX_FILE)='");
    expect(c.parseTuning('APP_MEMORY_LIMIT="256m"\nAPP_CPUS=0.5\nDATABASE_URL=x\n')).toEqual({ APP_MEMORY_LIMIT: '256m', APP_CPUS: '0.5' });
  });
});

describe('file and lock scripts in a real shell', () => {
  const tmp = execFileSync('mktemp', ['-d']).toString().trim();
  const sh = (cmd: c.RemoteCommand): { code: number; out: string } => {
    try {
      return { code: 0, out: execFileSync('sh', ['-c', c.toShell(cmd)], { input: cmd.stdin ?? '' }).toString() };
    } catch (err) {
      const e = err as { status: number; stdout: Buffer };
      return { code: e.status, out: e.stdout.toString() };
    }
  };
  it('writeFileIfMissing never overwrites', () => {
    const f = path.join(tmp, '.env');
    expect(sh(c.writeFileIfMissing(f, 'A=1\n')).out).toContain('created');
    expect(sh(c.writeFileIfMissing(f, 'A=2\n')).out).toBe('');
    expect(readFileSync(f, 'utf8')).toBe('A=1\n');
  });
  it('the lock is taken once, names its holder to the next one, and is released only by its owner', () => {
    const lock = path.join(tmp, 'lock');
    expect(sh(c.takeLock(lock, 'who=a token=1')).code).toBe(0);
    expect(sh(c.takeLock(lock, 'who=b token=2'))).toEqual({ code: c.LOCK_HELD, out: 'who=a token=1\n' });
    sh(c.releaseLock(lock, 'who=b token=2'));
    expect(sh(c.takeLock(lock, 'who=b token=2')).code).toBe(c.LOCK_HELD);
    expect(sh(c.breakLock(lock)).out).toBe('who=a token=1\n');
    expect(sh(c.breakLock(lock))).toEqual({ code: 0, out: '' });
    expect(sh(c.takeLock(lock, 'who=b token=2')).code).toBe(0);
    sh(c.releaseLock(lock, 'who=b token=2'));
    expect(sh(c.takeLock(lock, 'who=c token=3')).code).toBe(0);
  });
  it('appendLine adds exactly one line, whatever it holds', () => {
    const f = path.join(tmp, 'history.log');
    sh(c.appendLine(f, 'a "b" $c `d`'));
    sh(c.appendLine(f, 'second'));
    expect(readFileSync(f, 'utf8')).toBe('a "b" $c `d`\nsecond\n');
  });
});

describe('the app container', () => {
  const spec: c.AppSpec = { env: 'production', name: 'berth-production-app-20260101000000-abcd', image: 'sha256:1234', source: 'reg/berth:v1', digest: 'sha256:ff', envFile: '/opt/berth/production/.env', tuning: { APP_MEMORY_LIMIT: '256m' } };
  const argv = c.createApp(spec).argv;
  const value = (flag: string) => argv.filter((_, i) => argv[i - 1] === flag);

  it('joins the compose project by label, under its own name, on the project network', () => {
    expect(value('--name')).toEqual([spec.name]);
    expect(value('--network')).toEqual(['berth-production_default']);
    expect(value('--label')).toEqual(expect.arrayContaining(['com.docker.compose.project=berth-production', 'com.docker.compose.service=app', 'berth.env=production', 'berth.digest=sha256:ff']));
    expect(argv.at(-1)).toBe('sha256:1234');
  });
  it('takes tuning from .env and falls back to the compose defaults', () => {
    expect(value('--memory')).toEqual(['256m']);
    expect(value('--cpus')).toEqual(['1.0']);
  });

  // docker-compose.yml is what an operator reads; the deploy must run the app the same way.
  it('carries every hardening setting of the app service in docker-compose.yml', () => {
    const compose = parse(readFileSync(path.join(repoRoot, 'docker-compose.yml'), 'utf8')) as { services: { app: Record<string, unknown> } };
    const app = compose.services.app;
    const interp = (v: unknown) => String(v).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1');
    const plain = c.createApp({ ...spec, tuning: {} }).argv;
    const val = (flag: string) => plain.filter((_, i) => plain[i - 1] === flag);
    expect(app.read_only).toBe(true);
    expect(plain).toContain('--read-only');
    expect(val('--tmpfs')).toEqual(app.tmpfs);
    expect(val('--cap-drop')).toEqual(app.cap_drop);
    expect(val('--security-opt')).toEqual(app.security_opt);
    expect(val('--memory')).toEqual([interp(app.mem_limit)]);
    expect(val('--cpus')).toEqual([interp(app.cpus)]);
    expect(val('--pids-limit')).toEqual([String(app.pids_limit)]);
    expect(val('--restart')).toEqual([app.restart]);
    expect(val('--stop-timeout')).toEqual([String(app.stop_grace_period).replace(/s$/, '')]);
    expect(val('--expose')).toEqual(app.expose);
    const health = app.healthcheck as { test: string[]; interval: string; timeout: string; retries: number; start_period: string };
    expect(val('--health-cmd')).toEqual([health.test.slice(1).join(' ')]);
    expect(val('--health-interval')).toEqual([health.interval]);
    expect(val('--health-retries')).toEqual([String(health.retries)]);
    expect(val('--env')).toEqual(Object.entries(app.environment as Record<string, string>).map(([k, v]) => `${k}=${v}`));
    const logging = app.logging as { driver: string; options: Record<string, string> };
    expect(val('--log-driver')).toEqual([logging.driver]);
    expect(val('--log-opt')).toEqual(Object.entries(logging.options).map(([k, v]) => `${k}=${interp(v)}`));
    const aliases = ((app.networks as Record<string, { aliases?: string[] } | null>).berth?.aliases ?? []).map((a) => a.replace('${BERTH_ENV:-production}', 'production'));
    expect(c.joinSharedNetwork('berth', 'production', spec.name).argv).toEqual(['docker', 'network', 'connect', '--alias', aliases[0], 'berth', spec.name]);
  });

  it('names its image id, not a tag, so a re-pushed tag cannot change what runs', () => {
    expect(argv).not.toContain('reg/berth:v1');
  });
});

describe('health check and proxy', () => {
  it('polls the container itself on its own port with the configured path and counts', () => {
    expect(c.healthCheck('n', { path: '/health', timeoutMs: 20000, intervalMs: 500, successes: 3 }).argv).toEqual(['docker', 'exec', 'n', 'node', '-e', c.HEALTH_SCRIPT, 'http://127.0.0.1:8000/health', '20000', '500', '3']);
  });
  it('the upstream file names exactly one container and parses back', () => {
    const text = c.upstreamConf('berth-staging-app-1', 'note');
    expect(text.match(/^server /gm)).toHaveLength(1);
    expect(c.parseUpstream(text)).toBe('berth-staging-app-1');
    expect(c.parseUpstream(readFileSync(path.join(repoRoot, 'proxy/upstream.conf'), 'utf8'))).toBe('app');
    expect(c.parseUpstream('# server x:8000;\n')).toBeUndefined();
    // By address when the engine's DNS does not answer; the name stays readable and parseable.
    const byAddress = c.upstreamConf('berth-staging-app-1', 'note', '10.89.3.7');
    expect(byAddress).toContain('server 10.89.3.7:8000;  # berth-staging-app-1\n');
    expect(c.parseUpstream(byAddress)).toBe('berth-staging-app-1');
  });
  it('tests the nginx config before the graceful reload, in the environment\'s own proxy', () => {
    const [, , script, , project, ...nginx] = c.reloadProxy('testing').argv;
    expect(project).toBe('berth-testing');
    expect(script).toMatch(/timeout 20 docker exec "\$id" "\$@" -t 2>&1 && docker exec "\$id" "\$@" -s reload/);
    expect(nginx).toEqual(['nginx', '-e', 'stderr', '-c', '/etc/nginx/berth/nginx.conf']);
  });
  it('runs compose in the environment directory with its project name and image overrides', () => {
    expect(c.startProxy('staging', '/opt/berth/staging', { PROXY_IMAGE: 'nginx:x' }).argv).toEqual([
      'sh', '-c', 'cd "$1" && shift && exec env "$@"', 'sh', '/opt/berth/staging', 'BERTH_ENV=staging', 'PROXY_IMAGE=nginx:x', 'docker', 'compose', '-p', 'berth-staging', 'up', '-d', '--no-deps', 'proxy',
    ]);
  });
  it('tags per environment, so pruning one never touches another', () => {
    expect(c.envTag('testing', 'sha256:0123456789abcdef')).toBe('berth-testing:0123456789ab');
    expect(c.stableRef('testing')).toBe('berth-testing:stable');
    expect(c.listEnvImages('testing').argv.at(-1)).toBe('berth-testing');
  });
});

describe('file modes on the VM, whatever the deploy user\'s umask', () => {
  const tmp = execFileSync('mktemp', ['-d']).toString().trim();
  const underUmask077 = (cmd: c.RemoteCommand) => execFileSync('sh', ['-c', `umask 077; ${c.toShell(cmd)}`], { input: cmd.stdin ?? '' });
  const mode = (f: string) => (statSync(f).mode & 0o777).toString(8);
  it('proxy/ and the files nginx (uid 101) reads are 755 / 644; .env stays 600', () => {
    const dir = path.join(tmp, 'staging');
    const proxy = path.join(dir, 'proxy');
    underUmask077(c.makeDirs(dir, proxy));
    underUmask077(c.writeFile(path.join(proxy, 'nginx.conf'), 'events {}\n'));
    underUmask077(c.writeFileIfMissing(path.join(dir, '.env'), 'A=1\n'));
    expect([mode(dir), mode(proxy), mode(path.join(proxy, 'nginx.conf')), mode(path.join(dir, '.env'))]).toEqual(['755', '755', '644', '600']);
  });
});
