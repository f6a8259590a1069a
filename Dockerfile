# Berth service image: built once in CI, promoted unchanged from testing to staging to production.
#
#   docker build --build-arg APP_VERSION=1.4.2 --build-arg GIT_COMMIT=$(git rev-parse HEAD) \
#     --build-arg BUILD_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) -t acme/berth:1.4.2 .
#
# Production pins the base by digest through the build argument, e.g.
#   --build-arg NODE_IMAGE=node:24-bookworm-slim@sha256:<digest>
ARG NODE_IMAGE=node:24-bookworm-slim

# --- build: compile TypeScript with the full (dev) dependency tree --------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Manifests before sources: the npm ci layer is reused until the lockfile changes. No install
# scripts: tsc needs none, and the deploy tool's optional native add-ons would only try to compile.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src/service ./src/service
RUN npm run build && find dist -name '*.map' -delete
# The service's entry as ONE module with its packages (esbuild): Node reads and compiles one file
# instead of some 400, and a new container answers its first health probe sooner (every deploy
# waits for it). The CommonJS packages inside still need a `require` for Node's built-ins. The
# other entries (db/migrate.js, healthcheck.js) stay as tsc wrote them, beside node_modules.
RUN ["node_modules/.bin/esbuild", "dist/service/server.js", "--bundle", "--platform=node", "--format=esm", "--target=node24", "--log-level=warning", "--allow-overwrite", "--outfile=dist/service/server.js", "--banner:js=import { createRequire as berthCreateRequire } from 'node:module'; const require = berthCreateRequire(import.meta.url);"]

# --- prod-deps: production dependencies only ------------------------------------------------------
# A stage of its own, so npm's cache (~/.npm) stays here and only node_modules is copied on.
# Packages also publish their own tests, TypeScript sources/typings and source maps; Node never
# loads them, so they are dropped (15 MB of node_modules became 6 MB).
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=optional: node-pg-migrate names @types/pg as an optional peer (npm then installs it even
# without dev), and pg's pg-cloudflare is only for Cloudflare Workers; the service needs neither.
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund \
 && find node_modules -type d \( -name test -o -name tests -o -name __tests__ \) -prune -exec rm -rf {} + \
 && find node_modules -type f \( -name '*.ts' -o -name '*.mts' -o -name '*.cts' -o -name '*.map' \
      -o -name '*.test.js' -o -name '*.spec.js' \) -delete

# --- app: the runtime's files ------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS app
WORKDIR /app
ENV NODE_ENV=production \
    PORT=8000
# Owned by root and not writable by the service user: the code cannot be changed at run time.
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist/service ./dist/service
# The release step runs `node dist/service/db/migrate.js` in this image; it reads them from here.
COPY migrations ./migrations

# --- compile-cache: V8's compiled code of the service's modules (Node's compile cache) ------------
# Made once here, as the service's user (the cache is per user): the service itself runs until it
# answers its health check, then stops (Node writes the cache as it exits); the release command's
# and the HEALTHCHECK's modules are loaded. They then load sooner, time every deploy's health
# check waits for.
FROM app AS compile-cache
USER node
ENV NODE_COMPILE_CACHE=/tmp/compile-cache
RUN node dist/service/server.js >/dev/null & pid=$!; i=0; \
    until node dist/service/healthcheck.js; do \
      i=$((i + 1)); [ "$i" -le 100 ] || { kill "$pid"; exit 1; }; sleep 0.1; \
    done; \
    kill -TERM "$pid" && wait "$pid" \
 && node --input-type=module -e "for (const m of ['db/migrate', 'healthcheck']) await import('/app/dist/service/' + m + '.js');" \
 && chmod -R a+rX /tmp/compile-cache

# --- runtime ---------------------------------------------------------------------------------------
FROM app AS runtime
# Copied in owned by root, like the code: the service only reads it.
COPY --from=compile-cache --chown=root:root /tmp/compile-cache /app/.compile-cache
ENV NODE_COMPILE_CACHE=/app/.compile-cache

# The official node images have this unprivileged user (uid 1000).
USER node
EXPOSE 8000
# Node itself is PID 1: the service handles SIGTERM (readiness off, drain, exit), so `docker stop`
# is a graceful shutdown. Nothing here spawns child processes, so there are no zombies to reap.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --start-interval=1s --retries=3 \
  CMD ["node", "dist/service/healthcheck.js"]
CMD ["node", "dist/service/server.js"]

# Build metadata last: a new commit changes only these metadata layers, never the cached ones above.
ARG APP_VERSION=0.0.0-dev
ARG GIT_COMMIT=unknown
ARG BUILD_DATE=unknown
ARG SOURCE_URL=https://github.com/acme/berth
ARG NODE_IMAGE
ENV APP_VERSION=${APP_VERSION} \
    GIT_COMMIT=${GIT_COMMIT}
LABEL org.opencontainers.image.title="berth" \
      org.opencontainers.image.description="Berth web service" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      org.opencontainers.image.version="${APP_VERSION}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.base.name="${NODE_IMAGE}"
