#!/usr/bin/env bash
# Install durable-rules 2.0.28 (the rules engine) into the given interpreter's
# environment so that it imports there, then prove it does.
#
# durable-rules ships only a source distribution; its C extension calls
# PyEval_CallObject, which Python 3.13 removed, so a plain build imports with
# "undefined symbol: PyEval_CallObject". On 3.13 and later it is built with the
# preprocessor mapping the old name onto its replacement (its setup.py
# overwrites CFLAGS, CPPFLAGS survives), never from pip's wheel cache (a wheel
# cached from a plain build would be broken). On 3.11/3.12 it is a plain install.
# Nothing is done when durable-rules already imports.
#
# Usage: bash tools/install_durable.sh PYTHON
#   e.g. bash tools/install_durable.sh .venv/bin/python
set -euo pipefail

PY="${1:?usage: install_durable.sh PYTHON}"
SPEC="durable-rules==2.0.28"
FLAG="-DPyEval_CallObject=PyObject_CallObject"
CHECK='import durable_rules_engine, durable.engine'

if "$PY" -c "$CHECK" 2>/dev/null; then
    echo "==> durable-rules already imports on $("$PY" -c 'import platform; print(platform.python_version())')"
    exit 0
fi

if "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 13) else 1)'; then
    echo "==> building $SPEC from source with CPPFLAGS=$FLAG (Python >= 3.13)"
    CPPFLAGS="$FLAG ${CPPFLAGS:-}" "$PY" -m pip install --no-binary durable-rules --no-cache-dir \
        --force-reinstall --no-deps "$SPEC"
else
    echo "==> installing $SPEC (compiled from source)"
    "$PY" -m pip install "$SPEC"
fi

if ! "$PY" -c "$CHECK"; then
    echo "durable-rules was installed but does not import on $("$PY" --version 2>&1)." >&2
    echo "lupus_rules supports Python 3.11, 3.12 and 3.13; use one of them (make clean; make test PYTHON=/path/to/python3.13)." >&2
    exit 1
fi
echo "==> durable-rules imports"
