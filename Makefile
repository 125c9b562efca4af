# Two commands set everything up on a fresh machine:
#   make demo   the main job: export the demo parts and the composed model (reusing the newest ones
#               when nothing changed; make demo DEMO_FLAGS=--fresh exports anew), write their TF Serving
#               configs from tfsk.toml, serve them on the embedded devserver, query them over gRPC
#   make test   run the test suite (.ci/run runs exactly this), ruff and mypy included
#               (tests/test_static_checks.py; mypy alone: .venv/bin/python tools/typecheck.py)
#   make test-engine   `docker compose up` for real on a podman engine of its own (tests/engine, ~4-10 min; .ci/run runs it after make test)
# Both create the virtual environment in .venv on first use and install the pinned dependencies.

PYTHON ?= python3
VENV ?= .venv
DEMO_PORT ?= 8500
DEMO_FLAGS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.tfsk-installed

.PHONY: demo test test-engine engine-tools install tools bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[all,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tfsk demo --declaration tfsk.toml --port $(DEMO_PORT) $(DEMO_FLAGS)

# Real tools some checks use: docker-compose validates the compose file, promtool and prometheus
# check and scrape the metrics. Installed from Debian (pinned) when missing and this is root with
# apt; otherwise, or if the install fails, those checks skip and say why.
DEBIAN_TOOLS := docker-compose=1.29.2-3 prometheus=2.42.0+ds-5+deb12u1

tools:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	    && { ! command -v docker-compose >/dev/null || ! command -v promtool >/dev/null; }; then \
	  echo "installing $(DEBIAN_TOOLS) from Debian for the compose and metrics checks"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBIAN_TOOLS); } >/dev/null 2>&1 \
	    || echo "note: could not install $(DEBIAN_TOOLS); the checks that need them will skip"; \
	fi

test: $(STAMP) tools
	$(BIN)/pytest $(PYTEST_ARGS)

# `docker compose up` for real on a container engine (tests/engine, ~4-10 min; .ci/run runs it after make test): podman of the test's own
# (its own containers.conf, storage and API socket under a temporary folder, stopped afterwards), the real
# docker-compose.yml on the host network, stand-in images built from Debian. Installs podman, debootstrap
# and docker-compose from Debian (pinned) as root with apt; where it cannot, it says "skipped: ..." and
# exits 0.
ENGINE_TOOLS := podman=4.3.1+ds1-8+deb12u1+b3 debootstrap=1.0.128+nmu2+deb12u2 docker-compose=1.29.2-3

engine-tools:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	    && { ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null \
	         || ! command -v docker-compose >/dev/null; }; then \
	  echo "installing $(ENGINE_TOOLS) from Debian for the engine test"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      $(ENGINE_TOOLS); } >/dev/null 2>&1 || echo "note: could not install $(ENGINE_TOOLS)"; \
	fi

test-engine: $(STAMP) engine-tools
	@missing=""; for tool in podman debootstrap docker-compose docker; do \
	  command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then echo "skipped: make test-engine needs$$missing (installed from Debian only as root with apt)"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "skipped: make test-engine runs its podman engine as root"; exit 0; fi; \
	$(BIN)/pytest -m engine -p no:cacheprovider -s --timeout 3600 tests/engine $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_client.py
	$(BIN)/python benchmarks/bench_devserver.py
	$(BIN)/python benchmarks/bench_rest.py
	$(BIN)/python benchmarks/bench_batching.py
	$(BIN)/python benchmarks/bench_tune.py
	$(BIN)/python benchmarks/bench_memory.py
	$(BIN)/python benchmarks/bench_shadow.py

clean:
	rm -rf $(VENV) demo-models build *.egg-info benchmarks/results
