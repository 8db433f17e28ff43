# syntax=docker/dockerfile:1
# ClawTriage appliance image: the `clawtriage` binary, Postgres 15 and Redis,
# started together by scripts/start-fly.sh (the entry point, running as root
# so it can prepare the volume; it runs Postgres as `postgres`, Redis as
# `redis` and the app as `clawtriage`).
#
#   docker build -t clawtriage .        # `fly deploy` builds it the same way
#
# Lint: hadolint Dockerfile (tests/fly_scripts.rs runs it).

# --- chef: the Rust toolchain plus cargo-chef -----------------------------------
# Pinned to bookworm so the binary links against the runtime's glibc (a build
# on a newer Debian would fail there with "GLIBC_2.xx not found").
FROM rust:1-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

# --- planner: the dependency graph alone, as recipe.json -------------------------
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# --- build: dependencies first (a layer reused until Cargo.toml/Cargo.lock change),
# then the app. `cook` and `build` run in the same WORKDIR so the second reuses
# what the first compiled.
FROM chef AS build
COPY --from=planner /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bin clawtriage

# --- runtime -----------------------------------------------------------------------
FROM debian:bookworm-slim

# No default cluster: the supervisor creates its own under $DATA_ROOT/postgres,
# so the override must exist before postgresql-15 is installed. util-linux
# provides setpriv/setsid/flock/mountpoint for the supervisor; git keeps the
# mirrors. Versions come from bookworm's stable repository, which only takes
# security and bug fixes.
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
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --create-home --home-dir /home/clawtriage \
        --shell /usr/sbin/nologin clawtriage

COPY --from=build /src/target/release/clawtriage /usr/local/bin/clawtriage
COPY scripts/start-fly.sh scripts/lib.sh /app/scripts/

# APP_USER: the supervisor drops to this user for `clawtriage migrate` and
# `serve`, and gives it $DATA_ROOT/repos.
ENV DATA_ROOT=/data \
    PORT=8080 \
    HOST=0.0.0.0 \
    PG_BINDIR=/usr/lib/postgresql/15/bin \
    CLAWTRIAGE_BIN=/usr/local/bin/clawtriage \
    APP_USER=clawtriage

WORKDIR /app
EXPOSE 8080
# Exec form: the supervisor (bash running the script) is the main process and
# receives Fly's kill_signal (SIGTERM) itself.
ENTRYPOINT ["bash", "/app/scripts/start-fly.sh"]
