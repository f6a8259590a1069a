// What to prune after a healthy deploy, decided from data only: this environment's own tags
// (berth-<env>:<digest>) and its stopped app containers. Another environment's tags never enter
// the plan, and neither does `:stable` or what serves now.

export interface EnvImage {
  tag: string;
  id: string;
}

export interface RetentionInput {
  keep: number;
  /** This environment's local tags (`berth-<env>:<hex12>`, `:stable`). */
  images: EnvImage[];
  /** Healthy digests, newest first (from history). */
  healthy: string[];
  /** Image ids that must stay whatever their age: the live one and :stable. */
  protectedIds: string[];
  /** This environment's app containers, `name state`. */
  containers: { name: string; state: string }[];
  live?: string;
}

export interface RetentionPlan {
  untag: string[];
  removeContainers: string[];
}

const hex12 = (digest: string) => digest.replace(/^sha256:/, '').slice(0, 12);

export function planRetention(i: RetentionInput): RetentionPlan {
  const rank = (tag: string): number => {
    const at = i.healthy.findIndex((d) => hex12(d) === tag);
    return at === -1 ? Number.MAX_SAFE_INTEGER : at;
  };
  const deployTags = i.images.filter((img) => img.tag !== 'stable').sort((a, b) => rank(a.tag) - rank(b.tag));
  const untag = deployTags.slice(i.keep).filter((img) => !i.protectedIds.includes(img.id));

  // Container names carry their creation time, so sorting by name sorts by age (newest first).
  const stopped = i.containers.filter((c) => c.name !== i.live && !/^(running|restarting|paused)$/i.test(c.state)).sort((a, b) => b.name.localeCompare(a.name));
  return { untag: untag.map((img) => img.tag), removeContainers: stopped.slice(i.keep).map((c) => c.name) };
}
