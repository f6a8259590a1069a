// The deploy's settings, read once from the environment (.env locally, secrets in CI) and
// validated, so a typo stops the command before it touches the VM, naming the variable.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { z } from 'zod';

export interface DeployConfig {
  host: string;
  user: string;
  port: number;
  /** Private key text. Never printed, never sent anywhere but into the SSH handshake. */
  privateKey: string;
  knownHosts: string;
  remoteDir: string;
  healthPath: string;
  healthTimeoutS: number;
  healthIntervalS: number;
  healthSuccesses: number;
  keep: number;
  /** Database backups kept per environment on the VM (DEPLOY_BACKUP_KEEP). */
  backupKeep: number;
  lockWaitS: number;
  proxyImage?: string;
  /** The docker network shared with monitoring (docker-compose.yml reads the same BERTH_NETWORK). */
  network: string;
  /** Who runs the deploy, for the lock and the history (user@host, or the CI actor). */
  who: string;
  /** DEPLOY_RELEASE_COMMAND as argv: run once in a one-off container of the new image before the switch. */
  releaseCommand?: string[];
  releaseTimeoutS?: number;
  /** Slack incoming webhook. A secret: never printed, never sent anywhere but to Slack. */
  slackWebhookUrl?: string;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const seconds = (fallback: number, min = 0) =>
  z.coerce.number().finite().min(min).default(fallback);

const required: Record<string, string> = {
  VM_HOST: 'the VM address',
  VM_USER: 'the deploy user on the VM',
};

const schema = z.object({
  VM_HOST: z.string().trim().min(1, 'is required (the VM address)'),
  VM_USER: z
    .string()
    .trim()
    .min(1, 'is required (the deploy user on the VM)')
    .regex(/^[a-z_][a-z0-9_.-]*$/i, 'is not a valid user name'),
  VM_SSH_PORT: z.coerce.number().int().min(1).max(65535).default(22),
  VM_SSH_KEY: z.string().optional(),
  VM_SSH_KEY_FILE: z.string().optional(),
  VM_KNOWN_HOSTS: z.string().optional(),
  VM_KNOWN_HOSTS_FILE: z.string().optional(),
  BERTH_REMOTE_DIR: z
    .string()
    .regex(/^\/[A-Za-z0-9._/-]*$/, 'must be an absolute path of plain characters')
    .default('/opt/berth'),
  DEPLOY_HEALTH_PATH: z
    .string()
    .regex(/^\/[A-Za-z0-9._~/?=&%-]*$/, 'must be a path starting with /')
    .default('/health'),
  DEPLOY_HEALTH_TIMEOUT_S: seconds(60, 1),
  DEPLOY_HEALTH_INTERVAL_S: seconds(1, 0.1),
  DEPLOY_HEALTH_SUCCESSES: z.coerce.number().int().min(1).max(100).default(3),
  DEPLOY_KEEP: z.coerce.number().int().min(1).max(100).default(3),
  DEPLOY_BACKUP_KEEP: z.coerce.number().int().min(1).max(1000).default(7),
  DEPLOY_LOCK_WAIT_S: seconds(0),
  PROXY_IMAGE: z
    .string()
    .regex(/^[A-Za-z0-9._/:@-]+$/, 'is not an image reference')
    .optional(),
  BERTH_NETWORK: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'is not a docker network name')
    .default('berth'),
  DEPLOY_WHO: z.string().optional(),
  DEPLOY_RELEASE_COMMAND: z.string().optional(),
  DEPLOY_RELEASE_TIMEOUT_S: seconds(300, 1),
  DEPLOY_SLACK_WEBHOOK_URL: z.string().optional(),
  GITHUB_ACTOR: z.string().optional(),
});

