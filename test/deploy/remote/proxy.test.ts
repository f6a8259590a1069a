// remote/proxy.sh as the VM runs it (switch and reload): a real sh, with a stand-in `docker` on PATH that plays an
// nginx proxy whose graceful reload may or may not take the new upstream (the master keeps the
// old config when it fails to re-resolve). The script must confirm through the proxy that the new
// container answers, and otherwise put the old upstream back: a signal sent is not a switch made.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toShell, type RemoteCommand } from '../../../src/deploy/commands/command.js';
import * as c from '../../../src/deploy/commands/proxy.js';
import { healthCheck } from '../../../src/deploy/commands/probe.js';
import { program } from '../../../src/deploy/remote/programs.js';
import { EXIT } from '../../../src/deploy/limits.js';

// docker stand-in. State in $STUB: proxy-up (running), proxy-created (exists, not running), ip-<name>,
// loaded (what nginx routes by), proxy.log, reload-takes (reload re-reads upstream.conf),
// inspect-fails (docker inspect of a container's address fails),
// bad-config (nginx -t fails). A probe (`exec -i` into the proxy or a one-off `run -i`) leaves its
// arguments in probe-args and its stdin in probe-stdin; a request through the proxy, routed-args.
const DOCKER = `#!/bin/sh
S="$STUB"
case "$1" in
  ps)
    echo "$*" >> "$S/ps-calls"
    case "$*" in *" -aq "*) [ -e "$S/proxy-created" ] && echo proxy1 ;; esac
    [ -e "$S/proxy-up" ] && echo proxy1; exit 0 ;;
  container)
    [ "$4" = '{{.Image}}' ] && { echo sha256:proxyimage; exit 0; }
    [ -e "$S/inspect-fails" ] && exit 1
    shift 4; cat "$S/ip-$1" 2>/dev/null || exit 1; exit 0 ;;
  logs) cat "$S/proxy.log" 2>/dev/null; exit 0 ;;
  run) echo "$*" > "$S/probe-args"; cat > "$S/probe-stdin"; echo 'healthy: from a one-off'; exit 0 ;;
  exec)
    shift
    if [ "$1" = proxy1 ] && [ "$2" != -i ]; then
      # A command inside the proxy runs here, with nginx and wget played by the stand-ins in inside/;
      # exec-dies: the proxy is killed under it.
      [ -e "$S/exec-dies" ] && [ "$2" = sh ] && exit 137
      shift
      PATH="$S/inside:$PATH" exec "$@"
    fi
    # A container that is no more (what docker says and its exit code).
    [ "$1" = gone1 ] && { echo 'Error response from daemon: No such container: gone1' >&2; exit 1; }
    # exec -i proxy1 sh -s ACTION ARGS: the HTTP probe, on stdin, inside the proxy.
    [ "$1 $2 $3 $4" = "-i proxy1 sh -s" ] || { echo "docker stub: unexpected exec $*" >&2; exit 99; }
    echo "$*" > "$S/probe-args"; cat > "$S/probe-stdin"
    echo 'unhealthy: last answer HTTP 500'; exit 1 ;;
esac
echo "docker stub: unexpected $*" >&2; exit 99
`;

