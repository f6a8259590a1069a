// A throwaway Debian 12 root for running init_setup.sh for real: unpacked from the tarball that
// scripts/test-env/cicd.sh caches, with recording shims for what needs a network, systemd or
// the kernel (apt-get, systemctl, ufw, docker, curl), a sudo user `admin` with an SSH key, and
// the repository files init_setup.sh reads. Runs chrooted in its own mount and network
// namespaces, so it can reach nothing and leaves nothing mounted.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../helpers/real-tools.js';

const shimDir = path.join(repoRoot, 'test', 'cicd', 'fixtures', 'shims');
export const CHECKOUT = '/home/admin/berth';
const PATH_IN_ROOT = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class SetupRoot {
  private constructor(readonly dir: string) {}

  static create(tarball: string, workDir = '/var/lib/berth-test/cicd-runs'): SetupRoot {
    mkdirSync(workDir, { recursive: true });
    const root = new SetupRoot(mkdtempSync(path.join(workDir, 'root-')));
    execFileSync('tar', ['-C', root.dir, '-xf', tarball]);
    root.installShims();
    root.chroot([
      'sh',
      '-c',
      'useradd --create-home --shell /bin/bash --groups sudo admin && install -d -m 0755 /run/sshd',
    ]);
    root.write(
      '/home/admin/.ssh/authorized_keys',
      'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAdminKeyForTheTestOnly admin@laptop\n',
    );
    root.chroot(['chown', '-R', 'admin:admin', '/home/admin/.ssh']);
    // What some cloud images ship: password login switched back on in a drop-in.
    root.write('/etc/ssh/sshd_config.d/50-cloud-init.conf', 'PasswordAuthentication yes\n');
    root.copyCheckout();
    return root;
  }

  path(p: string): string {
    return path.join(this.dir, p);
  }

  read(p: string): string {
    return readFileSync(this.path(p), 'utf8');
  }

  exists(p: string): boolean {
    return existsSync(this.path(p));
  }

  write(p: string, content: string): void {
    mkdirSync(path.dirname(this.path(p)), { recursive: true });
    writeFileSync(this.path(p), content);
  }

  /** Runs argv inside the root: chroot, fresh mount + network namespaces, a clean environment. */
  chroot(argv: string[], env: Record<string, string> = {}): RunResult {
    const envArgs = Object.entries({
      PATH: PATH_IN_ROOT,
      HOME: '/root',
      LANG: 'C.UTF-8',
      ...env,
    }).map(([k, v]) => `${k}=${v}`);
    const script =
      'mount -t proc proc "$1/proc" && mount --rbind /dev "$1/dev" && root="$1" && shift && exec chroot "$root" "$@"';
    const r = spawnSync(
      'unshare',
      [
        '--mount',
        '--net',
        '--fork',
        'sh',
        '-c',
        script,
        'sh',
        this.dir,
        'env',
        '-i',
        ...envArgs,
        ...argv,
      ],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
  }

  /** init_setup.sh as an operator runs it: `sudo ./init_setup.sh` from the checkout. */
  initSetup(args: string[] = []): RunResult {
    return this.chroot(['bash', `${CHECKOUT}/init_setup.sh`, ...args], { SUDO_USER: 'admin' });
  }

  /** Every call the shims recorded, one `tool argv...` per line. */
  shimCalls(): string[] {
    return this.exists('/var/log/berth-shims.log')
      ? this.read('/var/log/berth-shims.log').split('\n').filter(Boolean)
      : [];
  }

  /** Path, mode, owner and content hash of every file under the given dirs: "what changed?" */
  snapshot(
    dirs = ['/etc', '/home', '/opt', '/usr/local', '/var/lib/berth-shims'],
  ): Map<string, string> {
    const out = new Map<string, string>();
    const walk = (abs: string): void => {
      const st = lstatSync(abs);
      const rel = path.relative(this.dir, abs);
      let id = `${st.mode.toString(8)} ${st.uid}:${st.gid}`;
      if (st.isDirectory()) for (const name of readdirSync(abs)) walk(path.join(abs, name));
      else if (st.isFile())
        id += ` ${createHash('sha256').update(readFileSync(abs)).digest('hex')}`;
      out.set(rel, id);
    };
    for (const d of dirs) if (this.exists(d)) walk(this.path(d));
    return out;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private installShims(): void {
    const lib = this.path('/usr/local/lib/berth-shims');
    mkdirSync(lib, { recursive: true });
    for (const name of readdirSync(shimDir)) {
      copyFileSync(path.join(shimDir, name), path.join(lib, name));
      chmodSync(path.join(lib, name), 0o755);
    }
    // Always first on PATH: the network and systemd edges. ufw and docker appear only when
    // apt-get "installs" them.
    for (const [name, dir] of [
      ['apt-get', 'sbin'],
      ['systemctl', 'sbin'],
      ['curl', 'bin'],
    ] as const) {
      copyFileSync(path.join(lib, name), this.path(`/usr/local/${dir}/${name}`));
      chmodSync(this.path(`/usr/local/${dir}/${name}`), 0o755);
    }
    this.write('/var/log/berth-shims.log', '');
    // The deploy user's `docker login` records too.
    chmodSync(this.path('/var/log/berth-shims.log'), 0o666);
    mkdirSync(this.path('/var/lib/berth-shims'), { recursive: true, mode: 0o777 });
    chmodSync(this.path('/var/lib/berth-shims'), 0o777);
  }

  private copyCheckout(): void {
    const dest = this.path(CHECKOUT);
    mkdirSync(dest, { recursive: true });
    for (const item of [
      'init_setup.sh',
      '.env.example',
      'docker-compose.monitoring.yml',
      'docker-compose.edge.yml',
      'edge',
      'prometheus',
      'alertmanager',
      'blackbox',
      'node-exporter',
      'grafana',
      'src/deploy/remote/db-backup.sh',
      'scripts/db-monitor-role.sql',
    ]) {
      mkdirSync(path.dirname(path.join(dest, item)), { recursive: true });
      if (existsSync(path.join(repoRoot, item)))
        cpSync(path.join(repoRoot, item), path.join(dest, item), { recursive: true });
    }
  }
}