function readEither(
  env: Record<string, string | undefined>,
  textVar: string,
  fileVar: string,
  what: string,
): string {
  const text = env[textVar];
  if (text && text.trim()) return text.endsWith('\n') ? text : `${text}\n`;
  const file = env[fileVar]?.replace(/^~(?=\/|$)/, os.homedir());
  if (file) {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(
        `${fileVar}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
    }
  }
  throw new ConfigError(`${textVar} or ${fileVar} is required (${what})`);
}

/**
 * DEPLOY_RELEASE_COMMAND as argv, with no shell in between (the image may have none):
 * a JSON array of strings (`["node","dist/service/db/migrate.js"]`), or else words split on
 * whitespace, where quotes and backslashes are refused (they would mean shell quoting).
 */
export function parseReleaseCommand(text: string): string[] {
  const name = 'DEPLOY_RELEASE_COMMAND';
  const t = text.trim();
  if (t.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(t);
    } catch {
      throw new ConfigError(`${name} starts with [ but is not a JSON array of strings`);
    }
    if (
      !Array.isArray(parsed) ||
      parsed.length === 0 ||
      !parsed.every((a) => typeof a === 'string' && a !== '')
    )
      throw new ConfigError(`${name} must be a non-empty JSON array of non-empty strings`);
    return parsed as string[];
  }
  if (/['"\\]/.test(t))
    throw new ConfigError(
      `${name} has quotes or backslashes: it is split on whitespace, not by a shell; write it as a JSON array (["node","-e","..."])`,
    );
  const words = t.split(/\s+/).filter(Boolean);
  if (words.length === 0) throw new ConfigError(`${name} is empty`);
  return words;
}

/** An http(s) URL; the message never repeats the value (it is a secret). */
function webhookUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new ConfigError(
      'DEPLOY_SLACK_WEBHOOK_URL is not a URL (value not shown: it is a secret)',
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new ConfigError('DEPLOY_SLACK_WEBHOOK_URL must be an https:// URL (value not shown)');
  return url.toString();
}

/** Empty strings count as unset, as in most .env files. */
function withoutBlanks(
  env: Record<string, string | undefined>,
): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
}

export function loadConfig(
  env: Record<string, string | undefined>,
  localWho: string,
): DeployConfig {
  const parsed = schema.safeParse(withoutBlanks(env));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const name = String(issue?.path[0] ?? 'configuration');
    if (issue?.code === 'invalid_type' && name in required)
      throw new ConfigError(`${name} is required (${required[name]})`);
    throw new ConfigError(`${name} ${issue?.message ?? 'is invalid'}`);
  }
  const c = parsed.data;
  const privateKey = readEither(
    env,
    'VM_SSH_KEY',
    'VM_SSH_KEY_FILE',
    'the private key the deploy logs in with',
  );
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(privateKey)) {
    throw new ConfigError(
      'VM_SSH_KEY / VM_SSH_KEY_FILE does not hold a private key (expected a -----BEGIN ... PRIVATE KEY----- block)',
    );
  }
  const knownHosts = readEither(
    env,
    'VM_KNOWN_HOSTS',
    'VM_KNOWN_HOSTS_FILE',
    "the VM's host key line(s), e.g. from `ssh-keyscan -p PORT HOST`",
  );
  return {
    ...(c.DEPLOY_RELEASE_COMMAND
      ? { releaseCommand: parseReleaseCommand(c.DEPLOY_RELEASE_COMMAND) }
      : {}),
    releaseTimeoutS: c.DEPLOY_RELEASE_TIMEOUT_S,
    ...(c.DEPLOY_SLACK_WEBHOOK_URL
      ? { slackWebhookUrl: webhookUrl(c.DEPLOY_SLACK_WEBHOOK_URL) }
      : {}),
    host: c.VM_HOST,
    user: c.VM_USER,
    port: c.VM_SSH_PORT,
    privateKey,
    knownHosts,
    remoteDir: c.BERTH_REMOTE_DIR.replace(/\/+$/, '') || '/',
    healthPath: c.DEPLOY_HEALTH_PATH,
    healthTimeoutS: c.DEPLOY_HEALTH_TIMEOUT_S,
    healthIntervalS: c.DEPLOY_HEALTH_INTERVAL_S,
    healthSuccesses: c.DEPLOY_HEALTH_SUCCESSES,
    keep: c.DEPLOY_KEEP,
    backupKeep: c.DEPLOY_BACKUP_KEEP,
    lockWaitS: c.DEPLOY_LOCK_WAIT_S,
    proxyImage: c.PROXY_IMAGE,
    network: c.BERTH_NETWORK,
    who: (c.DEPLOY_WHO ?? (c.GITHUB_ACTOR ? `${c.GITHUB_ACTOR}@github-actions` : localWho)).replace(
      /[^A-Za-z0-9@._-]/g,
      '_',
    ),
  };
}
