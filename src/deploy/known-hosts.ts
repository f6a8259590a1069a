// known_hosts matching, the way OpenSSH reads the file: plain or hashed (|1|salt|hash) host
// patterns, `[host]:port` for non-22 ports, @revoked markers. Pure: the SSH executor asks
// `verifyHostKey` and refuses to log in unless the answer is `known`.
import { createHash, createHmac } from 'node:crypto';
import type { ServerHostKeyAlgorithm } from 'ssh2';

export interface KnownHostEntry {
  marker?: string;
  hosts: string;
  keyType: string;
  key: Buffer;
}

export type HostKeyVerdict =
  | { kind: 'known' }
  | { kind: 'unknown'; fingerprint: string }
  | { kind: 'changed'; fingerprint: string; expected: string[] }
  | { kind: 'revoked'; fingerprint: string };

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    const marker = fields[0]?.startsWith('@') ? fields.shift() : undefined;
    const [hosts, keyType, key] = fields;
    if (!hosts || !keyType || !key) continue;
    entries.push({ marker, hosts, keyType, key: Buffer.from(key, 'base64') });
  }
  return entries;
}

/** The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise. */
export const hostPattern = (host: string, port: number): string =>
  port === 22 ? host : `[${host}]:${port}`;

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
    'i',
  );
  return re.test(name);
}

function hostMatches(hosts: string, name: string): boolean {
  if (hosts.startsWith('|1|')) {
    const [, , salt, hash] = hosts.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  let matched = false;
  for (const pattern of hosts.split(',')) {
    if (pattern.startsWith('!')) {
      if (globMatch(pattern.slice(1), name)) return false;
    } else if (globMatch(pattern, name)) matched = true;
  }
  return matched;
}

/** `SHA256:...` as `ssh-keygen -lf` prints it. */
export const fingerprint = (key: Buffer): string =>
  `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;

export function verifyHostKey(
  entries: KnownHostEntry[],
  host: string,
  port: number,
  presented: Buffer,
): HostKeyVerdict {
  const name = hostPattern(host, port);
  const mine = entries.filter((e) => hostMatches(e.hosts, name));
  const print = fingerprint(presented);
  if (mine.some((e) => e.marker === '@revoked' && e.key.equals(presented)))
    return { kind: 'revoked', fingerprint: print };
  const candidates = mine.filter((e) => e.marker === undefined);
  if (candidates.some((e) => e.key.equals(presented))) return { kind: 'known' };
  if (candidates.length === 0) return { kind: 'unknown', fingerprint: print };
  return {
    kind: 'changed',
    fingerprint: print,
    expected: candidates.map((e) => `${e.keyType} ${fingerprint(e.key)}`),
  };
}

export function describeVerdict(v: HostKeyVerdict, host: string, port: number): string {
  const name = hostPattern(host, port);
  switch (v.kind) {
    case 'known':
      return `host key of ${name} is known`;
    case 'unknown':
      return `the VM's host key (${v.fingerprint}) is not in VM_KNOWN_HOSTS for ${name}. Refusing to connect to an unknown host; add the VM's key line (on the VM: ssh-keyscan -p ${port} localhost, then check the fingerprint) to VM_KNOWN_HOSTS`;
    case 'changed':
      return `the VM's host key CHANGED: ${name} presented ${v.fingerprint}, VM_KNOWN_HOSTS expects ${v.expected.join(' or ')}. Refusing to connect: someone may be intercepting, or the VM was rebuilt; verify the new key on the VM before updating VM_KNOWN_HOSTS`;
    case 'revoked':
      return `the VM's host key ${v.fingerprint} is marked @revoked in VM_KNOWN_HOSTS. Refusing to connect`;
  }
}

const rsaAlgorithms: ServerHostKeyAlgorithm[] = ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
/** The host key types the SSH library speaks; a known_hosts line of another type cannot match. */
const supported: readonly ServerHostKeyAlgorithm[] = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  ...rsaAlgorithms,
  'ssh-dss',
];
const isSupported = (type: string): type is ServerHostKeyAlgorithm =>
  (supported as readonly string[]).includes(type);

/**
 * Host key algorithms to offer, like OpenSSH: only the types known_hosts lists for this host, so
 * a VM that also has another key type is not mistaken for a changed key. Empty = no entry.
 */
export function hostKeyAlgorithms(
  entries: KnownHostEntry[],
  host: string,
  port: number,
): ServerHostKeyAlgorithm[] {
  const name = hostPattern(host, port);
  const types = entries
    .filter((e) => e.marker === undefined && hostMatches(e.hosts, name))
    .map((e) => e.keyType);
  return [
    ...new Set(types.filter(isSupported).flatMap((t) => (t === 'ssh-rsa' ? rsaAlgorithms : [t]))),
  ];
}
