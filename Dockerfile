# syntax=docker/dockerfile:1
# Fathom's server image: `fathom` built with the release profile, run as a
# non-root user on slim Debian. PostgreSQL 16+ with pgvector 0.8+ is not in
# the image: set DATABASE_URL (docker-compose.yml starts one).
#
#   docker build -t fathom .
#   docker run --rm -p 50051:50051 -e DATABASE_URL=postgres://user:pass@db:5432/fathom fathom
#
# The build stage runs exactly `cargo build --release --locked -p fathom-cli
# --bin fathom`, which scripts/check-image-build.sh runs on a fresh clone.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The registry and target/ are BuildKit caches: rebuilds reuse them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p fathom-cli --bin fathom \
    && install -m 0755 target/release/fathom /usr/local/bin/fathom

FROM debian:bookworm-slim
# The binary needs only glibc, libgcc_s and libm, which the base image has.
RUN groupadd --system --gid 10001 fathom \
    && useradd --system --uid 10001 --gid fathom --no-create-home --shell /usr/sbin/nologin fathom
COPY --from=build /usr/local/bin/fathom /usr/local/bin/fathom
USER 10001:10001
# Beyond loopback, every request needs an API key (`fathom keys create`).
ENV FATHOM_LISTEN=0.0.0.0:50051 \
    FATHOM_AUTH=true \
    RUST_LOG=info
EXPOSE 50051
# `fathom health` exits 0 only when grpc.health.v1 answers SERVING.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["fathom", "health", "--server", "http://127.0.0.1:50051"]
ENTRYPOINT ["fathom"]
CMD ["serve"]
