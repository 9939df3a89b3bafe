# syntax=docker/dockerfile:1
#
# switchboard: one image for every command the deployment files run.
#
#   docker build --build-arg GIT_REVISION=$(git rev-parse --short=12 HEAD) -t switchboard .
#   docker run --rm -p 6066:6066 -e KAFKA_BOOTSTRAP=kafka:9092 -e WEB_HOST=<this container's DNS name> switchboard
#   docker run --rm -e KAFKA_BOOTSTRAP=kafka:9092 switchboard simulate --rate 5
#   docker run --rm switchboard check-config          # the settings a worker would see, or what is wrong
#   docker run --rm switchboard ami-double --host 0.0.0.0 --lenient   # also krt-sandbox, personal (the demo's doubles)
#
# Reproducible: the base image is pinned to a patch version and every Python dependency,
# the build backend included, is installed at the exact version and hash of requirements.lock
# (`make lock` refreshes it). Every dependency ships manylinux wheels for CPython 3.11 on
# x86_64 and aarch64, so no compiler is needed.
#
# Runs as uid 10001 and works with a read-only root filesystem: it writes only DATA_DIR
# (/data, a volume) and /tmp (a tmpfs or emptyDir); bytecode is compiled at build time.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---- build: a virtualenv with the project and its dependencies --------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first, from the lock alone: this layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock

# Then the project itself (a regular install: web/static ships as package data; dev/ holds
# the simulator and the doubles of Asterisk's AMI, KRT and personal that the demo runs).
COPY pyproject.toml ./
COPY app ./app
COPY agents ./agents
COPY tables ./tables
COPY web ./web
COPY dev ./dev
RUN pip install --no-deps --no-build-isolation . \
 && cd / && rm -rf /src \
 && python -m app check-config --quiet \
 && python -c "import importlib.resources as r; assert r.files('web').joinpath('static/index.html').is_file()" \
 && for verb in simulate ingest krt-sandbox ami-double personal; do python -m app "$verb" --help >/dev/null; done

# ---- runtime ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

ARG GIT_REVISION=unknown
LABEL org.opencontainers.image.title="switchboard" \
      org.opencontainers.image.description="Live state of a taxi company's contact center and driver supply, on Faust over Apache Kafka" \
      org.opencontainers.image.revision="${GIT_REVISION}"

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
    LOG_FORMAT=json \
    SWITCHBOARD_REVISION=${GIT_REVISION}
# WEB_HOST is deliberately not set here: it must be the name other workers use to reach
# this container (compose service name, or the pod's DNS name in Kubernetes).

# RocksDB tables live under /data: mount a volume per worker there. Docker copies this
# directory's ownership into a new empty named volume, so the non-root user can write it.
WORKDIR /home/switchboard
USER 10001:10001

EXPOSE 6066

# /health answers as soon as the web server is up ("process up"); readiness (/ready) is
# for orchestrators that route traffic, not for Docker's health status. (The doubles and
# the simulator run without a web server: their compose services disable this check.)
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('WEB_PORT', '6066'), timeout=4)"]

ENTRYPOINT ["python", "-m", "app"]
CMD ["worker", "-l", "info"]
