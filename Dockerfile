# syntax=docker/dockerfile:1
# The production image: app-entrypoint validates the config and execs supervisord,
# which runs as PID 1 and keeps both workers and the metrics exporter alive.
#
#   docker build --build-arg VERSION=1.2.3 --build-arg REVISION=$(git rev-parse HEAD) -t app .
#   docker build --build-arg EXTRAS=otel,sentry -t app .   (traces, error reports)
#   docker run --read-only -p 8000:8000 app        (podman run: the same options)
#
# The base image is pinned to a Python patch release of the oldest supported minor
# (requires-python). Renovate (.github/renovate.json) proposes its patch releases and
# pins its digest (`python:...@sha256:<digest>`); CI also builds it on the newest.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- build: a virtual environment from the hashed lock, plus this project ---------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
# The venv gets no pip of its own: the base image's pip installs into it.
RUN python -m venv --without-pip /opt/venv
# EXTRAS: optional integrations, comma-separated (otel, sentry), each from its own
# hashed lock; they stay unimported unless configured (see the README).
#   docker build --build-arg EXTRAS=otel,sentry -t app .
ARG EXTRAS=
COPY requirements.lock requirements-otel.lock requirements-sentry.lock /tmp/
RUN set -- -r /tmp/requirements.lock; \
    IFS=','; for extra in ${EXTRAS}; do \
        if [ ! -f "/tmp/requirements-${extra}.lock" ]; then \
            echo "EXTRAS: no extra named '${extra}' (there are: otel, sentry)" >&2; exit 1; \
        fi; \
        set -- "$@" -r "/tmp/requirements-${extra}.lock"; \
    done; \
    python -m pip --python /opt/venv/bin/python install \
        --require-hashes --only-binary=:all: --no-deps "$@"
COPY pyproject.toml README.md LICENSE /src/
COPY common /src/common
COPY services /src/services
COPY healthcheck /src/healthcheck
COPY entrypoint /src/entrypoint
RUN python -m pip --python /opt/venv/bin/python install --no-deps /src \
    && /opt/venv/bin/python -m compileall -q -j 0 /opt/venv

# --- runtime: the venv and supervisord.conf; no compiler, no pip in the venv, no uv --
FROM ${PYTHON_IMAGE}
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/OWNER/REPO
LABEL org.opencontainers.image.title="supervised-service-template" \
      org.opencontainers.image.description="supervisord-managed Python workers with one aggregated /metrics" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY supervisord.conf ./
# APP_RUNTIME_DIR is the only path written at run time, so the root filesystem can
# be read-only with no mount: every OCI engine gives each container its own
# /dev/shm, a tmpfs of mode 1777 (64 MB: Docker's and Podman's --shm-size default,
# containerd's and CRI-O's for a Kubernetes pod). A --tmpfs of your own works too,
# with APP_RUNTIME_DIR pointing at it (under Podman add :U, see the README).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    APP_RUNTIME_DIR=/dev/shm/app \
    APP_METRICS_HOST=0.0.0.0 \
    APP_METRICS_PORT=8000 \
    APP_VERSION=${VERSION} \
    APP_COMMIT=${REVISION}
USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
# app-health's own code, without the app-health script: pip's console-script
# wrapper imports re, which would add about 6 ms to a check of about 20 ms
# (bench/suite.py measures this very command).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "from healthcheck.__main__ import main; main()"]
ENTRYPOINT ["app-entrypoint"]
