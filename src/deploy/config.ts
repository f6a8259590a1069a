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
  /**
   * The app's settings from CI (DEPLOY_APP_SETTINGS names them, DEPLOY_SECRETS_JSON holds the
   * values), in allow-list order; written into app.env by every deploy. Values never printed.
   */
  appSettings?: Record<string, string>;
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
  DEPLOY_APP_SETTINGS: z.string().optional(),
  DEPLOY_SECRETS_JSON: z.string().optional(),
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

/** Set by the deploy itself on every app container (docker's --env wins over --env-file). */
const SET_BY_DEPLOY = ['PORT', 'HOST'];
/** docker reads an env file line by line with a 64 KiB buffer: leave room for the name. */
const MAX_SETTING_BYTES = 60_000;
/** Half of a UTF-16 pair: not text UTF-8 can carry (docker refuses invalid UTF-8 in an env file). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** `A,B C` -> ['A', 'B', 'C']: names of GitHub secrets, once each, in order. */
export function parseAllowList(text: string): string[] {
  const name = 'DEPLOY_APP_SETTINGS';
  const names = [...new Set(text.split(/[\s,]+/).filter(Boolean))];
  for (const n of names) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(n))
      throw new ConfigError(`${name}: "${n}" is not a variable name (letters, digits, _)`);
    if (SET_BY_DEPLOY.includes(n))
      throw new ConfigError(`${name}: ${n} is set by the deploy itself (the app listens on 8000)`);
    if (/^(VM_|DEPLOY_|GITHUB_)/i.test(n))
      throw new ConfigError(`${name}: ${n} is the deploy's own setting, never the app's`);
  }
  return names;
}

/**
 * Keeps only the allow-listed secrets of DEPLOY_SECRETS_JSON (GitHub's `toJSON(secrets)`), each a
 * value a raw env file can hold. Messages name the variable, never the value (or any of the JSON).
 */
export function pickAppSettings(
  allowList: string,
  secretsJson: string | undefined,
): Record<string, string> {
  const names = parseAllowList(allowList);
  if (names.length === 0) return {};
  if (secretsJson === undefined)
    throw new ConfigError(
      `DEPLOY_APP_SETTINGS names ${names.join(', ')} but DEPLOY_SECRETS_JSON is not set (in a workflow: DEPLOY_SECRETS_JSON: \${{ toJSON(secrets) }})`,
    );
  let secrets: unknown;
  try {
    secrets = JSON.parse(secretsJson);
  } catch {
    // JSON.parse's own message quotes the text: never shown.
    throw new ConfigError(
      'DEPLOY_SECRETS_JSON is not valid JSON (value not shown: it holds secrets)',
    );
  }
  if (typeof secrets !== 'object' || secrets === null || Array.isArray(secrets))
    throw new ConfigError('DEPLOY_SECRETS_JSON is not a JSON object of secrets (value not shown)');
  const all = secrets as Record<string, unknown>;
  const picked: Record<string, string> = {};
  for (const n of names) {
    // GitHub keeps secret names in upper case; an allow-list may not.
    const key = n in all ? n : Object.keys(all).find((k) => k.toUpperCase() === n.toUpperCase());
    const value = key === undefined ? undefined : all[key];
    if (value === undefined)
      throw new ConfigError(
        `${n} is in DEPLOY_APP_SETTINGS but there is no secret ${n}: add it to the GitHub environment's secrets, or take it off the allow-list`,
      );
    if (typeof value !== 'string') throw new ConfigError(`secret ${n} is not a string`);
    if (/[\r\n\0]/.test(value))
      throw new ConfigError(
        `secret ${n} holds a line break or NUL, which app.env (one KEY=VALUE per line, no quoting) cannot hold; value not shown`,
      );
    if (LONE_SURROGATE.test(value) || Buffer.byteLength(value) > MAX_SETTING_BYTES)
      throw new ConfigError(
        `secret ${n} is not valid UTF-8 text of at most ${MAX_SETTING_BYTES} bytes; value not shown`,
      );
    picked[n] = value;
  }
  return picked;
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
  /** Only a deploy carries the app's settings: other commands never read the secrets. */
  opts: { appSettings?: boolean } = {},
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
  const appSettings =
    opts.appSettings && c.DEPLOY_APP_SETTINGS
      ? pickAppSettings(c.DEPLOY_APP_SETTINGS, c.DEPLOY_SECRETS_JSON)
      : undefined;
  return {
    ...(appSettings && Object.keys(appSettings).length > 0 ? { appSettings } : {}),
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
