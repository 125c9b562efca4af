# Two commands set everything up on a fresh machine:
#   make demo   export the demo parts and the composed model, and show what was written
#   make test   run the test suite
# Both create the virtual environment in .venv on first use and install the pinned dependencies.

PYTHON ?= python3
VENV ?= .venv
DEMO_BASE ?= $(CURDIR)/demo-models
BIN := $(VENV)/bin
STAMP := $(VENV)/.tfsk-installed

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tfsk export demo --base $(DEMO_BASE)
	$(BIN)/tfsk export list --base $(DEMO_BASE)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(DEMO_BASE) build *.egg-info
