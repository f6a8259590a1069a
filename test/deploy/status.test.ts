import { describe, expect, it } from 'vitest';
import { plainHttpLine, publicUrl, type EnvStatus } from '../../src/deploy/status.js';

describe('where status says users reach an environment', () => {
  it('https://APP_DOMAIN (with BASE_PATH) when it has a domain', () => {
    expect(
      publicUrl(
        'APP_DOMAIN=api.example.com\n--- app.env\nBASE_PATH=/v1\n',
        'vm.example.com',
        'production',
      ),
    ).toBe('https://api.example.com/v1');
  });

  it("the VM's address and APP_PORT (or the environment's default port) over HTTP otherwise", () => {
    expect(publicUrl('APP_PORT=9001\n--- app.env\n', '203.0.113.7', 'staging')).toBe(
      'http://203.0.113.7:9001',
    );
    expect(publicUrl('--- app.env\n', '2001:db8::7', 'testing')).toBe('http://[2001:db8::7]:8002');
  });

  it('nothing when the settings cannot make a URL', () => {
    expect(publicUrl('APP_PORT=http\n--- app.env\n', 'vm', 'staging')).toBeUndefined();
  });

  it('names the plain-HTTP environments and what that exposes, and stays quiet when all have a domain', () => {
    const row = (env: EnvStatus['env'], url?: string): EnvStatus => ({
      env,
      url,
      health: 'healthy',
    });
    expect(
      plainHttpLine([
        row('production', 'https://api.example.com'),
        row('staging', 'http://vm:8001'),
      ]),
    ).toMatch(/^plain HTTP \(no APP_DOMAIN\): staging: anyone on the path can read and change/);
    expect(
      plainHttpLine([row('production', 'https://api.example.com'), row('testing')]),
    ).toBeUndefined();
  });
});
