# seldon-gateway container image.
#   docker build -t seldon-gateway:0.1.0 .
#   docker run -p 8080:8080 -p 8877:8877 -v ~/.kube:/kube:ro -e KUBECONFIG=/kube/config seldon-gateway:0.1.0
# In a cluster it needs no arguments beyond `serve --kubernetes` (deploy/kustomize sets them):
# the in-cluster service account is found, and the admin port binds 0.0.0.0 for the probes.
# test/docker-install.test.ts repeats the runtime stage's install without Docker.

# Node 24 LTS: the runtime CI tests (.ci/run pins the same 24.x line). Node 20 is end-of-life.
ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: compile TypeScript with the dev dependencies --------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY gateway gateway
COPY routing routing
COPY source source
COPY examples examples
RUN npm run build

# ---- deps: production dependencies only -------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# ---- runtime ----------------------------------------------------------------------------------
FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# main.js reads its version from here.
COPY package.json ./
# The image's `node` user, by number: runAsNonRoot can only verify a numeric user.
USER 1000:1000
# 8080: REST and gRPC (h2c); 8877: admin (/healthz /readyz /routes /metrics).
EXPOSE 8080 8877
ENTRYPOINT ["node", "dist/gateway/main.js"]
CMD ["serve"]
