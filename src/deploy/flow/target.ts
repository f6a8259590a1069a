// Which image a run starts: pulled by the name the user gave, found again in the history for a
// rollback, or the environment's :stable when nothing healthy is left.
import { inspectImage, pull as pullImage, envTag } from '../commands/images.js';
import { readFile } from '../commands/files.js';
import { stableRef } from '../environments.js';
import { findVersion, parseHistory, previousHealthy, repositoryOf } from '../history.js';
import { TIMEOUT_MS } from '../limits.js';
import { Failure } from './advice.js';
import { lastLine, type Live, type Run, type Target } from './run.js';

/** Picks the registry digest of a pulled image: the one for the repository that was asked for. */
export function pickDigest(ref: string, repoDigests: string[]): string | undefined {
  const asked = /@(sha256:[0-9a-f]{64})$/.exec(ref)?.[1];
  if (asked) return asked;
  const repo = repositoryOf(ref).replace(/^docker\.io\/(library\/)?/, '');
  const match =
    repoDigests.find(
      (d) => repositoryOf(d).replace(/^(docker\.io|localhost)\/(library\/)?/, '') === repo,
    ) ?? repoDigests[0];
  return match?.split('@')[1];
}

async function imageInfo(
  run: Run,
  ref: string,
): Promise<{ id: string; digests: string[] } | undefined> {
  const res = await run.run(inspectImage(ref));
  if (res.code !== 0) return undefined;
  const [id, digests] = res.stdout
    .trim()
    .split('\t')
    .map((f) => JSON.parse(f) as unknown);
  return { id: String(id), digests: (digests as string[] | null) ?? [] };
}

/** `signal`: ends the pull (default: Ctrl-C). */
export async function pull(run: Run, image: string, signal?: AbortSignal): Promise<Target> {
  run.checkInterrupt();
  const res = await run.run(pullImage(image), TIMEOUT_MS.pull, signal ?? true);
  if (res.code !== 0) {
    throw new Failure(
      `could not pull ${image} (${lastLine(res.stderr) || `exit ${res.code}`})`,
      'Nothing on the VM changed. Check the image name and tag, and that the VM is logged in to the registry (docker login on the VM)',
    );
  }
  const info = await imageInfo(run, image);
  const digest = info && pickDigest(image, info.digests);
  if (!info || !digest)
    throw new Failure(
      `${image} has no registry digest on the VM`,
      'Deploy an image pushed to a registry (a tag or repo@sha256:...)',
    );
  return { id: info.id, source: image, digest };
}

/** The version a rollback goes to: VERSION, or the last healthy one that is not serving now. */
export async function findTarget(
  run: Run,
  version: string | undefined,
  live: Live | undefined,
): Promise<Target> {
  const history = parseHistory(
    (await run.must(readFile(run.paths.history), 'cannot read the history')).stdout,
  );
  const entry = version
    ? findVersion(history, version)
    : previousHealthy(history, live?.state?.digest);
  if (!entry) {
    throw new Failure(
      version
        ? `${version} is not a healthy version in ${run.env}'s history`
        : `there is no earlier healthy version in ${run.env}'s history (versions rolled away from are skipped)`,
      `Nothing changed. See \`npm run deploy -- history --env ${run.env}\` for the versions that can be named`,
    );
  }
  // Kept on the VM by retention as berth-<env>:<digest>; otherwise pulled again by digest.
  const local = await imageInfo(run, envTag(run.env, entry.digest));
  if (local) return { id: local.id, source: entry.image, digest: entry.digest };
  const pulled = await pull(run, `${repositoryOf(entry.image)}@${entry.digest}`);
  return { ...pulled, source: entry.image };
}

/** This environment's :stable image, if the VM has one with a registry digest. */
export async function stableTarget(run: Run): Promise<Target | undefined> {
  const stable = await imageInfo(run, stableRef(run.env));
  const digest = stable && pickDigest(stableRef(run.env), stable.digests);
  return stable && digest ? { id: stable.id, source: stableRef(run.env), digest } : undefined;
}
