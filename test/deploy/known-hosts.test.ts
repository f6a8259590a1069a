// known_hosts matching, checked against ssh-keygen's own keys and hashed entries.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  fingerprint,
  hostKeyAlgorithms,
  parseKnownHosts,
  verifyHostKey,
} from '../../src/deploy/known-hosts.js';
import { hasKeygen, keygen, scratch } from '../helpers/keys.js';

describe.skipIf(!hasKeygen)('known_hosts', () => {
  const vm = keygen('vm');
  const other = keygen('other');
  const line = (hosts: string, k = vm) => `${hosts} ${k.pub.split(' ').slice(0, 2).join(' ')}`;

  it('accepts the key listed for [host]:port and for a bare host on port 22', () => {
    expect(
      verifyHostKey(parseKnownHosts(line('[10.0.0.5]:2222')), '10.0.0.5', 2222, vm.blob),
    ).toEqual({ kind: 'known' });
    expect(
      verifyHostKey(parseKnownHosts(line('vm.example,10.0.0.5')), '10.0.0.5', 22, vm.blob),
    ).toEqual({ kind: 'known' });
  });
  it('calls a host with no entry unknown (never trusted on first use), and gives its fingerprint', () => {
    const v = verifyHostKey(parseKnownHosts(line('[10.0.0.6]:2222')), '10.0.0.5', 2222, vm.blob);
    expect(v).toEqual({ kind: 'unknown', fingerprint: fingerprint(vm.blob) });
    // Same fingerprint as ssh-keygen prints.
    expect(execFileSync('ssh-keygen', ['-lf', `${vm.file}.pub`]).toString()).toContain(
      fingerprint(vm.blob),
    );
    expect(verifyHostKey(parseKnownHosts(line('10.0.0.5')), '10.0.0.5', 2222, vm.blob).kind).toBe(
      'unknown',
    );
  });
  it('calls a different key for a listed host changed', () => {
    expect(
      verifyHostKey(parseKnownHosts(line('[10.0.0.5]:2222', other)), '10.0.0.5', 2222, vm.blob)
        .kind,
    ).toBe('changed');
  });
  it('reads hashed entries as ssh-keygen -H writes them', () => {
    const file = path.join(scratch, 'known_hosts');
    writeFileSync(file, `${line('[10.0.0.5]:2222')}\n`);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', file], { stdio: 'ignore' });
    const hashed = readFileSync(file, 'utf8');
    expect(hashed).toMatch(/^\|1\|/);
    expect(verifyHostKey(parseKnownHosts(hashed), '10.0.0.5', 2222, vm.blob)).toEqual({
      kind: 'known',
    });
    expect(verifyHostKey(parseKnownHosts(hashed), '10.0.0.6', 2222, vm.blob).kind).toBe('unknown');
  });
  it('refuses a @revoked key even when it is also listed', () => {
    const text = `@revoked ${line('*')}\n${line('[10.0.0.5]:2222')}\n`;
    expect(verifyHostKey(parseKnownHosts(text), '10.0.0.5', 2222, vm.blob).kind).toBe('revoked');
  });
  it('offers only the key types known for the host, as OpenSSH does', () => {
    const text = `[10.0.0.5]:2222 ssh-rsa AAAA\n[10.0.0.5]:2222 ecdsa-sha2-nistp256 AAAA\nother ssh-ed25519 AAAA\n@revoked [10.0.0.5]:2222 ssh-ed25519 AAAA\n`;
    expect(hostKeyAlgorithms(parseKnownHosts(text), '10.0.0.5', 2222)).toEqual([
      'rsa-sha2-512',
      'rsa-sha2-256',
      'ssh-rsa',
      'ecdsa-sha2-nistp256',
    ]);
    expect(hostKeyAlgorithms(parseKnownHosts(text), '10.0.0.9', 2222)).toEqual([]);
  });
  it('ignores comments, blank lines and a negated pattern', () => {
    expect(
      verifyHostKey(
        parseKnownHosts(`# c\n\n${line('10.0.0.*,!10.0.0.5')}\n`),
        '10.0.0.5',
        22,
        vm.blob,
      ).kind,
    ).toBe('unknown');
  });
});
