// Real keys from ssh-keygen, so the SSH parts are checked against OpenSSH itself.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireTool } from './real-tools.js';

export const hasKeygen = requireTool(
  'ssh-keygen',
  'apt-get install openssh-client (scripts/test-env/vm.sh up installs it)',
);

export const scratch = mkdtempSync(path.join(os.tmpdir(), 'berth-unit-'));

export function keygen(name: string): { file: string; pub: string; blob: Buffer } {
  const file = path.join(scratch, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file]);
  const pub = readFileSync(`${file}.pub`, 'utf8').trim();
  return { file, pub, blob: Buffer.from(pub.split(' ')[1] ?? '', 'base64') };
}
