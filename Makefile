# switchboard: `make run` for a live demo, `make test` for the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
KAFKA_PORT ?= 9092
JARS := dev/kafka/target/dependency/.resolved

.PHONY: lock install broker broker-stop cluster cluster-stop run test test-cluster soak unit lint bench bench-peer profile chromium promtool clean

install: $(VENV)/.installed

# every dependency at the exact version and hashes of the lock (the image uses requirements.lock,
# this and CI requirements-dev.lock: the same versions); the project itself without build isolation
$(VENV)/.installed: requirements-dev.lock pyproject.toml
	@echo "== installing into $(VENV) (python deps from PyPI, as locked in requirements-dev.lock)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements-dev.lock
	@$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

# refresh the lock files after a change of pyproject.toml's dependencies (or to take newer releases):
# `make lock`, then `make install` and `make test`, and commit both files
UV_VERSION := 0.13.8
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --quiet
lock:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	@echo "== locking every dependency (requirements-dev.lock: test, profile, build; requirements.lock: the image's)"
	@$(VENV)/bin/uv pip compile pyproject.toml --extra test --extra profile --extra build $(LOCK_FLAGS) \
	  --custom-compile-command 'make lock' -o requirements-dev.lock
	@$(VENV)/bin/uv pip compile pyproject.toml --extra build $(LOCK_FLAGS) --constraint requirements-dev.lock \
	  --custom-compile-command 'make lock' -o requirements.lock

$(JARS): dev/kafka/pom.xml
	@echo "== resolving Apache Kafka jars from Maven Central"
	@cd dev/kafka && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime
	@touch $@

broker: $(JARS)
	@KAFKA_PORT=$(KAFKA_PORT) dev/kafka/broker.sh start

broker-stop:
	@KAFKA_PORT=$(KAFKA_PORT) dev/kafka/broker.sh stop

# three KRaft nodes on 127.0.0.1 (KAFKA_PORT, +1, +2): replication factor 3, min.insync.replicas 2
cluster: $(JARS)
	@KAFKA_PORT=$(KAFKA_PORT) KAFKA_BROKERS=3 dev/kafka/broker.sh start

cluster-stop:
	@KAFKA_PORT=$(KAFKA_PORT) KAFKA_BROKERS=3 dev/kafka/broker.sh stop

chromium:
	@command -v chromium >/dev/null || { echo "== installing Debian's chromium (dashboard tests)"; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq chromium >/dev/null; }

# promtool checks the Prometheus alert rules and scrape config in deploy/prometheus/ (tests/deploy)
promtool:
	@command -v promtool >/dev/null || { echo "== installing Debian's prometheus (promtool, for the alert rules' tests)"; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

run: install $(JARS)
	@KAFKA_PORT=$(KAFKA_PORT) dev/run.sh

# everything but the three-node cluster's fault tests (their own target below; .ci/run runs both)
test: install $(JARS) chromium promtool lint
	@$(PY) -m pytest -q -p no:cacheprovider -m "not cluster" $(PYTEST_ARGS)

# the fault tests on a three-node cluster: CLUSTER_FAULT_RUNS broker losses and a 3 -> 4 -> 2 fleet
CLUSTER_FAULT_RUNS ?= 3
test-cluster: install $(JARS)
	@echo "== fault tests on a three-node cluster, $(CLUSTER_FAULT_RUNS) broker losses and a 3 -> 4 -> 2 fleet"
	@CLUSTER_FAULT_RUNS=$(CLUSTER_FAULT_RUNS) $(PY) -m pytest -q -p no:cacheprovider -m cluster tests/cluster

# ten minutes of the full mixed load on three workers and three brokers (bench/README.md, "Soak")
soak: install $(JARS)
	@$(PY) -m bench.soak $(SOAK_ARGS)

# the habits' gate: lint and import order everywhere (tests too), types in app/ and tables/ (pyproject.toml)
lint: install
	@echo "== ruff and mypy"
	@$(VENV)/bin/ruff check app tables agents web bench tests dev
	@$(VENV)/bin/mypy

# the fast loop: the pure rules without their slowest runs (`-m slow`: those, in make test too)
unit: install
	@$(PY) -m pytest -q -p no:cacheprovider -m "not slow" tests/unit

bench: install $(JARS)
	@$(PY) -m bench.pipeline $(BENCH_ARGS)

# where one worker's time goes during a replay (py-spy, the `profile` extra)
profile: install $(JARS)
	@$(PY) -m bench.profile $(PROFILE_ARGS)

# the optional peer row of `make bench`: Quix Streams in a virtualenv of its own
# (it pins a pydantic the service does not use)
bench-peer: .venv-quix/.installed
.venv-quix/.installed:
	$(PYTHON) -m venv .venv-quix
	.venv-quix/bin/pip install -q quixstreams==3.28.1
	touch $@

clean:
	rm -rf .cache test-artifacts
