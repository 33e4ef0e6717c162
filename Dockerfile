# syntax=docker/dockerfile:1
# The cicada command in a small image, for workers and masters on Kubernetes or any container host.
#   docker build -t cicada-load .                                   # from this checkout (npm pack)
#   docker build -t cicada-load --build-arg CICADA_SOURCE=registry --build-arg CICADA_VERSION=0.1.0 .
ARG NODE_VERSION=20
# local: the package packed from this checkout; registry: cicada-load@CICADA_VERSION from npm.
ARG CICADA_SOURCE=local

# The package as npm publishes it: built here, then packed into a tarball.
FROM node:${NODE_VERSION}-slim AS source-local
WORKDIR /src
COPY package.json package-lock.json ./
# Scripts run later: prepare (the build) needs the sources, which are not copied yet.
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY . .
# npm pack runs prepare, which builds dist/ before packing.
RUN mkdir /pkg && npm pack --pack-destination /pkg \
 && printf '%s\n' /pkg/cicada-load-*.tgz > /pkg/install-spec

# The published package: nothing to build, only the name to install.
FROM node:${NODE_VERSION}-slim AS source-registry
ARG CICADA_VERSION=latest
RUN mkdir /pkg && printf 'cicada-load@%s\n' "${CICADA_VERSION}" > /pkg/install-spec

FROM source-${CICADA_SOURCE} AS source

FROM node:${NODE_VERSION}-slim
COPY --from=source /pkg /pkg
# Only the runtime dependencies; the tarball (if any) is not kept in the image.
RUN npm install --global --omit=dev --no-audit --no-fund "$(cat /pkg/install-spec)" \
 && npm cache clean --force \
 && rm -rf /pkg
# The base image's unprivileged user (node, uid 1000), by number so that Kubernetes'
# runAsNonRoot can check it. Loadfiles bundle into /tmp; nothing else is written.
USER 1000:1000
WORKDIR /home/node
ENTRYPOINT ["cicada"]
CMD ["--help"]
