// The database's commands as data: no password ever in an argv, a running db never reached by
// compose's `up` without --no-recreate, the backup program's exit codes those limits.ts names.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  backupDb,
  dbVolumeName,
  isBackupName,
  parseBackups,
  restoreDb,
  startDb,
} from '../../../src/deploy/commands/db.js';
import { EXIT } from '../../../src/deploy/limits.js';
import { repoRoot } from '../../helpers/real-tools.js';

describe('database commands', () => {
  it('start the db with compose, never recreating an existing container, and wait for its health check', () => {
    const argv = startDb('staging', '/opt/berth/staging', { BERTH_NETWORK: 'berth' }).argv;
    expect(argv.slice(-10)).toEqual([
      '-p',
      'berth-staging',
      'up',
      '-d',
      '--no-recreate',
      '--no-deps',
      '--wait',
      '--wait-timeout',
      '150',
      'db',
    ]);
    expect(argv.join(' ')).not.toMatch(/PASSWORD/);
  });
  it('name the volume after the compose project, as docker-compose.yml does', () => {
    expect(dbVolumeName('production')).toBe('berth-production-db');
  });
  it('send the backup program on stdin, its arguments as arguments', () => {
    const b = backupDb('/opt/berth/testing', 7);
    expect(b.argv).toEqual(['sh', '-s', 'backup', '/opt/berth/testing', '7']);
    expect(b.stdin).toContain('pg_dump');
    expect(restoreDb('/opt/berth/testing', 'x.dump').argv.slice(2)).toEqual([
      'restore',
      '/opt/berth/testing',
      'x.dump',
    ]);
  });
  it('read backup lists and accept only plain backup names', () => {
    expect(parseBackups('1767225600.5 2048 staging-a.dump\n\n12 1 staging-b.dump\n')).toEqual([
      { mtime: 1767225600, bytes: 2048, name: 'staging-a.dump' },
      { mtime: 12, bytes: 1, name: 'staging-b.dump' },
    ]);
    expect(isBackupName('staging-20260101T031500.000Z.dump')).toBe(true);
    for (const bad of ['../x.dump', '/opt/x.dump', '.staging.dump.tmp', 'x.sql', 'a b.dump'])
      expect(isBackupName(bad), bad).toBe(false);
  });
  it('db-backup.sh exits with the codes EXIT.db names', () => {
    const text = readFileSync(path.join(repoRoot, 'src/deploy/remote/db-backup.sh'), 'utf8');
    expect(text).toContain(`EXIT_NO_DATABASE=${EXIT.db.noDatabase}\n`);
    expect(text).toContain(`EXIT_NO_BACKUP=${EXIT.db.noBackup}\n`);
  });
});
