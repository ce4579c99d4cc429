# syntax=docker/dockerfile:1
# The gateway image. Build: docker build -t ghcr.io/example/ai-gateway:0.1.0 .
# Node 24 LTS (Node 20 reached end of life in April 2026; package.json engines: >=22).
# Pin the base by digest in CI (node:24-bookworm-slim@sha256:...) for reproducible builds.
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: all dependencies, TypeScript compiled to dist/
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: @pulumi/kubernetes' install script wants the Pulumi CLI; nothing here needs install scripts.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
# Only the service and the smoke script (the scheduled probe runs it) are compiled into the image
# (tsc skips the include entries that are absent).
COPY service ./service
COPY scripts/smoke.ts ./scripts/smoke.ts
RUN npm run build

# ---- runtime: production dependencies and the compiled service only
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist/service ./dist/service
COPY --from=build /app/dist/scripts/smoke.js ./dist/scripts/smoke.js
# Example configs (the demo default among them); the cluster mounts its own at /etc/gateway/config.yaml.
COPY config ./config

# A fixed non-root uid/gid the Kubernetes securityContext refers to (runAsUser 10001). The app files stay
# owned by root and read-only to the process; the root filesystem is mounted read-only in the cluster, with
# an emptyDir at /tmp.
RUN groupadd --system --gid 10001 gateway && useradd --system --uid 10001 --gid gateway --no-create-home --shell /usr/sbin/nologin gateway
USER 10001:10001

EXPOSE 8080 9090
# Signals: node runs as PID 1 in exec form (no shell in between), and the gateway installs its own
# SIGTERM/SIGINT handlers (report not-ready, drain, flush spend, exit 0), so the default "PID 1 ignores
# SIGTERM" behaviour does not apply; it starts no child processes, so there are no zombies to reap.
# We do not add tini: the Deployment's `command` would override an ENTRYPOINT anyway. For local
# `docker run`, pass --init if you want an init process.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The flags are service/core/runtime-flags.ts's NODE_FLAGS (a test keeps them equal).
CMD ["node", "--max-semi-space-size=16", "dist/service/main.js", "--config", "/etc/gateway/config.yaml"]
