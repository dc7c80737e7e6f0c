# syntax=docker/dockerfile:1
# The genq image: `genq worker` by default; the same image runs `genq migrate`, `genq lag`
# and the rest. Build from the repository root:
#   docker build --build-arg GENQ_VERSION=$(git describe --always) -t REGISTRY/genq:TAG .
# Both stages are Debian 12, so the runtime libraries are the ones the build linked against.

FROM debian:12-slim AS build
ARG GENQ_VERSION=0.0.0-docker
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential pkg-config cmake curl ca-certificates libavro-dev \
        libcurl4-openssl-dev zlib1g-dev libzstd-dev libsasl2-dev \
        libpq-dev libjansson-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# librdkafka first, in its own layer: a pinned release built from source (scripts/librdkafka
# says why), linked statically, so the runtime stage needs no librdkafka package.
COPY scripts/librdkafka scripts/librdkafka
RUN scripts/librdkafka /opt/librdkafka
COPY . .
# `deps` is skipped (the packages are installed above); release mode keeps -g for core dumps.
RUN make MODE=release RDKAFKA_PREFIX=/opt/librdkafka VERSION="$GENQ_VERSION" bin/genq \
 && install -D -m 0755 bin/genq /out/usr/local/bin/genq \
 && /out/usr/local/bin/genq --version

FROM debian:12-slim
# Runtime libraries only; libsasl2-modules carries SCRAM and PLAIN for SASL to Kafka.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libavro23 libcurl4 libpq5 libjansson4 libssl3 zlib1g libzstd1 libsasl2-2 \
        libsasl2-modules \
        ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 genq \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin genq
COPY --from=build /out/ /
# Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/genq
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/genq"]
CMD ["worker"]