// Inside the proxy: nginx (its config test and graceful reload) and busybox's wget (a request
// through the proxy, logged with the upstream nginx used).
const NGINX = `#!/bin/sh
S="$STUB"
case "$*" in
  *" -t") [ -e "$S/bad-config" ] && { echo 'nginx: [emerg] host not found in upstream'; exit 1; }; exit 0 ;;
  *"-s reload")
    # reload-late: the new workers take over only after two more requests (see wget).
    if [ -e "$S/reload-late" ]; then : > "$S/pending"; elif [ -e "$S/reload-takes" ]; then cp "$S/upstream.conf" "$S/loaded"; fi
    exit 0 ;;
esac
echo "nginx stub: unexpected $*" >&2; exit 99
`;
const WGET = `#!/bin/sh
S="$STUB"
echo "$*" >> "$S/routed-args"
id=$(printf '%s\\n' "$*" | sed -n 's/.*X-Request-Id: \\([^ ]*\\).*/\\1/p')
name=$(sed -n 's/^server \\([A-Za-z0-9_.-]*\\):8000.*/\\1/p' "$S/loaded")
addr="$(cat "$S/ip-$name"):8000"
printf '{"request_id":"%s","status":200,"upstream":"%s"}\\n' "$id" "$addr" >> "$S/proxy.log"
# -S: the answer's headers on stderr, as wget prints them (nginx.conf's X-Berth-Upstream among them).
case " $* " in *" -S "*) printf '  HTTP/1.1 200 OK\\r\\n  x-berth-upstream: %s\\r\\n' "$addr" >&2 ;; esac
if [ -e "$S/pending" ]; then
  echo x >> "$S/pending"
  [ "$(wc -l < "$S/pending")" -ge 2 ] && { cp "$S/upstream.conf" "$S/loaded"; rm "$S/pending"; }
fi
exit 0
`;

let stub: string;
const file = () => path.join(stub, 'upstream.conf');
const oldConf = c.upstreamConf('berth-staging-app-old', 'before');
const newConf = c.upstreamConf('berth-staging-app-new', 'now');

