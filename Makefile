# The two set-up commands of the README: `make demo` and `make test`.
# Each creates .venv with the first Python 3.11+ it finds and installs the project into it.
# Evaluated once (:=); pyenv shims of versions that are not installed are silenced.
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo $$p; break; }; done)
PYTHON := $(PYTHON)
VENV := .venv
BIN := $(VENV)/bin
OUT ?= demo-output

.PHONY: demo test bench clean notebooks binder-check binder-lock browser-test

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

# tests/ and, under nbval, every cell of notebooks/*.ipynb (setup.cfg [tool:pytest]).
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

# Speed and memory against hand-written baselines, side by side (not part of the tests).
bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bench_fetch.py
	$(BIN)/python benchmarks/bench_frame.py
	$(BIN)/python benchmarks/bench_plots.py

# --- Notebooks, Binder, and the dashboard in a real browser ---------------------------------------
# Binder's Python (binder/runtime.txt says python-3.11), else the one found above.
BINDER_PYTHON ?= $(shell p=python$$(sed -n 's/^python-//p' binder/runtime.txt); \
	$$p -c 'import sys' >/dev/null 2>&1 && echo $$p || echo $(PYTHON))
BINDER_PYTHON := $(BINDER_PYTHON)
BROWSER_VENV := .venv-browser
BROWSER_OUT ?= browser-test-output

# Run the notebooks again and save their outputs: what nbval compares new runs with in `make test`.
notebooks: $(VENV)/.installed-test
	$(BIN)/python tools/run_notebooks.py --write

# Binder cannot be reached from here: build a fresh environment from exactly binder/requirements.txt
# (as repo2docker does, from the repository root) and run every notebook in it; fails if a cell raises.
binder-check:
	@set -e; tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/nb_ops-binder.XXXXXX"); trap 'rm -rf "$$tmp"' EXIT; \
	echo "binder-check: a fresh $(BINDER_PYTHON) environment from binder/requirements.txt in $$tmp"; \
	$(BINDER_PYTHON) -m venv "$$tmp/venv"; \
	$(QUIET_BUILD) "$$tmp/venv/bin/python" -m pip install --quiet -r binder/requirements.txt; \
	"$$tmp/venv/bin/python" -m pip check; \
	"$$tmp/venv/bin/python" tools/run_notebooks.py

# Resolve binder/requirements.in afresh and pin every package into binder/requirements.txt.
binder-lock:
	@set -e; tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/nb_ops-binder.XXXXXX"); trap 'rm -rf "$$tmp"' EXIT; \
	$(BINDER_PYTHON) -m venv "$$tmp/venv"; \
	$(QUIET_BUILD) "$$tmp/venv/bin/python" -m pip install --quiet -r binder/requirements.in; \
	{ sed -n '1,/^[^#]/{/^#/p}' binder/requirements.txt; \
	  "$$tmp/venv/bin/python" -m pip freeze --exclude-editable; \
	  echo "# nb_ops itself, from this checkout (its unpinned dependencies are all pinned above)."; \
	  echo "-e ."; } > "$$tmp/requirements.txt"; \
	mv "$$tmp/requirements.txt" binder/requirements.txt; \
	echo "binder-lock: wrote binder/requirements.txt; now run make binder-check"

$(BROWSER_VENV)/.installed: binder/requirements.txt tests/browser/requirements.txt setup.cfg pyproject.toml
	rm -rf $(BROWSER_VENV)
	$(BINDER_PYTHON) -m venv $(BROWSER_VENV)
	$(QUIET_BUILD) $(BROWSER_VENV)/bin/python -m pip install --quiet -r tests/browser/requirements.txt
	@touch $@

# JupyterLab on 127.0.0.1 runs notebooks/03_live_monitoring.ipynb in headless Chromium and checks the
# dashboard; screenshots go to $(BROWSER_OUT)/. CHROMIUM is the browser binary (the script reads the
# same variable); Debian's /usr/bin/chromium is installed here if it is the one missing and we are root.
# Runs sharing an output folder take turns; to run two at once, give one its own: BROWSER_OUT=/tmp/bt2
CHROMIUM ?= /usr/bin/chromium
browser-test: $(BROWSER_VENV)/.installed
	@test -x "$(CHROMIUM)" || { \
	  if [ "$(CHROMIUM)" = /usr/bin/chromium ] && [ "$$(id -u)" = 0 ]; then \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  elif [ "$(CHROMIUM)" = /usr/bin/chromium ]; then \
	    echo "browser-test needs Debian's chromium at /usr/bin/chromium: sudo apt-get install -y chromium" >&2; exit 1; \
	  else echo "browser-test: CHROMIUM=$(CHROMIUM) is not an executable file" >&2; exit 1; fi; }
	CHROMIUM="$(CHROMIUM)" $(BROWSER_VENV)/bin/python tests/browser/check_dashboard.py --out $(BROWSER_OUT)

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info .pytest_cache $(BROWSER_VENV) $(BROWSER_OUT)
