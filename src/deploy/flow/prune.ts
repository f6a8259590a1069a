// After a healthy deploy: read what the VM keeps, let planRetention decide, remove what it says.
import { inspectContainer, listAppContainers, removeContainers } from '../commands/app.js';
import { readFile } from '../commands/files.js';
import { imageTags, listEnvImages, removeImages } from '../commands/images.js';
import { DIGEST_PATTERN } from '../digest.js';
import { envRepository, environments } from '../environments.js';
import { parseContainerState } from '../health.js';
import { healthyDigests, parseHistory } from '../history.js';
import { pruneSettings } from '../commands/settings.js';
import { planRetention, type EnvImage, type RetentionInput } from '../retention.js';
import { together, type Run } from './run.js';

/** Keeps DEPLOY_KEEP versions besides `live`; returns what it did, for the step line. */
export async function prune(run: Run, live: string): Promise<string> {
  const input = await retentionInput(run, live);
  // Plan, look up the names of the images that go, plan again: the decision stays in planRetention.
  const names: Record<string, string[]> = {};
  for (const t of planRetention(input).untag) {
    const id = idOf(input.images, t);
    const res = await run.run(imageTags(id));
    if (res.code === 0)
      names[id] = (JSON.parse(res.stdout.trim() || '[]') as string[] | null) ?? [];
  }
  const plan = planRetention({ ...input, names });

  // Containers first: the engine refuses to remove an image a stopped container still uses.
  if (plan.removeContainers.length > 0)
    await run.must(removeContainers(plan.removeContainers), 'cannot remove old containers');
  for (const t of plan.untag) await run.run(removeImages([`${envRepository(run.env)}:${t}`]));
  let removedImages = 0;
  for (const t of plan.untag) {
    const id = idOf(input.images, t);
    const left = plan.removeNames.filter((n) => names[id]?.includes(n));
    if (left.length > 0 && (await run.run(removeImages(left))).code === 0) removedImages++;
    else if ((await run.run(imageTags(id))).code !== 0) removedImages++;
  }
  const snapshots = (
    await run.must(
      pruneSettings(run.paths.settingsDir, plan.keepSettings),
      'cannot remove old settings snapshots',
    )
  ).stdout
    .split('\n')
    .filter(Boolean).length;
  return `kept ${run.cfg.keep}: removed ${removedImages} image(s), ${plan.removeContainers.length} stopped container(s), ${snapshots} settings snapshot(s)`;
}

const idOf = (images: EnvImage[], tag: string): string =>
  images.find((i) => i.tag === tag)?.id ?? '';

/** What the VM holds for this environment, parsed: images, containers, history. */
async function retentionInput(run: Run, live: string): Promise<RetentionInput> {
  const { env } = run;
  const [historyFile, imageList, inspected, containerList] = await together([
    run.run(readFile(run.paths.history)),
    run.must(listEnvImages(env), 'cannot list images'),
    run.run(inspectContainer(live)),
    run.must(listAppContainers(env), 'cannot list containers'),
  ]);
  const history = parseHistory(historyFile.stdout);
  const images = parseEnvImages(imageList.stdout, envRepository(env));
  const liveImage =
    inspected.code === 0 ? parseContainerState(inspected.stdout)?.imageId : undefined;
  const containers = containerList.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' '))
    .map(([name = '', state = '', digest = '']) => ({
      name,
      state,
      digest: DIGEST_PATTERN.test(digest) ? digest : undefined,
    }));
  return {
    keep: run.cfg.keep,
    images,
    healthy: healthyDigests(history),
    protectedIds: [images.find((i) => i.tag === 'stable')?.id, liveImage].filter(
      (x): x is string => !!x,
    ),
    containers,
    live,
    deployedRefs: history.map((e) => e.image),
    otherEnvTag: new RegExp(`(^|/)berth-(${environments.filter((e) => e !== env).join('|')}):`),
  };
}

/**
 * `REPOSITORY TAG ID` lines -> this environment's tags. Engines differ in how they filter by
 * reference (podman also lists other names of the same image), so only its own repository counts.
 */
export const parseEnvImages = (text: string, repository: string): EnvImage[] =>
  text
    .split('\n')
    .map((l) => l.trim().split(' '))
    .filter(
      (f) =>
        f.length === 3 &&
        f[1] !== '<none>' &&
        (f[0] === repository || f[0] === `localhost/${repository}`),
    )
    .map(([, tag, id]) => ({ tag: tag as string, id: id as string }));
