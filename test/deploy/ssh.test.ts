// What the executor prints never carries the key.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { redact } from '../../src/deploy/ssh.js';
import { hasKeygen, keygen } from '../helpers/keys.js';

describe.skipIf(!hasKeygen)('redaction', () => {
  const key = keygen('redact');
  it('redacts the key from anything printed', () => {
    const text = readFileSync(key.file, 'utf8');
    const body = text.split('\n')[1] ?? '';
    expect(redact(`oops ${body} here`, [text])).toBe('oops [redacted] here');
  });
});
