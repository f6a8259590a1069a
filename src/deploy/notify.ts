// The post-deploy notification: every deploy and rollback, ok or refused, to a Slack incoming
// webhook (DEPLOY_SLACK_WEBHOOK_URL), sent from where the deploy runs. Best effort: a failed
// notification is a warning, never a failed deploy, and the URL (a secret) is never printed.
import { shortDigest } from './digest.js';
import { TIMEOUT_MS } from './limits.js';
import { failureLine, formatMs, type Result } from './report.js';
import { redact } from './ssh.js';

export interface Notice {
  result: Pick<
    Result,
    'ok' | 'action' | 'env' | 'image' | 'digest' | 'rolledBack' | 'reason' | 'advice'
  >;
  who: string;
  durationMs: number;
}

/** Slack's incoming-webhook JSON: `text` (the notification line) and `blocks` (the details). */
export function slackMessage(n: Notice): { text: string; blocks: unknown[] } {
  const r = n.result;
  const verb = r.action === 'rollback' ? 'rollback' : 'deploy';
  const outcome = r.ok
    ? r.action === 'rollback'
      ? 'rolled back'
      : 'deployed'
    : r.rolledBack
      ? 'failed, :stable brought back'
      : 'refused';
  const text = `${r.ok ? ':white_check_mark:' : ':x:'} ${verb} to ${r.env} ${outcome}: ${r.image} (${shortDigest(r.digest)}) by ${n.who} in ${formatMs(n.durationMs)}`;
  const fields = [
    ['Environment', r.env],
    ['Result', outcome],
    ['Version', `\`${r.image}\``],
    ['Digest', `\`${r.digest ?? '-'}\``],
    ['Who', n.who],
    ['Duration', formatMs(n.durationMs)],
  ].map(([k, v]) => ({ type: 'mrkdwn', text: `*${k}*\n${v}` }));
  const blocks: unknown[] = [
    { type: 'section', text: { type: 'mrkdwn', text } },
    { type: 'section', fields },
  ];
  if (!r.ok)
    blocks.push({
      type: 'section',
      text: { type: 'mrkdwn', text: `*Reason*\n${failureLine(r).slice(0, 2900)}` },
    });
  return { text, blocks };
}

/** Posts the notice; returns a warning (with the URL redacted) instead of throwing. */
export async function notifySlack(
  url: string | undefined,
  n: Notice,
  timeoutMs: number = TIMEOUT_MS.notify,
): Promise<string | undefined> {
  if (!url) return undefined;
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(slackMessage(n)),
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.text().catch(() => '');
    if (!res.ok) return `the Slack notification was not accepted (HTTP ${res.status})`;
    return undefined;
  } catch (err) {
    const e = err as Error & { cause?: { message?: string } };
    const why =
      e.name === 'TimeoutError'
        ? `no answer in ${timeoutMs / 1000} s`
        : `${e.message}${e.cause?.message ? ` (${e.cause.message})` : ''}`;
    return `the Slack notification could not be sent: ${redact(why.split(url).join('[redacted]'), [url])}`;
  }
}
