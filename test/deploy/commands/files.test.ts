// Files on the VM: contents on stdin, .env never overwritten nor read beyond its tuning keys,
// modes that nginx (uid 101) can read whatever the deploy user's umask.
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { toShell, type RemoteCommand } from '../../../src/deploy/commands/command.js';
import * as c from '../../../src/deploy/commands/files.js';
import { envPaths } from '../../../src/deploy/paths.js';
import { runLocally as sh } from '../../helpers/remote-shell.js';

describe('paths and files', () => {
  const p = envPaths('/opt/berth', 'staging');
  it('keeps each environment in its own directory', () => {
    expect(p).toMatchObject({
      dir: '/opt/berth/staging',
      env: '/opt/berth/staging/.env',
      upstream: '/opt/berth/staging/proxy/upstream.conf',
      history: '/opt/berth/staging/history.log',
      lock: '/opt/berth/staging/.deploy-lock',
    });
  });
  it('sends file contents on stdin, never on the command line', () => {
    const cmd = c.writeFile(p.compose, 'SECRET=hunter2\n');
    expect(cmd.stdin).toBe('SECRET=hunter2\n');
    expect(toShell(cmd)).not.toContain('hunter2');
  });
  it('creates .env only when missing, readable by the deploy user only', () => {
    expect(c.writeFileIfMissing(p.env, 'X=1\n').argv[2]).toMatch(
      /\[ -e "\$1" \] && exit 0; umask 077/,
    );
  });
  it('reads only the tuning keys of .env, never its secrets', () => {
    const script = c.readTuning(p.env).argv[2] ?? '';
    expect(script).toContain(
      "grep -E '^(APP_MEMORY_LIMIT|APP_CPUS|LOG_MAX_SIZE|LOG_MAX_FILE|APP_DOMAIN)='",
    );
    expect(c.parseTuning('APP_MEMORY_LIMIT="256m"\nAPP_CPUS=0.5\nDATABASE_URL=x\n')).toEqual({
      APP_MEMORY_LIMIT: '256m',
      APP_CPUS: '0.5',
    });
  });
});

describe('file scripts in a real shell', () => {
  const tmp = execFileSync('mktemp', ['-d']).toString().trim();
  it('writeFileIfMissing never overwrites', () => {
    const f = path.join(tmp, '.env');
    expect(sh(c.writeFileIfMissing(f, 'A=1\n')).out).toContain('created');
    expect(sh(c.writeFileIfMissing(f, 'A=2\n')).out).toBe('');
    expect(readFileSync(f, 'utf8')).toBe('A=1\n');
  });
  it('seedAppSettings copies .env byte for byte when app.env is missing, else writes the defaults, and never overwrites', () => {
    const dir = execFileSync('mktemp', ['-d']).toString().trim();
    const [appEnv, dotEnv] = [path.join(dir, 'app.env'), path.join(dir, '.env')];
    const old = "APP_PORT=8000\nSECRET=pa$$word 'x' #1 \\n\n";
    sh(c.writeFile(dotEnv, old, '600'));
    expect(sh(c.seedAppSettings(appEnv, dotEnv, 'LOG_LEVEL=info\n')).out).toBe('copied\n');
    expect(readFileSync(appEnv, 'utf8')).toBe(old);
    expect(sh(c.seedAppSettings(appEnv, dotEnv, 'LOG_LEVEL=info\n')).out).toBe('');
    expect(readFileSync(appEnv, 'utf8')).toBe(old);

    const fresh = path.join(dir, 'fresh.env');
    expect(
      sh(c.seedAppSettings(fresh, path.join(dir, 'no-such.env'), 'LOG_LEVEL=info\n')).out,
    ).toBe('created\n');
    expect(readFileSync(fresh, 'utf8')).toBe('LOG_LEVEL=info\n');
  });
  it('appendLine adds exactly one line, whatever it holds', () => {
    const f = path.join(tmp, 'history.log');
    sh(c.appendLine(f, 'a "b" $c `d`'));
    sh(c.appendLine(f, 'second'));
    expect(readFileSync(f, 'utf8')).toBe('a "b" $c `d`\nsecond\n');
  });
});

describe("file modes on the VM, whatever the deploy user's umask", () => {
  const tmp = execFileSync('mktemp', ['-d']).toString().trim();
  const underUmask077 = (cmd: RemoteCommand) =>
    execFileSync('sh', ['-c', `umask 077; ${toShell(cmd)}`], { input: cmd.stdin ?? '' });
  const mode = (f: string) => (statSync(f).mode & 0o777).toString(8);
  it('proxy/ and the files nginx (uid 101) reads are 755 / 644; the directory 750 as init_setup.sh makes it; .env stays 600', () => {
    const dir = path.join(tmp, 'staging');
    const proxy = path.join(dir, 'proxy');
    underUmask077(c.makeEnvDirs(dir, proxy));
    underUmask077(c.writeFile(path.join(proxy, 'nginx.conf'), 'events {}\n'));
    underUmask077(c.writeFileIfMissing(path.join(dir, '.env'), 'A=1\n'));
    execFileSync('sh', [
      '-c',
      `umask 022; ${toShell(c.seedAppSettings(path.join(dir, 'app.env'), path.join(dir, '.env'), ''))}`,
    ]);
    expect([
      mode(dir),
      mode(proxy),
      mode(path.join(proxy, 'nginx.conf')),
      mode(path.join(dir, '.env')),
      mode(path.join(dir, 'app.env')),
    ]).toEqual(['750', '755', '644', '600', '600']);
  });
});
