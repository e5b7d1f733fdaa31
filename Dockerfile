# syntax=docker/dockerfile:1
# Rampart: `rampart serve` and `rampart guard` from one image (docker-compose.yml picks the command).
# Stages: build (dev dependencies, compile) -> runtime (production dependencies only, non-root).
# The `demo` target adds examples/demo-service on top of the runtime image.

FROM node:20-slim AS build
WORKDIR /app
# Manifests first, so the dependency layer is cached until the lockfile changes.
COPY package.json package-lock.json ./
COPY sdk/package.json sdk/
RUN npm ci
COPY . .
# dist/cli.js bundles the SDK from source and keeps npm dependencies external (scripts/build.mjs);
# sdk/dist is the built @rampart/sdk the demo imports through the workspace link.
RUN npm run build

FROM node:20-slim AS runtime
WORKDIR /app
COPY package.json package-lock.json ./
COPY sdk/package.json sdk/
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY --from=build /app/sdk/dist ./sdk/dist
COPY openapi ./openapi
# Listen on every interface inside the container; a non-loopback HOST makes the server refuse to
# start without RAMPART_ADMIN_TOKENS, so tokens are mandatory here.
ENV HOST=0.0.0.0 PORT=8080
EXPOSE 8080
USER node
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/readyz', { signal: AbortSignal.timeout(2000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["serve"]

# The demo service (examples/demo-service/server.js) with the built SDK; compose builds this target.
FROM runtime AS demo
COPY --chown=node:node examples/demo-service ./examples/demo-service
ENV PORT=3000
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz', { signal: AbortSignal.timeout(2000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node"]
CMD ["examples/demo-service/server.js"]

# The default target is the server.
FROM runtime
