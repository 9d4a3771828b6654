# lupus_rules — developer entry points.
#
#   make lab     set up, then serve JupyterLab on notebooks/, opening on the explorer
#   make app     set up, then serve the code-free explorer app (Voila)
#   make test    set up, then run every test (pytest + nbval notebooks + browser test)
#   make bench   set up, then run benchmarks/run.py
#   make clean   remove the venv and every build/test/benchmark output
#
# "Set up" = create .venv with Python 3.11, 3.12 or 3.13 (found by
# tools/find_python.sh; override with PYTHON=/path/to/python3.13), build
# durable-rules there (tools/install_durable.sh: on 3.13 with the flag its C
# extension needs) and `pip install -e ".[test,dask,app]"` into it. The install is
# redone only when pyproject.toml is newer than the stamp file .venv/.installed.
# 3.14+ is untested: it is tried with a warning.
#
# Variables:
#   PYTHON=...        interpreter used to create the venv (only when it does not exist yet)
#   VENV=...          the venv folder (default .venv; .ci/run uses one per Python)
#   PYTEST_ARGS=...   extra arguments for pytest, e.g. make test PYTEST_ARGS="-x -k rulebook"
#   LAB_IP=, LAB_PORT=  where `make lab` listens (default 127.0.0.1:8888)
#   APP_IP=, APP_PORT=  where `make app` listens (default 127.0.0.1:8866); another IP than
#                       127.0.0.1 exposes the app (it has no password) to that network

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        ?= .venv
VENV_PY     := $(VENV)/bin/python
STAMP       := $(VENV)/.installed
EXTRAS      := test,dask,app
PYTEST_ARGS ?=
LAB_IP      ?= 127.0.0.1
LAB_PORT    ?= 8888
APP_IP      ?= 127.0.0.1
APP_PORT    ?= 8866

.PHONY: help setup lab app test bench clean

help:
	@echo "make lab     # set up (Python 3.11-3.13 venv) and open the workbench in JupyterLab"
	@echo "make app     # set up and serve the code-free explorer app (Voila) on 127.0.0.1:8866"
	@echo "make test    # set up and run every test (pytest, nbval notebooks, browser test)"
	@echo "make bench   # set up and run benchmarks/run.py"
	@echo "make clean   # remove .venv and build/test/benchmark outputs"

setup: $(STAMP)

# Create the venv. Order-only prerequisite of the stamp, so an existing venv
# is never recreated just because of file times.
$(VENV_PY):
	@interp="$$(PYTHON="$(PYTHON)" bash tools/find_python.sh)" || exit 1; \
	echo "==> creating $(VENV) with $$interp ($$("$$interp" -c 'import platform; print(platform.python_version())'))"; \
	"$$interp" -m venv "$(VENV)" || { \
	  rm -rf "$(VENV)"; \
	  echo "Could not create $(VENV) with $$interp (on Debian/Ubuntu: apt-get install python3-venv, or python3.11-venv)." >&2; \
	  exit 1; }

# (Re)install the project when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml | $(VENV_PY)
	@$(VENV_PY) -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else 1)' || { \
	  echo "$(VENV) uses Python $$($(VENV_PY) -c 'import platform; print(platform.python_version())'), but lupus_rules needs 3.11, 3.12 or 3.13. Run 'make clean' and try again (set PYTHON=/path/to/python3.13 if needed)." >&2; \
	  exit 1; }
	@$(VENV_PY) -c 'import sys; sys.exit(0 if sys.version_info[:2] <= (3, 13) else 1)' || \
	  echo "warning: $(VENV) uses Python $$($(VENV_PY) -c 'import platform; print(platform.python_version())'), which is untested (supported: 3.11-3.13); trying anyway." >&2
	@echo "==> installing lupus_rules[$(EXTRAS)] into $(VENV) (durable-rules compiles from source: ~1 min)"
	$(VENV_PY) -m pip install --upgrade pip
	bash tools/install_durable.sh $(VENV_PY)
	$(VENV_PY) -m pip install -e ".[$(EXTRAS)]"
	@touch "$(STAMP)"

# The project's JupyterLab settings (no news popup, no autosave, no saved widget
# state) go into the venv, never into a tracked file; tools/serve.sh prints the URL.
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json

$(LAB_SETTINGS): jupyter/overrides.json | $(STAMP)
	@mkdir -p "$(dir $@)" && cp jupyter/overrides.json "$@"

lab: setup $(LAB_SETTINGS)
	@bash tools/serve.sh lab "$(VENV)" "$(LAB_IP)" "$(LAB_PORT)"

app: setup
	@bash tools/serve.sh app "$(VENV)" "$(APP_IP)" "$(APP_PORT)"

test: setup
	$(VENV_PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(VENV_PY) -m pip install --quiet --no-deps experta==1.9.4 schema frozendict
	$(VENV_PY) benchmarks/run.py

clean:
	rm -rf "$(VENV)" .venv-py* build dist *.egg-info .pytest_cache .hypothesis benchmarks/out tests/artifacts
	find . -path ./.git -prune -o \( -name __pycache__ -o -name .ipynb_checkpoints \) -type d -prune -exec rm -rf {} +
