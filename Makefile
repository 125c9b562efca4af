# Two commands set everything up on a fresh machine:
#   make demo   the main job: export the demo parts and the composed model (reusing the newest ones
#               when nothing changed; make demo DEMO_FLAGS=--fresh exports anew), write their TF Serving
#               configs from tfsk.toml, serve them on the embedded devserver, query them over gRPC
#   make test   run the test suite (.ci/run runs exactly this)
# Both create the virtual environment in .venv on first use and install the pinned dependencies.

PYTHON ?= python3
VENV ?= .venv
DEMO_PORT ?= 8500
DEMO_FLAGS ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.tfsk-installed

.PHONY: demo test install bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[all,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tfsk demo --declaration tfsk.toml --port $(DEMO_PORT) $(DEMO_FLAGS)

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_client.py
	$(BIN)/python benchmarks/bench_devserver.py
	$(BIN)/python benchmarks/bench_rest.py
	$(BIN)/python benchmarks/bench_batching.py
	$(BIN)/python benchmarks/bench_memory.py

clean:
	rm -rf $(VENV) demo-models build *.egg-info benchmarks/results
