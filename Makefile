# The two set-up commands of the README: `make demo` and `make test`.
# Each creates .venv with the first Python 3.11+ it finds and installs the project into it.
# Evaluated once (:=); pyenv shims of versions that are not installed are silenced.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; done)
PYTHON := $(PYTHON)
VENV := .venv
BIN := $(VENV)/bin
OUT ?= demo-output

.PHONY: demo test bench clean

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "nb_ops needs Python 3.11 or newer on PATH" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# setuptools warns about editable installs of a flat layout on every install; the layout is deliberate.
QUIET_BUILD := PYTHONWARNINGS=ignore::UserWarning

$(VENV)/.installed-demo: $(BIN)/python setup.cfg pyproject.toml
	$(QUIET_BUILD) $(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: $(BIN)/python setup.cfg pyproject.toml
	$(QUIET_BUILD) $(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $@ $(VENV)/.installed-demo

demo: $(VENV)/.installed-demo
	$(BIN)/nb-ops demo --out $(OUT)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

# Speed and memory against hand-written baselines, side by side (not part of the tests).
bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bench_fetch.py
	$(BIN)/python benchmarks/bench_frame.py

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info .pytest_cache
