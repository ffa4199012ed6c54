# syntax=docker/dockerfile:1
# IoT Meter: one container that runs the compiled server (dist/src/main.js).
# Embedded defaults (PGlite, MQTT broker, file archive under /data) unless DATABASE_URL, MQTT_URL,
# INFLUX_URL or S3_BUCKET point at real services; see docs/OPERATIONS.md.
#
#   docker build -t iot-meter .
#   docker run -p 8080:8080 -p 1883:1883 -v iot-meter-data:/data iot-meter

# Node 26, the current LTS (active since October 2026). package.json says node >=20.11: every pinned
# dependency declares an engines range that includes Node 20 and 26, and the suite runs on Node 20
# (the development and CI machines have only Node 20.20). Build with another line if needed:
#   docker build --build-arg NODE_IMAGE=node:24-bookworm-slim -t iot-meter .
ARG NODE_IMAGE=node:26-bookworm-slim

# --- build: compile TypeScript (src and migrations) to dist/ ------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: the only one is esbuild's (tsx), which the build does not use.
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY migrations ./migrations
# tsconfig.build.json: rootDir "." and outDir "dist", so src/main.ts → dist/src/main.js and
# migrations/*.ts → dist/migrations/*.js, which dist/src/platform/db/migrate.js finds at ../../../migrations.
RUN npm run build

# --- production dependencies only -------------------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund --ignore-scripts

# --- runtime -----------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    DATA_DIR=/data \
    PORT=8080 \
    MQTT_BROKER_PORT=1883
WORKDIR /app
# Code stays owned by root and read-only for the app's user; only /data is writable.
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The dashboard's browser files are not compiled: they ship beside the compiled module.
COPY --from=build /app/src/modules/dashboard/public ./dist/src/modules/dashboard/public
RUN mkdir -p /data && chown node:node /data
# The node image's unprivileged user (uid 1000; deploy/k8s runs it as runAsUser 1000).
USER node
VOLUME ["/data"]
# 8080 HTTP API (/healthz, /readyz, /metrics); 1883 the embedded MQTT broker (unused when MQTT_URL is set).
EXPOSE 8080 1883
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node is PID 1 and handles SIGTERM itself (close-with-grace): it drains the journal, then exits.
STOPSIGNAL SIGTERM
CMD ["node", "--enable-source-maps", "dist/src/main.js"]
