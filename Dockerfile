# syntax=docker/dockerfile:1
# Runtime image: supervisord as PID 1 (via app-entrypoint), both workers, the exporter.
# A later issue hardens it further (digest-pinned base, OCI labels from build args).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install --require-hashes --only-binary=:all: -r /tmp/requirements.lock
COPY pyproject.toml README.md /src/
COPY common /src/common
COPY services /src/services
COPY healthcheck /src/healthcheck
COPY entrypoint /src/entrypoint
RUN /opt/venv/bin/pip install --no-deps /src \
    && /opt/venv/bin/python -m compileall -q /opt/venv

FROM ${PYTHON_IMAGE}
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin app \
    && mkdir -p /run/app && chown app:app /run/app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY supervisord.conf ./
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    APP_RUNTIME_DIR=/run/app \
    APP_METRICS_HOST=0.0.0.0 \
    APP_METRICS_PORT=8000
USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["app-health"]
ENTRYPOINT ["app-entrypoint"]
