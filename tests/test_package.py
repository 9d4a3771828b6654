"""The public package: every exported name resolves, and importing it (or building the CLI) stays light."""
from __future__ import annotations

import subprocess
import sys

import lupus_rules


def _in_fresh_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_every_exported_name_resolves():
    missing = [name for name in lupus_rules.__all__ if getattr(lupus_rules, name, None) is None]
    assert missing == []
    assert set(lupus_rules.__all__) <= set(dir(lupus_rules))


def test_import_and_cli_help_do_not_import_numpy_or_pandas():
    code = ("import sys, lupus_rules; from lupus_rules.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow', 'yaml') if m in sys.modules))")
    assert _in_fresh_python(code) == "[]"


def test_evaluate_stays_the_function_after_its_module_is_imported():
    code = ("import lupus_rules, lupus_rules.batch, lupus_rules.evaluate; "
            "print(callable(lupus_rules.evaluate), lupus_rules.evaluate({'methotrexate': 'intolerant'}).preferred)")
    assert _in_fresh_python(code) == "True mycophenolate"


def test_an_unknown_name_is_an_attribute_error():
    try:
        lupus_rules.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("lupus_rules.no_such_name resolved")
