#!/usr/bin/env bash
# Find a Python interpreter that can run lupus_rules and print its absolute path.
#
# lupus_rules needs Python 3.11 or 3.12: its rules engine, durable-rules
# 2.0.28, builds from source and does not import on Python 3.13+.
#
# Candidates, first suitable one wins:
#   1. $PYTHON, if set (then it is the ONLY candidate: an explicit choice is
#      never silently replaced by another interpreter);
#   2. python3.12, python3.11, python3 on PATH.
# Every candidate is actually run (a pyenv shim may exist on PATH without
# being runnable) and its version checked.
#
# stdout: the interpreter's sys.executable (one line), exit 0.
# stderr + exit 1 if nothing suitable was found.
#
# Usage: bash tools/find_python.sh            # discover
#        PYTHON=/opt/py312/bin/python3 bash tools/find_python.sh
set -u

if [ -n "${PYTHON:-}" ]; then
    candidates=("$PYTHON")
else
    candidates=(python3.12 python3.11 python3)
fi

found=()
for cand in "${candidates[@]}"; do
    if ! command -v "$cand" >/dev/null 2>&1; then
        found+=("$cand: not found")
        continue
    fi
    # Line 1: X.Y.Z, line 2: absolute path of the real interpreter.
    if ! info="$("$cand" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3]); print(sys.executable)' 2>/dev/null)"; then
        found+=("$cand: does not run")
        continue
    fi
    version="${info%%$'\n'*}"
    exe="${info#*$'\n'}"
    case "$version" in
        3.11.*|3.12.*)
            printf '%s\n' "$exe"
            exit 0
            ;;
        *)
            found+=("$cand: $version")
            ;;
    esac
done

list=""
for f in "${found[@]}"; do
    list="${list:+$list, }$f"
done
{
    echo "lupus_rules needs Python 3.11 or 3.12 (durable-rules does not import on 3.13+); found: ${list}. Install python3.11 or set PYTHON=/path/to/python3.11"
    if [ -n "${PYTHON:-}" ]; then
        echo "(PYTHON is set, so no other interpreter was tried; unset it to search PATH for python3.12, python3.11, python3.)"
    fi
} >&2
exit 1
