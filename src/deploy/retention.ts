// What to prune after a healthy deploy, decided from data only: this environment's own tags
// (berth-<env>:<digest>), the registry names it pulled them by, and its stopped app containers.
// A version is an image and the containers made from it: they go together, containers first, so
// the engine never refuses to remove an image a stopped container still uses (which would leave
// the image behind with no name this tool knows). Another environment's tags never enter the
// plan, and neither does `:stable` or what serves now. A version's settings snapshot goes with
// its image.
import { hex12 } from './digest.js';

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
  /** This environment's app containers, with the digest they were deployed from (label). */
  containers: { name: string; state: string; digest?: string }[];
  live?: string;
  /** Every name each image id carries (RepoTags), where known. */
  names?: Record<string, string[]>;
  /** The image references this environment deployed by (from history): only those are removed. */
  deployedRefs?: string[];
  /** Matches another environment's own tag (berth-<other>:...): such an image stays named. */
  otherEnvTag?: RegExp;
}

export interface RetentionPlan {
  /** Stopped containers to remove, before any image. */
  removeContainers: string[];
  /** This environment's tags to remove (`berth-<env>:<tag>`). */
  untag: string[];
  /** Registry names (e.g. repo:v1) to remove after the tags, so the image itself goes. */
  removeNames: string[];
  /** The versions (digest12 tags) whose settings snapshot stays: exactly those whose image stays. */
  keepSettings: string[];
}

const running = (state: string) => /^(running|restarting|paused)$/i.test(state);
const bare = (ref: string) => ref.replace(/^localhost\//, '');

export function planRetention(i: RetentionInput): RetentionPlan {
  const rank = (tag: string): number => {
    const at = i.healthy.findIndex((d) => hex12(d) === tag);
    return at === -1 ? Number.MAX_SAFE_INTEGER : at;
  };
  const deployTags = i.images
    .filter((img) => img.tag !== 'stable')
    .sort((a, b) => rank(a.tag) - rank(b.tag));
  const dropped = deployTags.slice(i.keep).filter((img) => !i.protectedIds.includes(img.id));
  const droppedTags = new Set(dropped.map((img) => img.tag));

  // Container names carry their creation time, so sorting by name sorts by age (newest first).
  const stopped = i.containers
    .filter((c) => c.name !== i.live && !running(c.state))
    .sort((a, b) => b.name.localeCompare(a.name));
  const removeContainers = stopped
    .filter((c, at) => at >= i.keep || (c.digest !== undefined && droppedTags.has(hex12(c.digest))))
    .map((c) => c.name);

  // A container that stays (running, or kept) still needs its image: its names stay too.
  const staying = new Set(
    i.containers
      .filter((c) => !removeContainers.includes(c.name) && c.digest)
      .map((c) => hex12(c.digest ?? '')),
  );
  const deployed = new Set((i.deployedRefs ?? []).map(bare));
  const removeNames: string[] = [];
  for (const img of dropped) {
    if (staying.has(img.tag)) continue;
    const names = i.names?.[img.id];
    if (!names || names.some((n) => i.otherEnvTag?.test(n))) continue;
    // Only names this environment deployed by: an image someone pulled by hand stays.
    removeNames.push(...names.filter((n) => deployed.has(bare(n))));
  }
  return {
    removeContainers,
    untag: dropped.map((img) => img.tag),
    removeNames: [...new Set(removeNames)],
    keepSettings: deployTags.filter((img) => !droppedTags.has(img.tag)).map((img) => img.tag),
  };
}
