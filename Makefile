# Two commands set everything up on a fresh machine:
#   make demo   the main job: export the demo parts and the composed model (reusing the newest ones
#               when nothing changed; make demo DEMO_FLAGS=--fresh exports anew), write their TF Serving
#               configs from tfsk.toml, serve them on the embedded devserver, query them over gRPC
#   make test   run the test suite (.ci/run runs exactly this), ruff and mypy included
#               (tests/test_static_checks.py; mypy alone: .venv/bin/python tools/typecheck.py)
# Both create the virtual environment in .venv on first use and install the pinned dependencies.

PYTHON ?= python3
VENV ?= .venv
DEMO_PORT ?= 8500
DEMO_FLAGS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.tfsk-installed

.PHONY: demo test install tools bench clean

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

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_client.py
	$(BIN)/python benchmarks/bench_devserver.py
	$(BIN)/python benchmarks/bench_rest.py
	$(BIN)/python benchmarks/bench_batching.py
	$(BIN)/python benchmarks/bench_memory.py

clean:
	rm -rf $(VENV) demo-models build *.egg-info benchmarks/results
