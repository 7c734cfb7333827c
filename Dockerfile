# The artifacts server as a container image. Build: `make build` (or `docker build -t personal-server-artifacts .`);
# run: `make up` (compose.yaml). See docs/deployment.md.
#
# BASE is any Node 24 image with npm and a `node` user (uid 1000); the default is the official one.
ARG BASE=node:24-bookworm-slim

# --- build: the locked dependencies of the server and the SDK, compiled, then a production-only copy ---
FROM ${BASE} AS build
WORKDIR /src
# pnpm at the version package.json pins (corepack is not used).
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml .npmrc ./
RUN npm install --global --no-fund --no-audit --loglevel=error "pnpm@$(node -p 'require("./package.json").packageManager.split("@")[1]')"
COPY packages/artifacts/package.json packages/artifacts/
COPY apps/server/package.json apps/server/
COPY apps/web/package.json apps/web/
# Only the server, what it depends on (the SDK, the grantee page), and the root's build tools:
# nothing from infra, bench or the CLI.
RUN pnpm install --frozen-lockfile --filter "@personal-server/server..." --filter personal-server-artifacts
COPY tsconfig.base.json ./
COPY packages/artifacts packages/artifacts
COPY apps/server apps/server
COPY apps/web apps/web
RUN pnpm --filter "@personal-server/server..." run build \
 && pnpm --filter @personal-server/server deploy --prod --legacy /out

# --- runtime: built JS and production dependencies only, as the unprivileged `node` user ---
FROM ${BASE}
# Metrics on their own port, all interfaces inside the container: publish 9464 on the host's
# 127.0.0.1 only (compose.yaml does), or set ARTIFACTS_METRICS_TOKEN.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    ARTIFACTS_METRICS_LISTEN=0.0.0.0:9464 \
    ARTIFACTS_LOCAL_DIR=/data
WORKDIR /app
COPY --from=build /out /app
# Local storage and its generated keys live on the volume: owned by node, mode 0700 (the SDK
# refuses a directory others may write). Nothing secret is in any layer: keys are made at first start.
RUN mkdir -p /data && chown node:node /data && chmod 0700 /data
USER node
VOLUME ["/data"]
EXPOSE 8080 9464
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health').then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"]
# node itself is PID 1: SIGTERM drains in-flight requests for ARTIFACTS_SHUTDOWN_GRACE (default 25s).
CMD ["node", "/app/dist/main.js"]
