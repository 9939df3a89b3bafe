# syntax=docker/dockerfile:1
#
# switchboard worker image.
#
#   docker build -t switchboard .
#   docker run --rm -p 6066:6066 -e KAFKA_BOOTSTRAP=kafka:9092 -e WEB_HOST=<this container's DNS name> switchboard
#   docker run --rm -e KAFKA_BOOTSTRAP=kafka:9092 switchboard simulate --rate 5
#
# Every dependency ships manylinux wheels for CPython 3.11 on x86_64 (rocksdict included),
# so no compiler is needed. On arm64 faust-streaming has no wheel: pip builds it from its
# sdist, which falls back to pure Python when no C compiler is present (still works).

ARG PYTHON_IMAGE=python:3.11-slim

# ---- build: a virtualenv with the project and its dependencies --------------------------
FROM ${PYTHON_IMAGE} AS build

# (bytecode is compiled at install time, so the runtime image never needs to write it)
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when
# pyproject.toml changes, not on every source edit.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt

# Then the project itself (a regular, non-editable install: web/static ships as package data).
COPY app ./app
COPY agents ./agents
COPY tables ./tables
COPY web ./web
RUN pip install . \
 && cd / && python -c "import importlib.resources as r, app.settings, agents, tables.callcenter; assert r.files('web').joinpath('static/index.html').is_file()"

# ---- runtime ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="switchboard" \
      org.opencontainers.image.description="Live state of a taxi company's contact center and driver supply, on Faust over Apache Kafka"

# A fixed numeric uid/gid so Kubernetes can verify runAsNonRoot and fsGroup matches.
RUN groupadd --system --gid 10001 switchboard \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/switchboard --create-home \
            --shell /usr/sbin/nologin switchboard \
 && mkdir -p /data \
 && chown 10001:10001 /data

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WEB_BIND=0.0.0.0 \
    WEB_PORT=6066 \
    DATA_DIR=/data \
    LOG_FORMAT=json
# WEB_HOST is deliberately not set here: it must be the name other workers use to reach
# this container (compose service name, or the pod's DNS name in Kubernetes).

# RocksDB tables live under /data: mount a volume per worker there. Docker copies this
# directory's ownership into a new empty named volume, so the non-root user can write it.
WORKDIR /home/switchboard
USER 10001:10001

EXPOSE 6066

# /health answers as soon as the web server is up ("process up"); readiness (/ready) is
# for orchestrators that route traffic, not for Docker's health status.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('WEB_PORT', '6066'), timeout=4)"]

ENTRYPOINT ["python", "-m", "app"]
CMD ["worker", "-l", "info"]
