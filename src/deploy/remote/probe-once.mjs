// One GET for `status`, run by the image's node inside the container, sent on stdin:
// `docker exec -i NAME node - URL`. Prints `STATUS BODY` (body cut at 500 bytes), or `0 ERROR`.
const url = process.argv[2];
// No top-level await: the image's node may read stdin as a CommonJS script.
(async () => {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
    console.log(res.status + ' ' + (await res.text()).slice(0, 500));
  } catch (e) {
    console.log('0 ' + (e.cause?.code ?? e.message));
    process.exit(1);
  }
})();
