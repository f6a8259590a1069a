// init_setup.sh run for real, as root through "sudo", in a throwaway Debian 12 root (debootstrap):
// real useradd, real sshd judging the hardened config, real files and permissions. Only what
// needs a network, systemd or the kernel is a recording shim (apt-get, systemctl, ufw, docker,
// curl), and is checked by what it was asked to do.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTestEnv, repoRoot, requirePart } from '../helpers/real-tools.js';
import { appTargetsFile } from '../../src/deploy/commands/targets.js';
import { CHECKOUT, SetupRoot } from './setup-root.js';

const tarball = loadTestEnv().SETUP_ROOT_TAR ?? '';
const ok = requirePart(
  'the init_setup test root',
  () => process.getuid?.() === 0 && tarball !== '' && existsSync(tarball),
  'run `bash scripts/test-env/cicd.sh up` as root (Debian)',
);

const CI_KEY =
  'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICiKeyForTheTestOnlyXXXXXXXXXXXXXXXXXXXX github-actions@berth';
const TOKEN = 'dckr_pat_TestOnly-d0-not-leak-9f8e7d';
const SETTINGS = [
  "# the operator's settings",
  `CI_PUBLIC_KEY="${CI_KEY}"`,
  'REGISTRY_USERNAME=ci-bot',
  `REGISTRY_TOKEN=${TOKEN}`,
  'SLACK_WEBHOOK_URL=https://hooks.slack.invalid/services/T0/B0/test',
  '',
].join('\n');

const MUTATING =
  /^(apt-get install|apt-get update|systemctl (daemon-reload|enable|reload|restart|try-reload-or-restart)|ufw (allow|default|--force)|docker (login|network create|compose .* up)|curl )/;

/** Runs init_setup.sh again and checks that it changed nothing: no file, no mutating tool call. */
function runAgainUnchanged(root: SetupRoot): { code: number; stdout: string; stderr: string } {
  const before = root.snapshot();
  const calls = root.shimCalls().length;
  const again = root.initSetup();
  expect(again.code, again.stderr).toBe(0);
  expect(again.stdout).toMatch(/^== nothing to change: 16 steps already as wanted$/m);
  expect(root.snapshot()).toEqual(before);
  expect(
    root
      .shimCalls()
      .slice(calls)
      .filter((c) => MUTATING.test(c)),
  ).toEqual([]);
  return again;
}

