// The digest a registry stores for a tag: the same value docker/build-push-action reports in CI
// and the VM pulls by. Asked from the registry itself (Docker Registry HTTP API v2), not from
// the local engine's idea of it.

const MANIFEST_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** `127.0.0.1:5000/berth:tag` -> its `sha256:...` digest in that (plain HTTP, local) registry. */
export async function registryDigest(ref: string): Promise<string> {
  const m = /^([^/]+)\/(.+):([^:/]+)$/.exec(ref);
  if (!m) throw new Error(`not a registry/repository:tag reference: ${ref}`);
  const [, host, repo, tag] = m;
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { Accept: MANIFEST_TYPES },
    signal: AbortSignal.timeout(10_000),
  });
  const digest = res.headers.get('docker-content-digest') ?? '';
  if (!res.ok || !/^sha256:[0-9a-f]{64}$/.test(digest)) {
    throw new Error(`registry ${host} has no manifest for ${repo}:${tag} (HTTP ${res.status})`);
  }
  return digest;
}