function runOnStub(cmd: RemoteCommand) {
  return spawnSync('sh', ['-c', toShell(cmd)], {
    input: cmd.stdin,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${path.join(stub, 'bin')}:${process.env.PATH}`, STUB: stub },
  });
}

function runSwitch(conf = newConf, tries = 4, address?: string, proxy?: string) {
  return runOnStub(
    c.switchProxy({
      env: 'staging',
      upstreamFile: file(),
      conf,
      app: 'berth-staging-app-new',
      path: '/health',
      token: 't1',
      tries,
      ...(address ? { address } : {}),
      ...(proxy ? { proxy } : {}),
    }),
  );
}

beforeEach(() => {
  stub = mkdtempSync(path.join(os.tmpdir(), 'berth-switch-'));
  execFileSync('mkdir', ['-p', path.join(stub, 'bin')]);
  execFileSync('mkdir', ['-p', path.join(stub, 'inside')]);
  for (const [dir, name, text] of [
    ['bin', 'docker', DOCKER],
    ['inside', 'nginx', NGINX],
    ['inside', 'wget', WGET],
  ] as const) {
    writeFileSync(path.join(stub, dir, name), text);
    chmodSync(path.join(stub, dir, name), 0o755);
  }
  writeFileSync(path.join(stub, 'proxy-up'), '');
  writeFileSync(path.join(stub, 'ip-berth-staging-app-old'), '10.0.0.2\n');
  writeFileSync(path.join(stub, 'ip-berth-staging-app-new'), '10.0.0.3\n');
  writeFileSync(path.join(stub, 'ip-proxy1'), '10.0.0.9\n');
  writeFileSync(file(), oldConf);
  writeFileSync(path.join(stub, 'loaded'), oldConf);
});
afterEach(() => rmSync(stub, { recursive: true, force: true }));

describe('the switch script in a real shell', () => {
  it('takes the address the deploy already read, without asking docker for it', () => {
    writeFileSync(path.join(stub, 'reload-takes'), '');
    // docker inspect of the new container would fail now: only the passed address can be used.
    writeFileSync(path.join(stub, 'inspect-fails'), '');
    const r = runSwitch(newConf, 4, '10.0.0.3');
    expect(r.status, r.stderr).toBe(EXIT.proxy.ok);
    expect(r.stdout).toContain('switched to 10.0.0.3:8000');
  });

  it('takes the proxy prepare found, without asking docker which one runs', () => {
    writeFileSync(path.join(stub, 'reload-takes'), '');
    const r = runSwitch(newConf, 4, '10.0.0.3', 'proxy1');
    expect(r.status, r.stderr).toBe(EXIT.proxy.ok);
    expect(existsSync(path.join(stub, 'ps-calls'))).toBe(false);
    expect(readFileSync(path.join(stub, 'loaded'), 'utf8')).toBe(newConf);
  });

  it('a proxy prepare found that has gone since: switches through the one running now', () => {
    writeFileSync(path.join(stub, 'reload-takes'), '');
    const r = runSwitch(newConf, 4, '10.0.0.3', 'gone1');
    expect(r.status, r.stderr).toBe(EXIT.proxy.ok);
    expect(readFileSync(path.join(stub, 'ps-calls'), 'utf8').trim().split('\n')).toHaveLength(1);
    expect(readFileSync(path.join(stub, 'loaded'), 'utf8')).toBe(newConf);
  });

  it('a proxy prepare found that has gone, and none runs: exit 3, the new file in place for the deploy to start one on', () => {
    rmSync(path.join(stub, 'proxy-up'));
    const r = runSwitch(newConf, 4, '10.0.0.3', 'gone1');
    expect(r.status).toBe(EXIT.proxy.notRunning);
    expect(readFileSync(file(), 'utf8')).toBe(newConf);
  });

  it('succeeds only once requests through the proxy reach the new container', () => {
    writeFileSync(path.join(stub, 'reload-takes'), '');
    const r = runSwitch();
    expect(r.status, r.stderr).toBe(EXIT.proxy.ok);
    expect(r.stdout).toContain('switched to 10.0.0.3:8000');
    // Asked from inside the proxy, to its own port, each request tagged: three in a row, all
    // answered by the new container.
    const asked = readFileSync(path.join(stub, 'routed-args'), 'utf8').trim().split('\n');
    expect(asked).toEqual(
      [1, 2, 3].map(
        (i) =>
          `-S -q -O /dev/null --header X-Request-Id: berth-switch-t1-${i} http://127.0.0.1:8081/health`,
      ),
    );
    expect(readFileSync(file(), 'utf8')).toBe(newConf);
    expect(existsSync(`${file()}.prev`)).toBe(false);
  });

  it('a reload that takes over a moment later: requests that still met the old container do not count', () => {
    writeFileSync(path.join(stub, 'reload-late'), '');
    const r = runSwitch(newConf, 5);
    expect(r.status, r.stderr).toBe(EXIT.proxy.ok);
    // Two requests still on the old container, then three in a row on the new one.
    const served = readFileSync(path.join(stub, 'proxy.log'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { upstream: string }).upstream);
    expect(served).toEqual([
      '10.0.0.2:8000',
      '10.0.0.2:8000',
      '10.0.0.3:8000',
      '10.0.0.3:8000',
      '10.0.0.3:8000',
    ]);
    expect(readFileSync(file(), 'utf8')).toBe(newConf);
  });

  it('does not switch when fewer than three requests in a row met the new container', () => {
    writeFileSync(path.join(stub, 'reload-late'), '');
    const r = runSwitch(newConf, 4);
    expect(r.status).toBe(EXIT.proxy.notSwitched);
    expect(readFileSync(file(), 'utf8')).toBe(oldConf);
  });

  it('a reload that leaves nginx on the old upstream fails and puts the old upstream.conf back', () => {
    const r = runSwitch();
    expect(r.status).toBe(EXIT.proxy.notSwitched);
    expect(r.stdout).toContain('still sent requests to 10.0.0.2:8000, not to 10.0.0.3:8000');
    expect(readFileSync(file(), 'utf8')).toBe(oldConf);
    expect(readFileSync(path.join(stub, 'loaded'), 'utf8')).toBe(oldConf);
  });

  it('an exec that dies under it is said as such (not as a config error); the old file is back', () => {
    writeFileSync(path.join(stub, 'exec-dies'), '');
    const r = runSwitch();
    expect(r.status).toBe(EXIT.proxy.notSwitched);
    expect(r.stdout.trim()).toBe('docker exec in the proxy failed (exit 137):');
    expect(readFileSync(file(), 'utf8')).toBe(oldConf);
  });

  it('a config that fails nginx -t is never reloaded; the old file is back', () => {
    writeFileSync(path.join(stub, 'bad-config'), '');
    writeFileSync(path.join(stub, 'reload-takes'), '');
    const r = runSwitch();
    expect(r.status).toBe(EXIT.proxy.badConfig);
    expect(r.stdout).toContain('host not found in upstream');
    expect(readFileSync(file(), 'utf8')).toBe(oldConf);
  });

  it('never restores an empty upstream (a first deploy has nothing to go back to)', () => {
    writeFileSync(file(), '');
    const r = runSwitch();
    expect(r.status).toBe(EXIT.proxy.notSwitched);
    expect(readFileSync(file(), 'utf8')).toBe(newConf);
  });

  it('with no proxy running, leaves the new file in place and says so (exit 3)', () => {
    rmSync(path.join(stub, 'proxy-up'));
    expect(runSwitch().status).toBe(EXIT.proxy.notRunning);
    expect(readFileSync(file(), 'utf8')).toBe(newConf);
  });
});

