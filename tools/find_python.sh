#!/usr/bin/env bash
# Find a Python interpreter that can run lupus_rules and print its absolute path.
#
# Supported: Python 3.11, 3.12 and 3.13. durable-rules 2.0.28 (the rules
# engine) is compiled from source; on 3.13 tools/install_durable.sh builds it
# with the preprocessor flag that maps the removed PyEval_CallObject onto
# PyObject_CallObject. 3.14 and later are untested: they are accepted with a
# warning (never refused), so a user can try them once durable-rules imports.
# Older than 3.11 is refused.
#
# Candidates, first suitable one wins:
#   1. $PYTHON, if set (then it is the ONLY candidate: an explicit choice is
#      never silently replaced by another interpreter);
#   2. python3.13, python3.12, python3.11, python3 on PATH, then the same
#      versions installed under pyenv ($(pyenv root)/versions/3.1x*/bin), which
#      pyenv's shims on PATH do not run unless that version is selected.
# Every candidate is actually run (a pyenv shim may exist on PATH without
# being runnable) and its version checked. A supported version always wins
# over an untested newer one.
#
# stdout: the interpreter's sys.executable (one line), exit 0.
#         With --all: one supported interpreter per version found, one per
#         line as "X.Y.Z PATH", oldest first (used by .ci/run).
# stderr + exit 1 if nothing suitable was found.
#
# Usage: bash tools/find_python.sh            # discover
#        bash tools/find_python.sh --all      # list every supported one
#        PYTHON=/opt/py312/bin/python3 bash tools/find_python.sh
set -u

SUPPORTED="3.11, 3.12 or 3.13"
mode="${1:-first}"

candidates=()
if [ -n "${PYTHON:-}" ]; then
    candidates=("$PYTHON")
else
    candidates=(python3.13 python3.12 python3.11 python3)
    if command -v pyenv >/dev/null 2>&1 && root="$(pyenv root 2>/dev/null)"; then
        for dir in "$root"/versions/3.13* "$root"/versions/3.12* "$root"/versions/3.11*; do
            for exe in "$dir"/bin/python3.1[1-3]; do
                [ -x "$exe" ] && candidates+=("$exe")
            done
        done
    fi
fi

found=()       # what was tried and why it did not suit, for the error message
supported=()   # "X.Y.Z PATH" of every supported interpreter
untested=()    # "X.Y.Z PATH" of every 3.14+ interpreter
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
    minor="${version#3.}"; minor="${minor%%.*}"
    case "$version" in
        3.*)
            if [ "$minor" -ge 11 ] 2>/dev/null && [ "$minor" -le 13 ]; then
                supported+=("$version $exe")
            elif [ "$minor" -ge 14 ] 2>/dev/null; then
                untested+=("$version $exe")
            else
                found+=("$cand: $version")
            fi
            ;;
        *)
            found+=("$cand: $version")
            ;;
    esac
done

if [ "$mode" = "--all" ]; then
    if [ "${#supported[@]}" -gt 0 ]; then
        # One interpreter per version (the first found), oldest version first.
        printf '%s\n' "${supported[@]}" | awk '!seen[$1]++' | sort -t. -k1,1n -k2,2n -k3,3n
        exit 0
    fi
elif [ "${#supported[@]}" -gt 0 ]; then
    printf '%s\n' "${supported[0]#* }"
    exit 0
elif [ "${#untested[@]}" -gt 0 ]; then
    echo "warning: Python ${untested[0]%% *} is untested with lupus_rules (supported: $SUPPORTED); trying it anyway. If durable-rules fails to build or import, use a supported Python." >&2
    printf '%s\n' "${untested[0]#* }"
    exit 0
fi

list=""
for f in "${found[@]}"; do
    list="${list:+$list, }$f"
done
{
    echo "lupus_rules needs Python $SUPPORTED; found: ${list:-nothing}. Install python3.13 (or 3.12, 3.11) or set PYTHON=/path/to/python3"
    if [ -n "${PYTHON:-}" ]; then
        echo "(PYTHON is set, so no other interpreter was tried; unset it to search PATH and pyenv.)"
    fi
} >&2
exit 1
