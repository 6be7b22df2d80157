# stella worker / API image. The same image runs `stella serve --no-api` (worker),
# `stella serve --no-worker` (API) and `stella migrate` (the Helm chart's migration Job); see
# docker-compose.yml and deploy/helm/stella. Node.js 22 (LTS); package.json's engines (>=20.3) admit it.
# test/dockerfile.test.ts checks this file statically (no Docker in CI).

# --- build: all dependencies, then the compiled CLI/serve and the prebuilt workflow bundle (dist/)
FROM node:22.23.3-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Scripts off here: `prepare` builds, and the sources are not copied yet.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json ./
COPY scripts ./scripts
COPY bin ./bin
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
COPY workers ./workers
COPY migrations ./migrations
COPY schemas ./schemas
# The first CLI run writes V8's code cache next to the build (dist/cli/<id>/cli.cjs.v8cache); the
# runtime user cannot write there, so one run here (help loads every command module) does it.
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund \
 && node bin/stella.mjs --help > /dev/null

# --- runtime: production dependencies only (no @temporalio/testing, vitest, biome), non-root
FROM node:22.23.3-bookworm-slim
# The commit stella_build_info reports: docker build --build-arg STELLA_BUILD_COMMIT=$(git rev-parse HEAD) .
ARG STELLA_BUILD_COMMIT=unknown
# libuv's pool serves file and crypto work (ingest, GET, verify); its default of 4 queues them.
ENV NODE_ENV=production STELLA_DATA_DIR=/var/lib/stella STELLA_BUILD_COMMIT=${STELLA_BUILD_COMMIT} UV_THREADPOOL_SIZE=16
WORKDIR /app
RUN groupadd --system --gid 10001 stella \
 && useradd --system --uid 10001 --gid stella --home-dir /var/lib/stella --shell /usr/sbin/nologin stella \
 && mkdir -p /var/lib/stella \
 && chown stella:stella /var/lib/stella
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
# dist/ is used while none of the sources it was built from is newer (bin/stella.mjs), so the
# sources come along unchanged from the same stage.
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/src ./src
COPY --from=build /app/workflows ./workflows
COPY --from=build /app/activities ./activities
COPY --from=build /app/workers ./workers
COPY --from=build /app/migrations ./migrations
COPY --from=build /app/schemas ./schemas
COPY --from=build /app/tsconfig.json ./
USER 10001:10001
VOLUME /var/lib/stella
EXPOSE 8787 8788
# Liveness of whichever listener the command runs: the API (serve, serve --no-worker) on
# STELLA_API_PORT, or the worker-only listener (serve --no-api) on STELLA_WORKER_HTTP_PORT.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "const p=[process.env.STELLA_API_PORT||8787,process.env.STELLA_WORKER_HTTP_PORT||8788];Promise.any(p.map(x=>fetch('http://127.0.0.1:'+x+'/healthz').then(r=>{if(!r.ok)throw 0}))).then(()=>process.exit(0),()=>process.exit(1))"]
ENTRYPOINT ["node", "bin/stella.mjs"]
CMD ["serve"]
