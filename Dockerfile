# syntax=docker/dockerfile:1
#
# One image for every traderctl process (worker pools, market data, scheduler fallback,
# migrations), plus a small Postgres-with-pg_cron image for docker-compose.
#
#   docker build -t traderctl .                          # the app (final stage: runtime)
#   docker build --target postgres -t traderctl-pg .     # Postgres 15 + pg_cron (compose only)
#
# The app image's entry point is `traderctl`: pass the subcommand as the container command,
# e.g. `docker run traderctl worker --intervals 1m --concurrency 4 --metrics-port 9100`.
# Bases are pinned to exact patch tags; pin digests (`@sha256:…`) too for reproducible builds.

ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm
ARG POSTGRES_IMAGE=postgres:15.13-bookworm

# ---------------------------------------------------------------------------------------
# postgres: the official Postgres 15 image plus pg_cron from the PGDG apt repository the
# image already configures. Local/compose only: in production the database is Supabase (or
# any managed Postgres with pg_cron). Preloading (shared_preload_libraries=pg_cron) and
# cron.database_name are set by docker-compose.yml's `command:`, next to POSTGRES_DB.
FROM ${POSTGRES_IMAGE} AS postgres
RUN apt-get update \
    && apt-get install -y --no-install-recommends "postgresql-${PG_MAJOR}-cron" \
    && rm -rf /var/lib/apt/lists/*

# ---------------------------------------------------------------------------------------
# builder: a virtualenv with the pinned dependencies, then the project itself.
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app

# Dependencies first: this layer is rebuilt only when pyproject.toml changes. The list is
# read from pyproject.toml itself, so the image runs exactly the pinned versions.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# The project, built into a wheel and installed like any user's `pip install`: the wheel
# carries everything traderctl reads at run time (migrations, SQL, the JS runtime, demo
# filters), so the runtime stage needs only the virtualenv, not the source tree.
# traderctl/ links to the top-level folders (see pyproject.toml), hence the copies beside it.
COPY README.md ./
COPY traderctl/ traderctl/
COPY worker/ worker/
COPY cli/ cli/
COPY migrations/ migrations/
COPY sql/ sql/
RUN pip wheel --no-deps -w /tmp/dist . \
    && pip install --no-deps /tmp/dist/traderctl-*.whl \
    && rm -rf /tmp/dist build

# ---------------------------------------------------------------------------------------
# runtime: slim base, no compilers, non-root, tini as PID 1.
FROM ${PYTHON_IMAGE} AS runtime
# tini forwards SIGTERM to traderctl (which drains in-flight jobs within its grace
# period) and reaps any child processes.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 traderctl \
    && useradd --system --uid 10001 --gid traderctl --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin traderctl

COPY --from=builder /opt/venv /opt/venv

# TRADERCTL_DATA_DIR: the embedded cluster is never used in a container (DATABASE_URL is
# always set), but the directory must be writable if anything looks there; /tmp is an
# emptyDir under Kubernetes' read-only root filesystem.
# TRADERCTL_METRICS_PORT: the port the HEALTHCHECK probes; pass the same value to
# `--metrics-port`.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TRADERCTL_DATA_DIR=/tmp/traderctl \
    TRADERCTL_METRICS_PORT=9100
WORKDIR /app
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 9100

# Long-running processes (worker, market-data) serve Prometheus metrics on
# TRADERCTL_METRICS_PORT; the one-shot `db migrate` has no server and compose disables the
# check for it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/metrics' % os.environ.get('TRADERCTL_METRICS_PORT', '9100'), timeout=4).close()"]

ENTRYPOINT ["tini", "--", "traderctl"]
CMD ["--help"]
