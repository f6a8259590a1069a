// The Slack notification: its JSON, and a failure that is only a warning without the URL in it.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { notifySlack, slackMessage, type Notice } from '../../src/deploy/notify.js';

const digest = `sha256:${'b'.repeat(64)}`;
const ok: Notice = {
  result: {
    ok: true,
    action: 'deploy',
    env: 'staging',
    image: 'r/berth:v2',
    digest,
    rolledBack: false,
  },
  who: 'alice@laptop',
  durationMs: 12_345,
};
const refused: Notice = {
  ...ok,
  result: {
    ...ok.result,
    ok: false,
    reason: 'the release command `node m.js` failed (exit 3)',
    advice: 'old keeps serving',
  },
};

describe('slackMessage', () => {
  it('a deploy: environment, version, digest, who, duration, result', () => {
    const m = slackMessage(ok);
    expect(m.text).toMatch(
      /deploy to staging deployed: r\/berth:v2 \(sha256:bbbb.*\) by alice@laptop in 12\.3s/,
    );
    const json = JSON.stringify(m.blocks);
    for (const s of ['*Environment*', '*Result*', '*Digest*', digest, '*Who*', '*Duration*'])
      expect(json).toContain(s);
    expect(json).not.toContain('*Reason*');
  });
  it('a refusal carries the reason', () => {
    const m = slackMessage(refused);
    expect(m.text).toMatch(/^:x: deploy to staging refused/);
    expect(JSON.stringify(m.blocks)).toContain('failed (exit 3)');
  });
  it('a rollback says so', () => {
    expect(slackMessage({ ...ok, result: { ...ok.result, action: 'rollback' } }).text).toMatch(
      /rollback to staging rolled back/,
    );
  });
});

describe('notifySlack', () => {
  const got: { body: string; type?: string }[] = [];
  let status = 200;
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      got.push({ body, type: req.headers['content-type'] });
      if (req.url?.includes('slow')) return; // never answers
      res.statusCode = status;
      res.end('ok');
    });
  });
  let base = '';
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it('nothing configured: nothing sent', async () => {
    expect(await notifySlack(undefined, ok)).toBeUndefined();
  });
  it('posts the JSON', async () => {
    expect(await notifySlack(`${base}/services/T/B/secret-token-123456`, ok)).toBeUndefined();
    expect(got.at(-1)?.type).toBe('application/json');
    expect(JSON.parse(got.at(-1)?.body ?? '{}')).toEqual(slackMessage(ok));
  });
  it('a refused post, a timeout, no server: a warning without the URL', async () => {
    status = 500;
    const url = `${base}/services/T/B/secret-token-123456`;
    expect(await notifySlack(url, ok)).toMatch(/not accepted \(HTTP 500\)/);
    const slow = await notifySlack(`${base}/slow/secret-token-123456`, ok, 200);
    expect(slow).toMatch(/no answer in 0.2 s/);
    const down = await notifySlack('http://127.0.0.1:1/services/secret-token-123456', ok, 2000);
    expect(down).toMatch(/could not be sent/);
    for (const w of [slow, down]) expect(w).not.toMatch(/secret-token/);
  });
});
