# syntax=docker/dockerfile:1
# ClawTriage appliance image: the `clawtriage` binary, Postgres 15 and Redis,
# started together by scripts/start-fly.sh.

# --- build -------------------------------------------------------------------
# Pinned to bookworm so the binary links against the same glibc as the runtime.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and compiled dependencies between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin clawtriage \
    && cp target/release/clawtriage /usr/local/bin/clawtriage

# --- runtime -----------------------------------------------------------------
FROM debian:bookworm-slim

# No default cluster: the supervisor creates its own under $DATA_ROOT/postgres.
# util-linux provides setpriv/setsid/flock for the supervisor. Versions come
# from bookworm's stable repository, which only takes security/bug fixes.
# hadolint ignore=DL3008
RUN mkdir -p /etc/postgresql-common/createcluster.d \
    && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/no-main-cluster.conf \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
        postgresql-15 \
        redis-server \
        git \
        ca-certificates \
        util-linux \
    && rm -rf /var/lib/apt/lists/*

COPY --from=build /usr/local/bin/clawtriage /usr/local/bin/clawtriage
COPY scripts/start-fly.sh scripts/lib.sh /app/scripts/

ENV DATA_ROOT=/data \
    PORT=8080 \
    HOST=0.0.0.0 \
    PG_BINDIR=/usr/lib/postgresql/15/bin \
    CLAWTRIAGE_BIN=/usr/local/bin/clawtriage

WORKDIR /app
EXPOSE 8080
# Exec form: the supervisor (bash running the script) is the main process and
# receives Fly's kill_signal itself.
ENTRYPOINT ["bash", "/app/scripts/start-fly.sh"]
