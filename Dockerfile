# seldon-gateway container image.
#   docker build -t seldon-gateway:0.1.0 --build-arg SOURCE_URL="$(git remote get-url origin)" --build-arg REVISION="$(git rev-parse HEAD)" .
#   docker run -p 8080:8080 -p 127.0.0.1:8877:8877 -v ~/.kube:/kube:ro -e KUBECONFIG=/kube/config seldon-gateway:0.1.0 serve --admin-host 0.0.0.0
# Outside a cluster the admin port (8877: /metrics, /routes, the admin page) binds 127.0.0.1, which
# a published port cannot reach from the host: --admin-host 0.0.0.0 opens it inside the container.
# It then answers whoever reaches the published port, so publish it on the host's loopback as above,
# or require a token: -v "$PWD/admin-token:/run/admin-token:ro" ... --admin-token-file /run/admin-token.
# In a cluster it needs no arguments beyond `serve --kubernetes` (deploy/kustomize and the Helm chart
# set them): the in-cluster service account is found, and the admin port binds 0.0.0.0 for the probes.
# test/deploy/docker-install.test.ts repeats the runtime stage's install without Docker.

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
# The build copies the .proto files the gateway loads at run time (KEDA's scaler) into dist/.
COPY scripts/copy-assets.mjs scripts/
RUN npm run build

# ---- deps: production dependencies only -------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# ---- runtime ----------------------------------------------------------------------------------
FROM ${NODE_IMAGE}
# The version is package.json's (test/deploy/release.unit.test.ts checks that they agree); where the source is
# and which commit, the build says (--build-arg SOURCE_URL, REVISION).
ARG VERSION=0.1.0
ARG SOURCE_URL=""
ARG REVISION=""
LABEL org.opencontainers.image.title="seldon-gateway" \
      org.opencontainers.image.description="A drop-in replacement for Ambassador in front of Seldon Core: SeldonDeployments in, REST and gRPC routing out." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.revision="${REVISION}"
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# main.js reads its version from here.
COPY package.json LICENSE ./
# The image's `node` user, by number: runAsNonRoot can only verify a numeric user.
USER 1000:1000
# 8080: REST and gRPC (h2c); 8877: admin (/healthz /readyz /routes /metrics).
EXPOSE 8080 8877
ENTRYPOINT ["node", "dist/gateway/main.js"]
CMD ["serve"]
