// Every command the deploy runs on the VM, as data: an argv array (plus stdin when a file is
// written). Nothing here touches a host; ssh.ts turns a RemoteCommand into one shell line with
// `toShell`, the only place where quoting happens. Kamal's lib/kamal/commands/* is the model.
import { appAlias, envRepository, projectName, stableRef, type EnvName } from './environments.js';

export interface RemoteCommand {
  argv: string[];
  /** Sent on the command's stdin (file contents): never on the command line, where `ps` shows it. */
  stdin?: string;
}

/** POSIX single-quoting: safe for any byte string except NUL. */
export function shellQuote(arg: string): string {
  if (arg === '') return "''";
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function toShell(cmd: RemoteCommand): string {
  return cmd.argv.map(shellQuote).join(' ');
}

/** A small fixed script with its inputs as positional parameters ($1, $2, ...), never spliced in. */
const sh = (script: string, ...args: string[]): RemoteCommand => ({ argv: ['sh', '-c', script, 'sh', ...args] });

// ---------------------------------------------------------------------------------------------
// paths on the VM

export interface EnvPaths {
  dir: string;
  compose: string;
  env: string;
  proxyDir: string;
  nginxConf: string;
  upstream: string;
  lock: string;
  history: string;
  state: string;
}

export function envPaths(remoteDir: string, env: EnvName): EnvPaths {
  const dir = `${remoteDir === '/' ? '' : remoteDir}/${env}`;
  return {
    dir,
    compose: `${dir}/docker-compose.yml`,
    env: `${dir}/.env`,
    proxyDir: `${dir}/proxy`,
    nginxConf: `${dir}/proxy/nginx.conf`,
    upstream: `${dir}/proxy/upstream.conf`,
    lock: `${dir}/.deploy-lock`,
    history: `${dir}/history.log`,
    state: `${dir}/current`,
  };
}

// ---------------------------------------------------------------------------------------------
// files

/**
 * Directories the proxy reads are mounted into a container whose nginx runs as uid 101: the mode
 * is set explicitly, so a deploy user's strict umask (077) cannot lock nginx out.
 */
export const makeDirs = (...dirs: string[]): RemoteCommand => sh('mkdir -p "$@" && chmod 755 "$@"', ...dirs);

/**
 * Replaces a file atomically (write beside it, then rename): readers never see half a file.
 * World-readable (644) unless told otherwise, whatever the umask: nginx (uid 101) reads proxy/.
 */
export function writeFile(path: string, content: string, mode = '644'): RemoteCommand {
  return { ...sh('cat > "$1.tmp.$$" && chmod "$2" "$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"', path, mode), stdin: content };
}

/** Creates a file readable only by the deploy user, unless it exists (the user's .env is never overwritten). */
export function writeFileIfMissing(path: string, content: string): RemoteCommand {
  return { ...sh('[ -e "$1" ] && exit 0; umask 077; cat > "$1.tmp.$$" && mv "$1.tmp.$$" "$1" && echo created', path), stdin: content };
}

/** Prints the file, or nothing when it does not exist. */
export const readFile = (path: string): RemoteCommand => sh('[ ! -e "$1" ] || cat "$1"', path);

export const appendLine = (path: string, line: string): RemoteCommand => sh('printf "%s\\n" "$2" >> "$1"', path, line);

/** Only the tuning keys the app container needs, so the rest of .env (secrets) never leaves the VM. */
export const tuningKeys = ['APP_MEMORY_LIMIT', 'APP_CPUS', 'LOG_MAX_SIZE', 'LOG_MAX_FILE'] as const;
export const readTuning = (envFile: string): RemoteCommand => sh(`grep -E '^(${tuningKeys.join('|')})=' "$1" || true`, envFile);

// ---------------------------------------------------------------------------------------------
// lock: an atomic mkdir, as Kamal does; the holder file says who and since when

/** Exit 0 = taken; exit 75 (EX_TEMPFAIL) = held by someone else, whose holder line is printed. */
export const LOCK_HELD = 75;
export const takeLock = (lockDir: string, holder: string): RemoteCommand =>
  sh('if mkdir "$1" 2>/dev/null; then printf "%s\\n" "$2" > "$1/holder"; else cat "$1/holder" 2>/dev/null || echo "someone (no holder file yet)"; exit 75; fi', lockDir, holder);

/** Removes the lock only if it is still ours (same holder line, which carries a random token). */
export const releaseLock = (lockDir: string, holder: string): RemoteCommand =>
  sh('[ "$(cat "$1/holder" 2>/dev/null)" = "$2" ] && rm -rf "$1"; exit 0', lockDir, holder);

/** Breaks whatever lock there is; prints the holder it removed, or nothing. */
export const breakLock = (lockDir: string): RemoteCommand => sh('[ -d "$1" ] || exit 0; cat "$1/holder" 2>/dev/null || echo "unknown holder"; rm -rf "$1"', lockDir);

// ---------------------------------------------------------------------------------------------
// images

export const ensureNetwork = (name: string): RemoteCommand => sh('docker network inspect "$1" >/dev/null 2>&1 || docker network create "$1" >/dev/null', name);

export const pull = (ref: string): RemoteCommand => ({ argv: ['docker', 'pull', '-q', ref] });

export const IMAGE_FORMAT = '{{json .Id}}\t{{json .RepoDigests}}\t{{json .RepoTags}}';
export const inspectImage = (ref: string): RemoteCommand => ({ argv: ['docker', 'image', 'inspect', '--format', IMAGE_FORMAT, ref] });

export const tag = (source: string, target: string): RemoteCommand => ({ argv: ['docker', 'tag', source, target] });

/** Without -f: the engine refuses to remove an image a container (running or stopped) still uses. */
export const removeImages = (refs: string[]): RemoteCommand => ({ argv: ['docker', 'rmi', ...refs] });

/** This environment's own tags: `TAG ID` per line. */
export const listEnvImages = (env: EnvName): RemoteCommand => ({
  argv: ['docker', 'images', '--no-trunc', '--format', '{{.Repository}} {{.Tag}} {{.ID}}', envRepository(env)],
});

/** Every tag of one image id, to decide whether anyone else still names it. */
export const imageTags = (id: string): RemoteCommand => ({ argv: ['docker', 'image', 'inspect', '--format', '{{json .RepoTags}}', id] });

export const envTag = (env: EnvName, digest: string): string => `${envRepository(env)}:${digest.replace(/^sha256:/, '').slice(0, 12)}`;
export { stableRef };

// ---------------------------------------------------------------------------------------------
// the app container

export const LABEL_ENV = 'berth.env';
export const LABEL_DIGEST = 'berth.digest';
export const LABEL_IMAGE = 'berth.image';

/** Settings read from the environment's .env (see tuningKeys); defaults match docker-compose.yml. */
export interface Tuning {
  APP_MEMORY_LIMIT?: string;
  APP_CPUS?: string;
  LOG_MAX_SIZE?: string;
  LOG_MAX_FILE?: string;
}

export function parseTuning(text: string): Tuning {
  const tuning: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m?.[1] && (tuningKeys as readonly string[]).includes(m[1])) tuning[m[1]] = (m[2] ?? '').replace(/^(['"])(.*)\1$/, '$2').trim();
  }
  return tuning;
}

export interface AppSpec {
  env: EnvName;
  name: string;
  /** What to run: an image id or a reference the engine has locally. */
  image: string;
  /** What the user asked for (a tag or a digest reference), for labels and history. */
  source: string;
  digest: string;
  envFile: string;
  tuning: Tuning;
}

/** Network compose gives the project (v1 and v2 both name it `<project>_default`); the proxy lives there. */
export const projectNetwork = (env: EnvName): string => `${projectName(env)}_default`;

/** The port the app listens on inside its container, whatever .env says: the proxy and Prometheus use it. */
export const APP_LISTEN_PORT = 8000;

/**
 * `docker create` with the hardening of the `app` service in docker-compose.yml (a unit test
 * holds the two together). The container joins the compose project by label, so `docker compose
 * ps` lists it, but gets its own name: the proxy's upstream points at exactly this container.
 */
export function createApp(spec: AppSpec): RemoteCommand {
  const t = spec.tuning;
  return {
    argv: [
      'docker', 'create',
      '--name', spec.name,
      '--network', projectNetwork(spec.env),
      '--env-file', spec.envFile,
      '--env', `PORT=${APP_LISTEN_PORT}`,
      '--env', 'HOST=0.0.0.0',
      '--expose', String(APP_LISTEN_PORT),
      '--label', `com.docker.compose.project=${projectName(spec.env)}`,
      '--label', 'com.docker.compose.service=app',
      // compose v2 lists only containers marked as not one-off.
      '--label', 'com.docker.compose.oneoff=False',
      '--label', `${LABEL_ENV}=${spec.env}`,
      '--label', `${LABEL_DIGEST}=${spec.digest}`,
      '--label', `${LABEL_IMAGE}=${spec.source}`,
      '--restart', 'unless-stopped',
      '--health-cmd', 'node dist/service/healthcheck.js',
      '--health-interval', '10s',
      '--health-timeout', '5s',
      '--health-retries', '3',
      '--health-start-period', '15s',
      '--stop-timeout', '15',
      '--read-only',
      '--tmpfs', '/tmp:size=64m',
      '--cap-drop', 'ALL',
      '--security-opt', 'no-new-privileges:true',
      '--memory', t.APP_MEMORY_LIMIT || '512m',
      '--cpus', t.APP_CPUS || '1.0',
      '--pids-limit', '256',
      '--log-driver', 'json-file',
      '--log-opt', `max-size=${t.LOG_MAX_SIZE || '10m'}`,
      '--log-opt', `max-file=${t.LOG_MAX_FILE || '5'}`,
      spec.image,
    ],
  };
}

/** The shared `berth` network, where Prometheus finds the app as berth-<env>-app. */
export const joinSharedNetwork = (network: string, env: EnvName, name: string): RemoteCommand => ({
  argv: ['docker', 'network', 'connect', '--alias', appAlias(env), network, name],
});

export const startContainer = (name: string): RemoteCommand => ({ argv: ['docker', 'start', name] });

/** SIGTERM, then up to `seconds` for the service to drain before SIGKILL. */
export const stopContainer = (name: string, seconds = 15): RemoteCommand => ({ argv: ['docker', 'stop', '-t', String(seconds), name] });

export const removeContainers = (names: string[]): RemoteCommand => ({ argv: ['docker', 'rm', '-f', ...names] });

export const containerLogs = (name: string, lines: number): RemoteCommand => ({ argv: ['docker', 'logs', '--tail', String(lines), name] });

export const CONTAINER_FORMAT = `{{.State.Status}}\t{{.State.ExitCode}}\t{{.RestartCount}}\t{{.State.StartedAt}}\t{{.Image}}\t{{index .Config.Labels "${LABEL_DIGEST}"}}\t{{index .Config.Labels "${LABEL_IMAGE}"}}`;
/** Exit 1 with nothing on stdout when the container does not exist. */
export const inspectContainer = (name: string): RemoteCommand => ({ argv: ['docker', 'container', 'inspect', '--format', CONTAINER_FORMAT, name] });

/** All app containers of the environment, running or not: `NAME STATE DIGEST` per line (digest from the label). */
export const listAppContainers = (env: EnvName): RemoteCommand => ({
  argv: ['docker', 'ps', '-a', '--no-trunc', '--filter', `label=${LABEL_ENV}=${env}`, '--format', `{{.Names}} {{.State}} {{.Label "${LABEL_DIGEST}"}}`],
});

// ---------------------------------------------------------------------------------------------
// health, from inside the new container (it publishes no port; its own loopback always works)

/**
 * Polls URL until NEED answers in a row are 2xx, or TIMEOUT_MS passes. Prints one final line.
 * Exit 0 healthy, 1 not healthy in time. Runs under the image's own node.
 */
export const HEALTH_SCRIPT = [
  'const [url, timeoutMs, intervalMs, need] = process.argv.slice(1);',
  'const end = Date.now() + Number(timeoutMs);',
  "let ok = 0, last = 'no answer yet';",
  'const sleep = (ms) => new Promise((r) => setTimeout(r, ms));',
  'async function once() {',
  '  try {',
  '    const res = await fetch(url, { signal: AbortSignal.timeout(Math.max(500, Math.min(5000, end - Date.now()))) });',
  '    await res.arrayBuffer();',
  "    last = 'HTTP ' + res.status;",
  '    return res.ok;',
  '  } catch (err) {',
  "    last = String(err.cause?.code ?? err.cause?.message ?? err.message);",
  '    return false;',
  '  }',
  '}',
  '(async () => {',
  '  for (;;) {',
  '    ok = (await once()) ? ok + 1 : 0;',
  "    if (ok >= Number(need)) { console.log('healthy: ' + ok + ' answers in a row, last ' + last); process.exit(0); }",
  "    if (Date.now() >= end) { console.log('unhealthy: last answer ' + last); process.exit(1); }",
  '    await sleep(Number(intervalMs));',
  '  }',
  '})();',
].join('\n');

export interface HealthOptions {
  path: string;
  timeoutMs: number;
  intervalMs: number;
  successes: number;
}

export const healthCheck = (name: string, o: HealthOptions): RemoteCommand => ({
  argv: ['docker', 'exec', name, 'node', '-e', HEALTH_SCRIPT, `http://127.0.0.1:${APP_LISTEN_PORT}${o.path}`, String(Math.round(o.timeoutMs)), String(Math.round(o.intervalMs)), String(o.successes)],
});

/** One GET, printing `STATUS BODY` (body cut at 500 bytes): for `status`. */
export const PROBE_SCRIPT =
  "fetch(process.argv[1], { signal: AbortSignal.timeout(3000) }).then(async (r) => console.log(r.status + ' ' + (await r.text()).slice(0, 500))).catch((e) => { console.log('0 ' + (e.cause?.code ?? e.message)); process.exit(1); });";
export const probeOnce = (name: string, path: string): RemoteCommand => ({ argv: ['docker', 'exec', name, 'node', '-e', PROBE_SCRIPT, `http://127.0.0.1:${APP_LISTEN_PORT}${path}`] });

// ---------------------------------------------------------------------------------------------
// the proxy

const NGINX = ['nginx', '-e', 'stderr', '-c', '/etc/nginx/berth/nginx.conf'];

/**
 * The live container by name (nginx resolves it through the engine's DNS, also after a reboot),
 * or by address when that DNS does not answer; the name then follows in a comment.
 */
export function upstreamConf(container: string, note: string, address?: string): string {
  const server = address ? `server ${address}:${APP_LISTEN_PORT};  # ${container}` : `server ${container}:${APP_LISTEN_PORT};`;
  return `# Written by the deploy (${note}). The live app container; replaced on every switch.\n${server}\n`;
}

const UPSTREAM_SERVER = new RegExp(`^\\s*server\\s+([A-Za-z0-9_.-]+):${APP_LISTEN_PORT}\\s*;(?:\\s*#\\s*([A-Za-z0-9_.-]+))?`, 'm');

export function parseUpstream(text: string): string | undefined {
  const m = UPSTREAM_SERVER.exec(text);
  return m?.[2] ?? m?.[1];
}

/** The container's address on the project network (the one the proxy shares). */
export const containerAddress = (name: string, env: EnvName): RemoteCommand => ({
  argv: ['docker', 'container', 'inspect', '--format', addressFormat(env), name],
});

const addressFormat = (env: EnvName): string => `{{(index .NetworkSettings.Networks "${projectNetwork(env)}").IPAddress}}`;

/** Where the proxy listens inside its container (proxy/nginx.conf `listen`). */
export const PROXY_LISTEN_PORT = 8080;

/** One GET with a given X-Request-Id, from inside a container on the project network; prints the status. */
export const ROUTE_PROBE_SCRIPT =
  "const [url, id] = process.argv.slice(1); fetch(url, { headers: { 'x-request-id': id }, signal: AbortSignal.timeout(3000) }).then(async (r) => { await r.arrayBuffer(); console.log(r.status); }).catch(() => console.log(0));";

/**
 * Shell function `routed`: sends one request through the proxy (from container $app, which has
 * node) tagged with a unique X-Request-Id and prints the upstream address the proxy's access log
 * says served it. That log line is the proxy's own word on where traffic goes, per container,
 * which no /health body can say when old and new run the same version.
 */
const ROUTED_FN = [
  'routed() {',
  '  paddr=$(docker container inspect --format "$fmt" "$proxy") || return 1',
  '  docker exec "$app" node -e "$probe" "http://$paddr:$port$path" "$1" >/dev/null 2>&1',
  '  docker logs --since 15s "$proxy" 2>&1 | grep -F "\\"request_id\\":\\"$1\\"" | sed -n \'s/.*"upstream":"\\([^"]*\\)".*/\\1/p\' | tail -n 1',
  '}',
  'findproxy() { docker ps -q --filter "label=com.docker.compose.project=$project" --filter label=com.docker.compose.service=proxy | head -n 1; }',
].join('\n');

/** Exit codes of switchProxy / verifyRoute. */
export const SWITCH = { ok: 0, notRunning: 3, badConfig: 4, reloadFailed: 5, notSwitched: 6 } as const;

export interface SwitchSpec {
  env: EnvName;
  upstreamFile: string;
  /** The new upstream.conf (sent on stdin). */
  conf: string;
  /** The container that must get the traffic (the probe runs in it). */
  app: string;
  path: string;
  /** Makes the probe's request ids unique to this run. */
  token: string;
  tries: number;
}

/**
 * The whole switch as ONE remote script, so a lost SSH connection cannot split it (it ignores
 * SIGHUP/SIGPIPE and finishes on its own): write the new upstream beside the old, move it in,
 * `nginx -t`, graceful reload, then ask through the proxy until 3 requests in a row are served
 * by the new container. Any failure puts the previous upstream back (only if there was one) and
 * reloads, so the old container keeps serving. With no proxy running, the new file stays in
 * place and the script exits 3: the flow starts the proxy and then runs verifyRoute.
 */
export function switchProxy(s: SwitchSpec): RemoteCommand {
  const script = [
    "trap '' HUP PIPE",
    'project=$1 file=$2 app=$3 fmt=$4 path=$5 token=$6 tries=$7 probe=$8 port=$9; shift 9',
    ROUTED_FN,
    'cat > "$file.next" && chmod 644 "$file.next" || exit 1',
    'if [ -s "$file" ]; then cp -p "$file" "$file.prev" || exit 1; else rm -f "$file.prev"; fi',
    'mv -f "$file.next" "$file" || exit 1',
    'proxy=$(findproxy); [ -n "$proxy" ] || exit 3',
    'restore() { if [ -s "$file.prev" ]; then mv -f "$file.prev" "$file" && docker exec "$proxy" "$@" -s reload >/dev/null 2>&1; fi; }',
    'out=$(timeout 20 docker exec "$proxy" "$@" -t 2>&1) || { restore "$@"; printf "%s\\n" "$out" | tail -n 1; exit 4; }',
    'out=$(docker exec "$proxy" "$@" -s reload 2>&1) || { restore "$@"; printf "%s\\n" "$out" | tail -n 1; exit 5; }',
    `want=$(docker container inspect --format "$fmt" "$app"):${APP_LISTEN_PORT}`,
    'i=0 ok=0 got=',
    'while [ $i -lt "$tries" ]; do',
    '  i=$((i + 1)); got=$(routed "berth-switch-$token-$i")',
    '  if [ "$got" = "$want" ]; then ok=$((ok + 1)); if [ $ok -ge 3 ]; then rm -f "$file.prev"; echo "switched to $got"; exit 0; fi',
    '  else ok=0; sleep 0.5; fi',
    'done',
    'restore "$@"',
    'echo "after the reload the proxy still sent requests to ${got:-no upstream it logged}, not to $want"',
    'exit 6',
  ].join('\n');
  return {
    argv: ['sh', '-c', script, 'sh', projectName(s.env), s.upstreamFile, s.app, addressFormat(s.env), s.path, s.token, String(s.tries), ROUTE_PROBE_SCRIPT, String(PROXY_LISTEN_PORT), ...NGINX],
    stdin: s.conf,
  };
}

/**
 * Asks through the running proxy which upstream address serves (probe sent from container `app`).
 * Prints that address (empty when the proxy logged none); exit 3 when no proxy runs.
 */
export function routedAddress(env: EnvName, app: string, path: string, requestId: string): RemoteCommand {
  const script = [
    'project=$1 app=$2 fmt=$3 path=$4 id=$5 probe=$6 port=$7',
    ROUTED_FN,
    'proxy=$(findproxy); [ -n "$proxy" ] || exit 3',
    'routed "$id"',
  ].join('\n');
  return sh(script, projectName(env), app, addressFormat(env), path, requestId, ROUTE_PROBE_SCRIPT, String(PROXY_LISTEN_PORT));
}

/** Exit 3 when the environment's proxy is not running (the flow then starts it with compose). */
export const PROXY_NOT_RUNNING = 3;
export const reloadProxy = (env: EnvName): RemoteCommand =>
  sh(
    // The config test resolves upstream names: bounded, so a DNS that does not answer costs 20 s, not minutes.
    'id=$(docker ps -q --filter "label=com.docker.compose.project=$1" --filter label=com.docker.compose.service=proxy | head -n 1); [ -n "$id" ] || exit 3; shift; timeout 20 docker exec "$id" "$@" -t 2>&1 && docker exec "$id" "$@" -s reload',
    projectName(env),
    ...NGINX,
  );

export const proxyRunning = (env: EnvName): RemoteCommand => ({
  argv: ['docker', 'ps', '-q', '--filter', `label=com.docker.compose.project=${projectName(env)}`, '--filter', 'label=com.docker.compose.service=proxy'],
});

/**
 * `docker compose` in the environment's directory, so it reads that .env for ${...} values.
 * `vars` (non-secret: image names) override .env for this one run.
 */
export function compose(env: EnvName, dir: string, args: string[], vars: Record<string, string> = {}): RemoteCommand {
  const assignments = Object.entries({ BERTH_ENV: env, ...vars }).map(([k, v]) => `${k}=${v}`);
  return sh('cd "$1" && shift && exec env "$@"', dir, ...assignments, 'docker', 'compose', '-p', projectName(env), ...args);
}

/** Creates the proxy container and the project network without starting anything. */
export const createProxy = (env: EnvName, dir: string, vars: Record<string, string>): RemoteCommand => compose(env, dir, ['up', '--no-start', '--no-deps', 'proxy'], vars);
export const startProxy = (env: EnvName, dir: string, vars: Record<string, string>): RemoteCommand => compose(env, dir, ['up', '-d', '--no-deps', 'proxy'], vars);
