# syntax=docker/dockerfile:1
#
# The `skywire` binary in a small non-root image. One image for every
# service; the command picks the service:
#
#   docker build -t skywire .
#   docker run --rm skywire serve gateway      # or: serve pool|dht|chain, keys ..., node
#
# Each service also has a binary of its own (skywire-gateway, skywire-pool,
# skywire-dht, skywire-chain), the same as `skywire serve <service>`.
#
# The container defaults below bind the three endpoints on all interfaces
# (SWP/1 7337, gRPC admin 7338, HTTP /metrics /healthz /readyz 7339) and keep
# state in /var/lib/skywire. Orchestrators probe /healthz and /readyz on 7339,
# so there is no HEALTHCHECK.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- build -------------------------------------------------------------------
FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# Crates build C (secp256k1, ring, bundled SQLite) with the image's gcc; the
# protobufs compile with protox, so no protoc is needed.
COPY . .
# The registry and target/ live in BuildKit cache mounts, so a rebuild after
# an edit recompiles only what changed. target/ is not part of the image:
# copy the binaries out in the same step.
RUN --mount=type=cache,id=skywire-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=skywire-cargo-git,target=/usr/local/cargo/git \
    --mount=type=cache,id=skywire-target,target=/src/target \
    cargo build --release --locked -p skywire \
 && install -D -m 0755 -t /out target/release/skywire target/release/skywire-gateway \
      target/release/skywire-pool target/release/skywire-dht target/release/skywire-chain

# ---- runtime -----------------------------------------------------------------
FROM ${RUNTIME_IMAGE}
# ca-certificates unpinned on purpose: it should follow Debian's updates.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# A fixed numeric uid/gid so Kubernetes' runAsNonRoot can check it and volume
# ownership is predictable. key/ is where a shared node key is mounted (see
# docker-compose.yml and k8s/): 0700, like the data directory itself.
RUN groupadd --system --gid 10001 skywire \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/skywire \
      --no-create-home --shell /usr/sbin/nologin skywire \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/skywire /var/lib/skywire/key
COPY --from=builder /out/ /usr/local/bin/

ENV SKYWIRE_DATA_DIR=/var/lib/skywire \
    SKYWIRE_LISTEN=0.0.0.0:7337 \
    SKYWIRE_ADMIN=0.0.0.0:7338 \
    SKYWIRE_HTTP=0.0.0.0:7339 \
    RUST_LOG=info

USER 10001:10001
WORKDIR /var/lib/skywire
VOLUME ["/var/lib/skywire"]
# 7337 SWP/1 (gateway), 7338 gRPC admin + grpc.health.v1, 7339 HTTP metrics/probes.
# (The DHT and the chain open no SWP/1 port: the gateways carry their traffic.)
EXPOSE 7337 7338 7339
ENTRYPOINT ["skywire"]
CMD ["--help"]