describe.skipIf(!ok)('init_setup.sh on a fresh Debian 12', () => {
  let root: SetupRoot;
  let first: { code: number; stdout: string; stderr: string };

  beforeAll(() => {
    root = SetupRoot.create(tarball);
    root.write(`${CHECKOUT}/.env`, SETTINGS);
    first = root.initSetup();
  });
  afterAll(() => root?.remove());

  it('succeeds and reports each step', () => {
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('== Berth init_setup on Debian GNU/Linux 12 (bookworm)');
    for (const step of [
      'packages',
      'docker ',
      'docker service',
      'deploy user',
      'sshd',
      'firewall',
      'registry login',
      'environments',
      'network',
      'scrape targets',
      'db exporters',
      'monitoring',
      'container health',
      'databases',
      'db backups',
      'edge',
    ]) {
      expect(first.stdout).toMatch(new RegExp(`^[✓·] ${step}`, 'm'));
    }
    expect(first.stdout).toMatch(/^== done: \d+ steps changed/m);
  });

  it("installs Docker Engine and the compose plugin from Docker's apt repository", () => {
    const calls = root.shimCalls();
    expect(calls).toContain(
      'curl -fsSL https://download.docker.com/linux/debian/gpg -o /etc/apt/keyrings/docker.asc',
    );
    expect(root.read('/etc/apt/sources.list.d/docker.list')).toBe(
      'deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/debian bookworm stable\n',
    );
    const installs = calls.filter((c) => c.startsWith('apt-get install'));
    expect(installs).toEqual([
      'apt-get install -y -qq --no-install-recommends ufw',
      'apt-get install -y -qq docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin',
    ]);
    expect(calls).toContain('systemctl enable --now docker');
  });

  it('creates the deploy user with docker access and only the CI key', () => {
    const id = root.chroot(['id', 'deploy']).stdout;
    expect(id).toMatch(/groups=.*\(docker\)/);
    expect(root.read('/home/deploy/.ssh/authorized_keys')).toBe(`${CI_KEY}\n`);
    expect(
      root.chroot([
        'stat',
        '-c',
        '%a %U:%G',
        '/home/deploy/.ssh',
        '/home/deploy/.ssh/authorized_keys',
      ]).stdout,
    ).toBe('700 deploy:deploy\n600 deploy:deploy\n');
    // '*': no password can match, yet the account is not locked against key login.
    expect(root.read('/etc/shadow')).toMatch(/^deploy:\*:/m);
    expect(root.chroot(['getent', 'passwd', 'deploy']).stdout).toMatch(
      /:\/home\/deploy:\/bin\/bash\n$/,
    );
  });

  it('hardens sshd so that the real sshd, with every drop-in, refuses passwords and root', () => {
    const dropin = root.read('/etc/ssh/sshd_config.d/10-berth-hardening.conf');
    expect(dropin).toContain('PasswordAuthentication no\n');
    expect(dropin).toContain('PermitRootLogin no\n');
    expect(root.chroot(['/usr/sbin/sshd', '-t'])).toEqual({ code: 0, stdout: '', stderr: '' });
    // The cloud-init drop-in says "yes" too, and loses: the effective config is what counts.
    const effective = root.chroot(['/usr/sbin/sshd', '-T']).stdout;
    expect(effective).toMatch(/^passwordauthentication no$/m);
    expect(effective).toMatch(/^permitrootlogin no$/m);
    expect(effective).toMatch(/^kbdinteractiveauthentication no$/m);
    expect(root.shimCalls()).toContain('systemctl try-reload-or-restart ssh');
  });

  it('opens SSH before enabling the firewall, then the app ports and Grafana only', () => {
    const ufw = root.shimCalls().filter((c) => c.startsWith('ufw '));
    expect(ufw).toEqual([
      'ufw default deny incoming',
      'ufw default allow outgoing',
      'ufw allow 22/tcp',
      'ufw allow 8000/tcp',
      'ufw allow 8001/tcp',
      'ufw allow 8002/tcp',
      'ufw allow 8950/tcp',
      'ufw --force enable',
    ]);
  });

  it('logs the deploy user in to the registry with the token on stdin, never in argv or output', () => {
    const login = root.shimCalls().filter((c) => c.startsWith('docker login'));
    expect(login).toEqual(['docker login --username ci-bot --password-stdin docker.io']);
    expect(root.read('/var/lib/berth-shims/login-stdin')).toBe(TOKEN);
    expect(root.read('/home/deploy/.docker/config.json')).toContain(
      '"https://index.docker.io/v1/"',
    );
    expect(root.read('/var/log/berth-shims.log')).not.toContain(TOKEN);
    expect(first.stdout + first.stderr).not.toContain(TOKEN);
  });

  it("creates each environment's directory, .env (compose's) and app.env (the app's), deploy-owned and private", () => {
    for (const [env, port] of [
      ['production', 8000],
      ['staging', 8001],
      ['testing', 8002],
    ] as const) {
      const dir = `/opt/berth/${env}`;
      expect(
        root.chroot(['stat', '-c', '%a %U:%G', dir, `${dir}/.env`, `${dir}/app.env`]).stdout,
      ).toBe('750 deploy:deploy\n600 deploy:deploy\n600 deploy:deploy\n');
      const dotenv = root.read(`${dir}/.env`);
      // Replaced in place in .env.example's image section, not added a second time.
      expect(dotenv.match(/^BERTH_ENV=.*$/gm)).toEqual([`BERTH_ENV=${env}`]);
      expect(dotenv.match(/^APP_PORT=.*$/gm)).toEqual([`APP_PORT=${port}`]);
      expect(dotenv).not.toMatch(/^LOG_LEVEL=/m);
      const appEnv = root.read(`${dir}/app.env`);
      expect(appEnv).toMatch(/^LOG_LEVEL=info$/m); // from .env.example's service section
      expect(appEnv).not.toMatch(/^APP_PORT=/m);
      for (const file of [dotenv, appEnv]) expect(file).not.toContain('REGISTRY_TOKEN');
    }
    expect(root.chroot(['stat', '-c', '%a %U', '/opt/berth']).stdout).toBe('755 root\n');
  });

  it('generates the Grafana admin password once, keeps the Slack webhook, never prints either', () => {
    const env = root.read('/opt/berth/monitoring/.env');
    const password = /^GRAFANA_ADMIN_PASSWORD=(.*)$/m.exec(env)?.[1] ?? '';
    expect(password).toMatch(/^[A-Za-z0-9]{32}$/);
    expect(env).toMatch(
      /^SLACK_WEBHOOK_URL=https:\/\/hooks\.slack\.invalid\/services\/T0\/B0\/test$/m,
    );
    expect(root.chroot(['stat', '-c', '%a %U', '/opt/berth/monitoring/.env']).stdout).toBe(
      '600 root\n',
    );
    expect(first.stdout).not.toContain(password);
    expect(first.stdout).not.toContain('hooks.slack.invalid');
  });

  it('creates the berth network and starts the monitoring stack from copied, world-readable config', () => {
    const calls = root.shimCalls();
    expect(calls).toContain('docker network create berth');
    expect(calls).toContain(
      'docker compose --project-name berth-monitoring --project-directory /opt/berth/monitoring -f /opt/berth/monitoring/docker-compose.monitoring.yml up -d --remove-orphans',
    );
    expect(root.read('/opt/berth/monitoring/prometheus/prometheus.yml')).toBe(
      root.read(`${CHECKOUT}/prometheus/prometheus.yml`),
    );
    expect(
      root.chroot(['stat', '-c', '%a', '/opt/berth/monitoring/prometheus/prometheus.yml']).stdout,
    ).toBe('644\n');
  });

  it('gives the scrape targets to the deploy user and lists no environment in them', () => {
    expect(
      root.chroot(['stat', '-c', '%a %U', '/opt/berth/monitoring/prometheus/targets']).stdout,
    ).toBe('755 deploy\n');
    expect(root.chroot(['ls', '/opt/berth/monitoring/prometheus/targets']).stdout).toBe(
      'README.md\n',
    );
  });

  it('connects no database to an exporter before its first deploy (its network does not exist yet)', () => {
    // An exporter's profile would make `docker compose up` of the whole stack fail on the
    // missing external network berth-<env>_default; without a target nothing pages.
    expect(first.stdout).toMatch(
      /^· db exporters +nothing to change \(no database deployed yet\)$/m,
    );
    expect(first.stdout).toContain(
      'database not watched yet (no compose network berth-<env>_default before the first deploy): production staging testing',
    );
    expect(root.exists('/opt/berth/monitoring/secrets')).toBe(false);
    expect(root.read('/opt/berth/monitoring/.env')).not.toMatch(/^COMPOSE_PROFILES=/m);
  });

  it('runs the container-health script every minute with a systemd timer, at the path it was copied to', () => {
    const timer = root.read('/etc/systemd/system/berth-container-health.timer');
    expect(timer).toMatch(/^OnUnitActiveSec=1min$/m);
    expect(timer).toMatch(/^WantedBy=timers\.target$/m);
    const calls = root.shimCalls();
    expect(calls.indexOf('systemctl daemon-reload')).toBeGreaterThan(-1);
    expect(calls.indexOf('systemctl enable --now berth-container-health.timer')).toBeGreaterThan(
      calls.indexOf('systemctl daemon-reload'),
    );
    // What systemd would run, run here: the script exists where the unit says and writes its file.
    const service = root.read('/etc/systemd/system/berth-container-health.service');
    const execStart = /^ExecStart=(.*)$/m.exec(service)?.[1] ?? '';
    const textfileDir = /^Environment=TEXTFILE_DIR=(.*)$/m.exec(service)?.[1] ?? '';
    expect(textfileDir).toBe('/var/lib/node_exporter/textfile_collector');
    const run = root.chroot(['sh', '-c', `TEXTFILE_DIR=${textfileDir} ${execStart}`]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(root.read(`${textfileDir}/berth_container_health.prom`)).toContain(
      '# TYPE berth_container_unhealthy gauge',
    );
  });

  it("generates each environment's database password once, into .env, and the app's DATABASE_URL by the db's network name", () => {
    const passwords = new Set<string>();
    for (const env of ['production', 'staging', 'testing']) {
      const dir = `/opt/berth/${env}`;
      const dotenv = root.read(`${dir}/.env`);
      const found = dotenv.match(/^DB_PASSWORD=.*$/gm) ?? [];
      expect(found).toHaveLength(1);
      const password = found[0]?.slice('DB_PASSWORD='.length) ?? '';
      expect(password).toMatch(/^[A-Za-z0-9]{32}$/);
      passwords.add(password);
      expect(root.read(`${dir}/app.env`).match(/^DATABASE_URL=.*$/gm)).toEqual([
        `DATABASE_URL=postgres://berth:${password}@berth-${env}-db:5432/berth`,
      ]);
      expect(first.stdout).not.toContain(password);
      expect(
        root.chroot(['stat', '-c', '%a %U:%G', `${dir}/.env`, `${dir}/app.env`, `${dir}/backups`])
          .stdout,
      ).toBe('600 deploy:deploy\n600 deploy:deploy\n700 deploy:deploy\n');
    }
    expect(passwords.size).toBe(3);
  });

  it("backs the databases up daily with a systemd timer running the repository's db-backup.sh", () => {
    const timer = root.read('/etc/systemd/system/berth-db-backup.timer');
    expect(timer).toMatch(/^OnCalendar=\*-\*-\* 03:15:00$/m);
    expect(timer).toMatch(/^Persistent=true$/m);
    expect(root.read('/etc/systemd/system/berth-db-backup.service')).toMatch(
      /^ExecStart=\/bin\/sh \/usr\/local\/lib\/berth\/db-backup\.sh scheduled \/var\/lib\/node_exporter\/textfile_collector 7 \/opt\/berth\/production \/opt\/berth\/staging \/opt\/berth\/testing$/m,
    );
    expect(root.read('/usr/local/lib/berth/db-backup.sh')).toBe(
      root.read(`${CHECKOUT}/src/deploy/remote/db-backup.sh`),
    );
    expect(root.shimCalls()).toContain('systemctl enable --now berth-db-backup.timer');
  });

  describe('a second run', () => {
    let before: Map<string, string>;
    let callsBefore: number;
    let second: { code: number; stdout: string; stderr: string };
    beforeAll(() => {
      before = root.snapshot();
      callsBefore = root.shimCalls().length;
      second = root.initSetup();
    });

    it('changes nothing and says so for every step', () => {
      expect(second.stderr).toBe('');
      expect(second.code).toBe(0);
      const steps = second.stdout.split('\n').filter((l) => /^[✓·] /.test(l));
      expect(steps).toHaveLength(16);
      for (const line of steps) expect(line).toMatch(/^· .* nothing to change/);
      expect(second.stdout).toMatch(/^== nothing to change: 16 steps already as wanted$/m);
    });

    it('touches no file and asks no tool to change anything', () => {
      expect(root.snapshot()).toEqual(before);
      expect(
        root
          .shimCalls()
          .slice(callsBefore)
          .filter((c) => MUTATING.test(c)),
      ).toEqual([]);
    });
  });

  describe("after an operator edits an environment's .env and app.env", () => {
    it("keeps the database password and an operator's own DATABASE_URL (an outside database)", () => {
      const dotenv = root.read('/opt/berth/production/.env');
      const own = 'DATABASE_URL=postgres://app@db.internal.example:5432/orders';
      const appEnv = root.read('/opt/berth/production/app.env').replace(/^DATABASE_URL=.*$/m, own);
      root.write('/opt/berth/production/app.env', appEnv);
      expect(root.initSetup().code).toBe(0);
      expect(root.read('/opt/berth/production/.env')).toBe(dotenv);
      expect(root.read('/opt/berth/production/app.env')).toBe(appEnv);
    });

    it('refuses to make a new password when the data volume exists but .env lost its DB_PASSWORD', () => {
      const file = '/opt/berth/staging/.env';
      const dotenv = root.read(file);
      root.write(file, dotenv.replace(/^DB_PASSWORD=.*\n/m, ''));
      root.write('/var/lib/berth-shims/volume-berth-staging-db', '');
      try {
        const r = root.initSetup();
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(
          /has no DB_PASSWORD but the database volume berth-staging-db exists: put back the password/,
        );
        expect(root.read(file)).not.toMatch(/^DB_PASSWORD=/m);
      } finally {
        root.chroot(['rm', '-f', '/var/lib/berth-shims/volume-berth-staging-db']);
        root.write(file, dotenv);
      }
    });

    it('keeps the edits (the files are created once, never overwritten)', () => {
      for (const [file, line] of [
        ['/opt/berth/staging/.env', 'APP_CPUS=0.5'],
        ['/opt/berth/staging/app.env', 'LOG_LEVEL=debug'],
      ]) {
        root.write(file!, `${root.read(file!)}${line}\n`);
      }
      expect(root.initSetup().code).toBe(0);
      expect(root.read('/opt/berth/staging/.env')).toMatch(/APP_CPUS=0\.5\n$/);
      expect(root.read('/opt/berth/staging/app.env')).toMatch(/LOG_LEVEL=debug\n$/);
    });
  });

  describe("on a VM set up before app.env (the app's settings still in .env)", () => {
    it('starts app.env as a byte-for-byte copy of .env, which is what the app was given', () => {
      const old = "# old single file\nAPP_PORT=8002\nSECRET=pa$$word 'x' #1\n";
      root.write('/opt/berth/testing/.env', old);
      root.chroot(['rm', '/opt/berth/testing/app.env']);
      expect(root.initSetup().code).toBe(0);
      // Then the database's settings are added below, as on any environment that lacks them.
      const dotenv = root.read('/opt/berth/testing/.env');
      expect(dotenv).toMatch(
        /^# old single file\nAPP_PORT=8002\nSECRET=pa\$\$word 'x' #1\nDB_PASSWORD=[A-Za-z0-9]{32}\n$/,
      );
      const password = /^DB_PASSWORD=(.*)$/m.exec(dotenv)?.[1] ?? '';
      expect(root.read('/opt/berth/testing/app.env')).toBe(
        `${old}DATABASE_URL=postgres://berth:${password}@berth-testing-db:5432/berth\n`,
      );
      expect(root.chroot(['stat', '-c', '%a %U:%G', '/opt/berth/testing/app.env']).stdout).toBe(
        '600 deploy:deploy\n',
      );
    });
  });

  describe('with a compose plugin older than 2.30', () => {
    it('stops, naming the version and the upgrade (app.env needs the raw format)', () => {
      const r = root.chroot(['bash', `${CHECKOUT}/init_setup.sh`], {
        SUDO_USER: 'admin',
        SHIM_COMPOSE_VERSION: '2.29.7',
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('docker compose 2.29.7 is older than 2.30');
    });
  });

  describe('after a git pull that changes a monitoring config file', () => {
    it('copies that file only and restarts the running stack so it reads it', () => {
      const rel = 'prometheus/prometheus.yml';
      root.write(`${CHECKOUT}/${rel}`, `${root.read(`${CHECKOUT}/${rel}`)}# edited\n`);
      const callsBefore = root.shimCalls().length;
      const r = root.initSetup();
      expect(r.code).toBe(0);
      expect(r.stdout.match(/^✓ .*$/gm)).toEqual([
        '✓ monitoring         1 config files: docker compose up -d (Grafana on :8950)',
      ]);
      expect(root.read(`/opt/berth/monitoring/${rel}`)).toMatch(/# edited\n$/);
      const compose =
        'docker compose --project-name berth-monitoring --project-directory /opt/berth/monitoring -f /opt/berth/monitoring/docker-compose.monitoring.yml';
      expect(root.shimCalls().slice(callsBefore)).toEqual([
        `${compose} up -d --remove-orphans`,
        `${compose} restart`,
      ]);
    });
  });

  describe('on a VM whose environments were listed by hand', () => {
    const dir = '/opt/berth/monitoring/prometheus/targets';
    const aside = '/opt/berth/monitoring/prometheus/targets.hand-listed';
    const handApp =
      '# edited by hand\n- targets: [berth-production-app:8000]\n  labels: {env: production}\n';
    const handProbe =
      '- targets: [http://host.docker.internal:8000/health]\n  labels: {env: production}\n';
    const deployed = appTargetsFile('staging', { basePath: '', port: 8001, bind: '0.0.0.0' });

    it('moves the hand-listed files aside, keeps what the deploys wrote, and is idempotent', () => {
      root.write(`${dir}/berth-app.yml`, handApp);
      root.write(`${dir}/probe-production.yml`, handProbe);
      root.write(`${dir}/app-staging.yml`, deployed);
      const r = root.initSetup();
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(
        `✓ scrape targets     moved hand-listed berth-app.yml probe-production.yml to ${aside}`,
      );
      expect(r.stdout).toContain('scraped and probed again from its next deploy');
      expect(root.read(`${aside}/berth-app.yml`)).toBe(handApp);
      expect(root.read(`${aside}/probe-production.yml`)).toBe(handProbe);
      expect(root.read(`${dir}/app-staging.yml`)).toBe(deployed);
      expect(root.chroot(['ls', dir]).stdout).toBe('README.md\napp-staging.yml\n');
      expect(root.initSetup().stdout).toMatch(/^· scrape targets +nothing to change/m);
      // A second hand-listed file of the same name never overwrites the first one moved aside.
      root.write(`${dir}/probe-production.yml`, 'again\n');
      expect(root.initSetup().code).toBe(0);
      expect(root.read(`${aside}/probe-production.yml`)).toBe('again\n');
      expect(root.read(`${aside}/probe-production.yml.~1~`)).toBe(handProbe);
    });
  });

  describe('the Slack webhook', () => {
    it('is not asked for while it is set, and named when it is missing', () => {
      expect(first.stdout).not.toContain('Alertmanager will not start');
      const file = '/opt/berth/monitoring/.env';
      root.write(file, root.read(file).replace(/^SLACK_WEBHOOK_URL=.*$/m, 'SLACK_WEBHOOK_URL='));
      expect(root.initSetup().stdout).toContain(
        'Alertmanager will not start until SLACK_WEBHOOK_URL or SLACK_WEBHOOK_URL_FILE is set in /opt/berth/monitoring/.env',
      );
    });
  });

  describe("once environments' databases are deployed (their compose networks exist)", () => {
    const mon = '/opt/berth/monitoring';
    const compose =
      'docker compose --project-name berth-monitoring --project-directory /opt/berth/monitoring -f /opt/berth/monitoring/docker-compose.monitoring.yml';
    const dbPassword = (env: string) =>
      /^DB_PASSWORD=(.*)$/m.exec(root.read(`/opt/berth/${env}/.env`))?.[1] ?? '';
    const deployed = (env: string) =>
      root.write(`/var/lib/berth-shims/network-berth-${env}_default`, '');
    const profiles = () => root.read(`${mon}/.env`).match(/^COMPOSE_PROFILES=.*$/gm);
    let r: { code: number; stdout: string; stderr: string };
    let callsBefore: number;

    beforeAll(() => {
      // An operator's own profile, kept beside the exporters'.
      root.write(`${mon}/.env`, `${root.read(`${mon}/.env`)}COMPOSE_PROFILES=my-own\n`);
      deployed('production');
      deployed('staging');
      callsBefore = root.shimCalls().length;
      r = root.initSetup();
    });

    const monitorPassword = (env: string) => root.read(`${mon}/secrets/postgres-${env}.password`);

    it("writes each one's password file, readable by the exporter's uid 65534 only: a password of its own", () => {
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      for (const env of ['production', 'staging']) {
        const password = monitorPassword(env);
        // Only the password: no newline, nothing else; never the database owner's.
        expect(password).toMatch(/^[A-Za-z0-9]{32}$/);
        expect(password).not.toBe(dbPassword(env));
        expect(
          root.chroot([
            'stat',
            '-c',
            '%a %u:%g',
            `${mon}/secrets`,
            `${mon}/secrets/postgres-${env}.password`,
          ]).stdout,
        ).toBe('700 65534:65534\n600 65534:65534\n');
        // Never printed, never in any recorded command line.
        expect(r.stdout + r.stderr).not.toContain(password);
        expect(root.read('/var/log/berth-shims.log')).not.toContain(password);
      }
    });

    it('gives each database the role berth_monitor with that password, through psql on stdin', () => {
      for (const env of ['production', 'staging']) {
        expect(root.shimCalls().slice(callsBefore)).toContain(
          `docker exec -i berth-${env}-db-1 psql -X -q -v ON_ERROR_STOP=1 -U berth -d berth`,
        );
        expect(root.read(`/var/lib/berth-shims/exec-berth-${env}-db-1.stdin`)).toBe(
          `\\set pw ${monitorPassword(env)}\n${readFileSync(path.join(repoRoot, 'scripts', 'db-monitor-role.sql'), 'utf8')}`,
        );
      }
      // testing's network does not exist: no exporter, no target, nothing pages.
      expect(root.exists(`${mon}/secrets/postgres-testing.password`)).toBe(false);
      expect(root.exists(`${mon}/prometheus/targets/postgres-testing.yml`)).toBe(false);
    });

    it("lists their profiles in the monitoring .env, keeping the operator's", () => {
      expect(profiles()).toEqual(['COMPOSE_PROFILES=my-own,postgres-production,postgres-staging']);
      expect(root.chroot(['stat', '-c', '%a %U', `${mon}/.env`]).stdout).toBe('600 root\n');
    });

    it('writes their scrape targets, owned by the deploy user, labelled with the environment', () => {
      for (const env of ['production', 'staging']) {
        const file = `${mon}/prometheus/targets/postgres-${env}.yml`;
        const lines = root
          .read(file)
          .split('\n')
          .filter((l) => !l.startsWith('#'));
        expect(lines).toEqual([
          `- targets: [postgres-exporter-${env}:9187]`,
          `  labels: {env: ${env}}`,
          '',
        ]);
        expect(root.chroot(['stat', '-c', '%a %U:%G', file]).stdout).toBe('644 deploy:deploy\n');
      }
      expect(root.chroot(['ls', `${mon}/prometheus/targets`]).stdout).toBe(
        'README.md\napp-staging.yml\npostgres-production.yml\npostgres-staging.yml\n',
      );
    });

    it('then starts the exporters and restarts the running stack, after writing everything', () => {
      expect(r.stdout).toMatch(
        /^✓ db exporters +production: profile postgres-production, production: password file, production: postgres-production\.yml, staging: profile postgres-staging, staging: password file, staging: postgres-staging\.yml \(password never printed\)$/m,
      );
      expect(r.stdout).toMatch(
        /^✓ monitoring +\.env, postgres-production password, postgres-staging password: docker compose up -d/m,
      );
      expect(
        root
          .shimCalls()
          .slice(callsBefore)
          .filter((c) => c.startsWith('docker compose')),
      ).toEqual([`${compose} up -d --remove-orphans`, `${compose} restart`]);
    });

    it('changes nothing on the next run, and the scrape-targets step leaves the files in place', () => {
      const again = runAgainUnchanged(root);
      expect(again.stdout).toMatch(
        /^· db exporters +nothing to change \(watching production staging\)$/m,
      );
    });

    it('a dry run with one more environment deployed prints what it would write, and changes nothing', () => {
      deployed('testing');
      const before = root.snapshot();
      const calls = root.shimCalls().length;
      const dry = root.initSetup(['--dry-run']);
      expect(dry.stderr).toBe('');
      expect(dry.code).toBe(0);
      for (const expected of [
        `would write ${mon}/secrets/postgres-testing.password (mode 0600, 65534:65534)`,
        `would write ${mon}/prometheus/targets/postgres-testing.yml (mode 0644, deploy:deploy)`,
        `would write ${mon}/.env (mode 0600, root:root)`,
        `would run: ${compose} restart`,
      ]) {
        expect(dry.stdout).toContain(expected);
      }
      expect(dry.stdout).not.toContain(dbPassword('testing'));
      expect(root.snapshot()).toEqual(before);
      expect(
        root
          .shimCalls()
          .slice(calls)
          .filter((c) => MUTATING.test(c)),
      ).toEqual([]);
      // The real run connects it.
      expect(root.initSetup().code).toBe(0);
      expect(monitorPassword('testing')).toMatch(/^[A-Za-z0-9]{32}$/);
      expect(profiles()).toEqual([
        'COMPOSE_PROFILES=my-own,postgres-production,postgres-staging,postgres-testing',
      ]);
    });

    it('leaves a database target parked by `down` alone (no page for a database taken down) until a deploy restores it', () => {
      const target = `${mon}/prometheus/targets/postgres-staging.yml`;
      root.chroot(['mv', target, `${target}.down`]);
      const run = root.initSetup();
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toContain(
        'staging: taken down (npm run deploy -- down --env staging): its database target stays parked until the next deploy',
      );
      expect(root.chroot(['test', '-e', target]).code).not.toBe(0);
      root.chroot(['mv', `${target}.down`, target]);
    });

    it("keeps the exporter's own password when DB_PASSWORD changes, and sets the role's again", () => {
      const file = '/opt/berth/production/.env';
      const before = monitorPassword('production');
      root.write(
        file,
        root
          .read(file)
          .replace(/^DB_PASSWORD=.*$/m, 'DB_PASSWORD=NewTestOnlyPassword0123456789abc'),
      );
      const calls = root.shimCalls().length;
      const run = root.initSetup();
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^· db exporters +nothing to change/m);
      expect(monitorPassword('production')).toBe(before);
      expect(root.shimCalls().slice(calls)).toContain(
        'docker exec -i berth-production-db-1 psql -X -q -v ON_ERROR_STOP=1 -U berth -d berth',
      );
    });

    it("replaces a password file from before berth_monitor, which held the owner's password, and restarts the stack", () => {
      root.write(`${mon}/secrets/postgres-production.password`, dbPassword('production'));
      const calls = root.shimCalls().length;
      const run = root.initSetup();
      expect(run.code).toBe(0);
      expect(run.stdout.match(/^✓ .*$/gm)).toEqual([
        '✓ db exporters       production: password file (password never printed)',
        '✓ monitoring         postgres-production password: docker compose up -d (Grafana on :8950)',
      ]);
      expect(monitorPassword('production')).toMatch(/^[A-Za-z0-9]{32}$/);
      expect(monitorPassword('production')).not.toBe(dbPassword('production'));
      expect(run.stdout).not.toContain(monitorPassword('production'));
      expect(root.read('/var/log/berth-shims.log')).not.toContain(monitorPassword('production'));
      expect(
        root
          .shimCalls()
          .slice(calls)
          .filter((c) => c.startsWith('docker compose')),
      ).toEqual([`${compose} up -d --remove-orphans`, `${compose} restart`]);
    });

    it('with the database not running, keeps the old file and says the role is missing; the run that finds it running sets both', () => {
      root.write(`${mon}/secrets/postgres-staging.password`, dbPassword('staging'));
      root.write('/var/lib/berth-shims/db-stopped-berth-staging', '');
      const calls = root.shimCalls().length;
      const stopped = root.initSetup();
      expect(stopped.code, stopped.stderr).toBe(0);
      expect(stopped.stdout).toMatch(
        /^· db exporters +nothing to change \(watching .*; no role berth_monitor yet in staging: its database is not running/m,
      );
      expect(monitorPassword('staging')).toBe(dbPassword('staging'));
      expect(
        root
          .shimCalls()
          .slice(calls)
          .filter((c) => c.includes('berth-staging-db-1')),
      ).toEqual([]);
      root.chroot(['rm', '/var/lib/berth-shims/db-stopped-berth-staging']);
      const running = root.initSetup();
      expect(running.stdout).toMatch(/^✓ db exporters +staging: password file/m);
      expect(monitorPassword('staging')).not.toBe(dbPassword('staging'));
      expect(root.read('/var/lib/berth-shims/exec-berth-staging-db-1.stdin')).toContain(
        `\\set pw ${monitorPassword('staging')}\n`,
      );
    });

    it("an operator's own POSTGRES_USER_<ENV> keeps the old way: the file follows DB_PASSWORD, and the run says how to change", () => {
      root.write(`${mon}/.env`, `${root.read(`${mon}/.env`)}POSTGRES_USER_PRODUCTION=berth\n`);
      const run = root.initSetup();
      expect(run.code, run.stderr).toBe(0);
      expect(monitorPassword('production')).toBe(dbPassword('production'));
      expect(run.stdout).toContain(
        'production: the exporter logs in as berth (POSTGRES_USER_PRODUCTION in /opt/berth/monitoring/.env), with DB_PASSWORD; remove that line for berth_monitor (pg_monitor only)',
      );
      expect(run.stdout).not.toContain(dbPassword('production'));
      root.write(
        `${mon}/.env`,
        root.read(`${mon}/.env`).replace('POSTGRES_USER_PRODUCTION=berth\n', ''),
      );
    });
  });

  describe('once a domain is set (APP_DOMAIN in an environment, GRAFANA_DOMAIN in the settings)', () => {
    let r: { code: number; stdout: string; stderr: string };
    let callsBefore: number;
    beforeAll(() => {
      const env = '/opt/berth/production/.env';
      root.write(env, `${root.read(env)}APP_DOMAIN=api.example.com\n`);
      const settings = `${CHECKOUT}/.env`;
      root.write(
        settings,
        `${root.read(settings)}GRAFANA_DOMAIN=grafana.example.com\nACME_EMAIL=ops@example.com\n`,
      );
      callsBefore = root.shimCalls().length;
      r = root.initSetup();
    });

    it('opens 80 and 443 (8950 stays as it was), and starts the edge from copied files', () => {
      expect(r.code, r.stderr).toBe(0);
      const calls = root.shimCalls().slice(callsBefore);
      expect(calls.filter((c) => c.startsWith('ufw allow'))).toEqual([
        'ufw allow 80/tcp',
        'ufw allow 443/tcp',
      ]);
      expect(calls).toContain(
        'docker compose --project-name berth-edge --project-directory /opt/berth/edge -f /opt/berth/edge/docker-compose.edge.yml up -d --remove-orphans',
      );
      expect(root.read('/opt/berth/edge/docker-compose.edge.yml')).toBe(
        root.read(`${CHECKOUT}/docker-compose.edge.yml`),
      );
      expect(root.read('/opt/berth/edge/edge/bootstrap.json')).toBe(
        root.read(`${CHECKOUT}/edge/bootstrap.json`),
      );
      expect(r.stdout).toMatch(/^✓ edge /m);
      // A private ACME CA's root goes here (ACME_CA_ROOT); compose mounts it read-only.
      expect(root.chroot(['stat', '-c', '%a %U', '/opt/berth/edge/edge/trust']).stdout).toBe(
        '755 root\n',
      );
    });

    it("writes the edge's settings, readable by the deploy, with the operator's values", () => {
      const env = root.read('/opt/berth/edge/.env');
      expect(env).toMatch(/^GRAFANA_DOMAIN=grafana\.example\.com$/m);
      expect(env).toMatch(/^ACME_EMAIL=ops@example\.com$/m);
      expect(env).toMatch(/^ACME_CA=https:\/\/acme-v02\.api\.letsencrypt\.org\/directory$/m);
      expect(root.chroot(['stat', '-c', '%a %U', '/opt/berth/edge/.env']).stdout).toBe(
        '644 root\n',
      );
      expect(
        root.chroot(['su', '-s', '/bin/sh', 'deploy', '-c', 'cat /opt/berth/edge/.env']).code,
      ).toBe(0);
    });

    it('changes nothing on the next run', () => {
      const again = runAgainUnchanged(root);
      expect(again.stdout).toMatch(
        /^· edge +nothing to change \(running in \/opt\/berth\/edge\)$/m,
      );
    });
  });
});

describe.skipIf(!ok)('init_setup.sh --dry-run', () => {
  let root: SetupRoot;
  beforeAll(() => {
    root = SetupRoot.create(tarball);
    root.write(`${CHECKOUT}/.env`, SETTINGS);
  });
  afterAll(() => root?.remove());

  it('prints every change it would make and makes none', () => {
    const before = root.snapshot();
    const r = root.initSetup(['--dry-run']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('(dry run: nothing is changed)');
    for (const expected of [
      'would run: curl -fsSL https://download.docker.com/linux/debian/gpg -o /etc/apt/keyrings/docker.asc',
      'would run: env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-ce',
      'would run: useradd --create-home --shell /bin/bash --groups docker deploy',
      'would write /etc/ssh/sshd_config.d/10-berth-hardening.conf',
      'would run: ufw allow 8000/tcp',
      'would run: docker login --username ci-bot --password-stdin docker.io (as deploy, token on stdin)',
      'would write /opt/berth/production/app.env (mode 0600, deploy:deploy)',
      'would write /opt/berth/production/.env (mode 0600, deploy:deploy)',
      'would run: docker network create berth',
      'would run: install -d -m 0755 -o deploy -g deploy /opt/berth/monitoring/prometheus/targets',
      'would write /opt/berth/monitoring/.env (mode 0600, root:root)',
      'would write /etc/systemd/system/berth-container-health.timer (mode 0644, root:root)',
      'would run: systemctl enable --now berth-container-health.timer',
    ]) {
      expect(r.stdout).toContain(expected);
    }
    expect(r.stdout).toMatch(/^== dry run: 14 steps would change, 2 already as wanted$/m);
    expect(r.stdout).not.toContain(TOKEN);
    expect(root.snapshot()).toEqual(before);
    expect(root.shimCalls()).toEqual([]);
  });
});

describe.skipIf(!ok)('init_setup.sh refuses, clearly and before changing anything', () => {
  let root: SetupRoot;
  beforeAll(() => {
    root = SetupRoot.create(tarball);
  });
  afterAll(() => root?.remove());

  const refuses = (
    setup: () => void,
    message: RegExp,
    env: Record<string, string> = { SUDO_USER: 'admin' },
  ) => {
    setup();
    const before = root.snapshot();
    const r = root.chroot(['bash', `${CHECKOUT}/init_setup.sh`], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(root.snapshot()).toEqual(before);
    expect(root.shimCalls()).toEqual([]);
  };

  it('an unsupported OS, naming it and what is supported', () => {
    const original = root.read('/usr/lib/os-release');
    try {
      refuses(
        () =>
          root.write(
            '/usr/lib/os-release',
            'PRETTY_NAME="Ubuntu 20.04.6 LTS"\nID=ubuntu\nVERSION_ID="20.04"\nVERSION_CODENAME=focal\n',
          ),
        /^init_setup: error: unsupported OS: Ubuntu 20\.04\.6 LTS\. Supported: Ubuntu 22\.04, Ubuntu 24\.04, Debian 12\n$/,
      );
    } finally {
      root.write('/usr/lib/os-release', original);
    }
  });

  it('no settings file', () => {
    refuses(
      () => undefined,
      /\.env not found: copy \.env\.example to \.env and fill in the setup section/,
    );
  });

  it('CI_PUBLIC_KEY missing, naming the variable', () => {
    refuses(
      () => root.write(`${CHECKOUT}/.env`, 'REGISTRY_USERNAME=\n'),
      /^init_setup: error: CI_PUBLIC_KEY is not set in .*\.env/,
    );
  });

  it('a private key pasted as CI_PUBLIC_KEY', () => {
    // The marker line of a private key, assembled so the repository's secret scan does not flag a fake.
    const privateKeyLine = ['-----BEGIN OPENSSH', 'PRIVATE KEY-----'].join(' ');
    refuses(
      () => root.write(`${CHECKOUT}/.env`, `CI_PUBLIC_KEY=${privateKeyLine}\n`),
      /CI_PUBLIC_KEY does not look like an OpenSSH public key/,
    );
  });

  it('a registry user without a token', () => {
    refuses(
      () => root.write(`${CHECKOUT}/.env`, `CI_PUBLIC_KEY="${CI_KEY}"\nREGISTRY_USERNAME=ci-bot\n`),
      /REGISTRY_USERNAME is set but REGISTRY_TOKEN is not/,
    );
  });

  it('run as root directly (it would lock root out of SSH)', () => {
    refuses(
      () => root.write(`${CHECKOUT}/.env`, `CI_PUBLIC_KEY="${CI_KEY}"\n`),
      /run this as a sudo user, not as root/,
      {},
    );
  });

  it('a sudo user without an SSH key (disabling passwords would lock them out)', () => {
    const keys = root.read('/home/admin/.ssh/authorized_keys');
    try {
      refuses(
        () => root.write('/home/admin/.ssh/authorized_keys', ''),
        /admin has no SSH key in \/home\/admin\/\.ssh\/authorized_keys/,
      );
    } finally {
      root.write('/home/admin/.ssh/authorized_keys', keys);
    }
  });
});
