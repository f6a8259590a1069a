// One GET through the proxy with a given X-Request-Id, from inside a container on the project
// network; prints the status (0 when there was no answer). proxy.sh runs it as
// `node -e "$probe" URL ID` in the new container (its own stdin carries proxy.sh itself).
const [url, id] = process.argv.slice(-2);
fetch(url, { headers: { 'x-request-id': id }, signal: AbortSignal.timeout(3000) })
  .then(async (r) => {
    await r.arrayBuffer();
    console.log(r.status);
  })
  .catch(() => console.log(0));
