#!/usr/bin/env bash
# Re-execute every notebook in place, top to bottom on a fresh kernel, so the
# saved outputs (compared by nbval in `make test`) match the current rulebook.
# Run it after any rule change:   bash notebooks/execute_all.sh [notebook.ipynb ...]
#
# Uses the repository's .venv (override with PYTHON=/path/to/python). The
# kernelspec "python3" runs `python`, which jupyter_client replaces with the
# interpreter running nbconvert, i.e. the venv's. Not for clinical use.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
if [ ! -x "$PYTHON" ]; then
    echo "no interpreter at $PYTHON: run 'make setup' first (or set PYTHON=...)" >&2
    exit 1
fi

if [ "$#" -gt 0 ]; then
    notebooks=("$@")
else
    notebooks=(notebooks/[0-9]*.ipynb)
fi

for nb in "${notebooks[@]}"; do
    echo "==> executing $nb"
    start=$(date +%s)
    "$PYTHON" -m jupyter nbconvert --to notebook --execute --inplace \
        --ExecutePreprocessor.kernel_name=python3 \
        --ExecutePreprocessor.timeout=300 \
        "$nb"
    echo "    done in $(( $(date +%s) - start )) s"
done
echo "==> check: $PYTHON -m pytest notebooks/ -p no:cacheprovider"
