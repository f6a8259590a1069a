// Two environments on one VM: each serves its own version on its own port, and deploys, refused
// deploys and retention in one never touch the other's container, images or :stable.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  appContainers,
  cliEnv,
  deploy,
  docker,
  explain,
  images,
  served,
  takeVm,
  versions,
  vmReady,
} from './harness.js';

/** Every image the engine holds, as `repository:tag` (dangling ones left out). */
async function imageRefs(): Promise<string[]> {
  return (await docker(['images', '--format', '{{.Repository}}:{{.Tag}}']))
    .split('\n')
    .filter((r) => r && !r.includes('<none>'));
}

/** References the VM keeps for an environment's use: `:stable` and the like, named after it. */
const refsOf = (refs: string[], env: string): string[] =>
  refs.filter((r) => r.includes(`berth-${env}`)).sort();

describe.skipIf(!vmReady)('deploy: two environments on one VM', () => {
  let releaseVm = (): void => {};
  afterAll(() => releaseVm());

  let stagingId = '';

  beforeAll(async () => {
    releaseVm = await takeVm('staging', 'testing');
  }, 900_000);

  it('staging and testing each serve their own version on their own port', async () => {
    const staging = await deploy('staging', images.v1);
    expect(staging.code, explain(staging)).toBe(0);
    const testing = await deploy('testing', images.v2);
    expect(testing.code, explain(testing)).toBe(0);

    expect(await served('staging')).toEqual({ status: 200, version: versions.v1 });
    expect(await served('testing')).toEqual({ status: 200, version: versions.v2 });
    stagingId = (await appContainers('staging'))[0]?.id ?? '';
    expect(stagingId).not.toBe('');
    expect(await appContainers('testing')).toHaveLength(1);
  });

  it("retention and refused deploys in testing never touch staging's container, images or :stable", async () => {
    const refsBefore = refsOf(await imageRefs(), 'staging');
    expect(
      refsBefore.some((r) => r.endsWith(':stable')),
      `staging refs: ${refsBefore.join(', ')}`,
    ).toBe(true);

    // DEPLOY_KEEP=1: every healthy deploy in testing prunes all but the newest of testing's images.
    const keepOne = cliEnv({ DEPLOY_KEEP: '1' });
    for (const image of [images.v1, images.v2]) {
      const r = await deploy('testing', image, keepOne);
      expect(r.code, explain(r)).toBe(0);
    }
    // testing itself kept one deployed image besides its :stable.
    const testingRefs = refsOf(await imageRefs(), 'testing');
    expect(
      testingRefs.filter((r) => !r.endsWith(':stable')),
      testingRefs.join(', '),
    ).toHaveLength(1);
    const refused = await deploy('testing', images.unhealthy, keepOne);
    expect(refused.code, explain(refused)).toBe(1);

    expect(await served('testing')).toEqual({ status: 200, version: versions.v2 });
    expect(await served('staging')).toEqual({ status: 200, version: versions.v1 });
    expect((await appContainers('staging')).map((c) => c.id)).toEqual([stagingId]);
    expect(refsOf(await imageRefs(), 'staging')).toEqual(refsBefore);
    // The image staging runs is still on the VM.
    const stagingImage = (await docker(['inspect', '--format', '{{.Image}}', stagingId])).trim();
    expect(await docker(['image', 'inspect', '--format', '{{.Id}}', stagingImage])).toContain(
      stagingImage.replace(/^sha256:/, ''),
    );
  });
});
