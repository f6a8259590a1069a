// The health check, run by the image's own node inside the new container (it publishes no port;
// its own loopback always works), sent on stdin: `docker exec -i NAME node - URL TIMEOUT_MS
// INTERVAL_MS NEED`. Polls URL until NEED answers in a row are 2xx, or TIMEOUT_MS passes, then
// prints one final line. Exit 0 healthy, 1 not healthy in time (src/deploy/health.ts reads both).
const [url, timeoutMs, intervalMs, need] = process.argv.slice(2);
const end = Date.now() + Number(timeoutMs);
let ok = 0;
let last = 'no answer yet';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function once() {
  try {
    const res = await fetch(url, {
      signal: AbortSignal.timeout(Math.max(500, Math.min(5000, end - Date.now()))),
    });
    await res.arrayBuffer();
    last = 'HTTP ' + res.status;
    return res.ok;
  } catch (err) {
    last = String(err.cause?.code ?? err.cause?.message ?? err.message);
    return false;
  }
}

// No top-level await: the image's node may read stdin as a CommonJS script.
(async () => {
  for (;;) {
    ok = (await once()) ? ok + 1 : 0;
    if (ok >= Number(need)) {
      console.log('healthy: ' + ok + ' answers in a row, last ' + last);
      process.exit(0);
    }
    if (Date.now() >= end) {
      console.log('unhealthy: last answer ' + last);
      process.exit(1);
    }
    await sleep(Number(intervalMs));
  }
})();