describe('the reload in a real shell', () => {
  it('tests the config before the graceful reload, and never reloads one that fails', () => {
    writeFileSync(path.join(stub, 'reload-takes'), '');
    writeFileSync(file(), newConf);
    expect(runOnStub(c.reloadProxy('staging')).status).toBe(0);
    expect(readFileSync(path.join(stub, 'loaded'), 'utf8')).toBe(newConf);
    writeFileSync(path.join(stub, 'bad-config'), '');
    writeFileSync(file(), oldConf);
    const r = runOnStub(c.reloadProxy('staging'));
    expect(r.status).not.toBe(0);
    expect(r.stdout).toContain('host not found in upstream');
    expect(readFileSync(path.join(stub, 'loaded'), 'utf8')).toBe(newConf);
  });
  it('exits 3 when no proxy runs', () => {
    rmSync(path.join(stub, 'proxy-up'));
    expect(runOnStub(c.reloadProxy('staging')).status).toBe(EXIT.proxy.notRunning);
  });
});

describe('the probe of an app container in a real shell', () => {
  const health = () =>
    runOnStub(
      healthCheck('staging', 'berth-staging-app-new', {
        path: '/health',
        timeoutS: 5,
        intervalS: 0.5,
        successes: 2,
      }),
    );
  const args = () => readFileSync(path.join(stub, 'probe-args'), 'utf8').trim();

  it('runs in the running proxy, passing its answer and exit code through', () => {
    const r = health();
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('unhealthy: last answer HTTP 500\n');
    expect(args()).toBe(
      '-i proxy1 sh -s health http://berth-staging-app-new:8000/health 5 0.5 2 0.1',
    );
    expect(readFileSync(path.join(stub, 'probe-stdin'), 'utf8')).toBe(program('http-probe.sh'));
  });

  it("before the proxy runs: a one-off, locked-down container of the proxy's image on the project network", () => {
    rmSync(path.join(stub, 'proxy-up'));
    writeFileSync(path.join(stub, 'proxy-created'), '');
    const r = health();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('healthy: from a one-off\n');
    const argv = args().split(' ');
    expect(argv.slice(0, 3)).toEqual(['run', '-i', '--rm']);
    expect(args()).toContain(' --network berth-staging_default ');
    for (const flag of [
      '--read-only',
      '--user 65534:65534',
      '--cap-drop ALL',
      'no-new-privileges=true',
    ])
      expect(args()).toContain(flag);
    expect(args()).toMatch(
      / --entrypoint sh sha256:proxyimage -s health http:\/\/berth-staging-app-new:8000\/health 5 0\.5 2 0\.1$/,
    );
    expect(readFileSync(path.join(stub, 'probe-stdin'), 'utf8')).toBe(program('http-probe.sh'));
  });

  it('exits 3 with one line when the environment has no proxy container at all', () => {
    rmSync(path.join(stub, 'proxy-up'));
    const r = health();
    expect(r.status).toBe(EXIT.proxy.notRunning);
    expect(r.stderr).toContain('no proxy container in berth-staging');
  });
});
