// Image digests as people read them: the first 12 hex digits, as docker and the registry show.

export const DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;

/** sha256:0123456789abcdef... -> 0123456789ab (this environment's tag for that version). */
export const hex12 = (digest: string): string => digest.replace(/^sha256:/, '').slice(0, 12);

/** sha256:0123456789abcdef... -> sha256:0123456789ab; '-' for none; anything else unchanged. */
export function shortDigest(digest: string | undefined): string {
  if (!digest) return '-';
  return /^sha256:[0-9a-f]{12}/.test(digest) ? `sha256:${hex12(digest)}` : digest;
}
