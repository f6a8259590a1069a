// Images on the VM: pulled by the name the user gave, kept under this environment's own tags.
import { hex12 } from '../digest.js';
import { envRepository, type EnvName } from '../environments.js';
import { docker, type RemoteCommand } from './command.js';

export const pull = (ref: string): RemoteCommand => docker('images.pull', 'pull', '-q', ref);

export const IMAGE_FORMAT = '{{json .Id}}\t{{json .RepoDigests}}';
/** `ID<TAB>REPO_DIGESTS` as JSON fields; exit 1 when the engine has no such image. */
export const inspectImage = (ref: string): RemoteCommand =>
  docker('images.inspect', 'image', 'inspect', '--format', IMAGE_FORMAT, ref);

export const tag = (source: string, target: string): RemoteCommand =>
  docker('images.tag', 'tag', source, target);

/** Without -f: the engine refuses to remove an image a container (running or stopped) still uses. */
export const removeImages = (refs: string[]): RemoteCommand =>
  docker('images.remove', 'rmi', ...refs);

/** This environment's own tags: `REPOSITORY TAG ID` per line. */
export const listEnvImages = (env: EnvName): RemoteCommand =>
  docker(
    'images.listEnv',
    'images',
    '--no-trunc',
    '--format',
    '{{.Repository}} {{.Tag}} {{.ID}}',
    envRepository(env),
  );

/** Every tag of one image id, to decide whether anyone else still names it. */
export const imageTags = (id: string): RemoteCommand =>
  docker('images.tags', 'image', 'inspect', '--format', '{{json .RepoTags}}', id);

/** This environment's tag for one version: berth-<env>:<12 hex digits of its digest>. */
export const envTag = (env: EnvName, digest: string): string =>
  `${envRepository(env)}:${hex12(digest)}`;
