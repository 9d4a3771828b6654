#!/usr/bin/env python3
"""Check that environment.yml (conda) and pyproject.toml list the same dependencies.

Compared: pyproject's [project].dependencies plus the optional extras that the
conda environment mirrors (``test`` and ``dask`` by default), against every
package in environment.yml (conda section and its ``pip:`` section).

Reported as errors (exit 1):
  * a package present in one file but not in the other;
  * a package whose version constraint differs (conda ``=X`` is read as
    ``==X.*``; ``>=``, ``<``, ``==`` ... are compared as written);
  * a conda ``python`` pin outside pyproject's ``requires-python``.

Names are normalized (PEP 503: lower case, runs of ``-_.`` -> ``-``), conda
names are mapped to PyPI names (e.g. ``matplotlib-base`` -> ``matplotlib``), and
``dask[dataframe,distributed]`` counts as ``dask`` + ``distributed``.
Conda-only tooling (``python``, ``pip``, compilers) and ``-e .`` are ignored.

Usage:  python tools/check_env_sync.py [--root DIR] [--extras test,dask,app]
Needs Python >= 3.11 (tomllib) and PyYAML (a runtime dependency).
"""
from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("check_env_sync: needs PyYAML; run it with the project's venv: .venv/bin/python tools/check_env_sync.py")

try:
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
except ImportError:  # pragma: no cover - pip always vendors packaging
    from pip._vendor.packaging.requirements import Requirement  # type: ignore
    from pip._vendor.packaging.specifiers import SpecifierSet  # type: ignore

DEFAULT_EXTRAS = ("test", "dask", "app")

# conda-forge name -> PyPI name, where they differ.
CONDA_TO_PYPI = {
    "matplotlib-base": "matplotlib",
    "dask-core": "dask",
    "pytorch": "torch",
    "msgpack-python": "msgpack",
    "pytables": "tables",
    "python-graphviz": "graphviz",
}

# (PyPI name, extra) -> extra PyPI package that the extra stands for.
# Other extras (dask's "dataframe" = pandas/pyarrow/numpy) need no package of
# their own in the comparison.
EXTRA_TO_PACKAGE = {
    ("dask", "distributed"): "distributed",
}

# Conda packages that are tooling, not project dependencies.
CONDA_ONLY = {"python", "pip", "c-compiler", "cxx-compiler", "compilers", "setuptools", "wheel"}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pyproject_deps(path: Path, extras: tuple[str, ...]) -> tuple[dict[str, str], str]:
    """Return ({normalized name: specifier}, requires-python) from pyproject.toml."""
    project = tomllib.loads(path.read_text(encoding="utf-8"))["project"]
    reqs = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise SystemExit(f"check_env_sync: pyproject.toml has no optional extra {extra!r}")
        reqs += optional[extra]
    deps: dict[str, str] = {}
    for line in reqs:
        req = Requirement(line)
        name = normalize(req.name)
        spec = str(SpecifierSet(str(req.specifier)))
        deps[name] = spec
        for extra in sorted(req.extras):
            implied = EXTRA_TO_PACKAGE.get((name, normalize(extra)))
            if implied:
                deps[implied] = spec
    return deps, project.get("requires-python", "")


_CONDA_SPEC = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*$")


def conda_spec_to_pep440(spec: str) -> str:
    """'=3.11' -> '==3.11.*', '>=2.1' -> '>=2.1', '>=1,<2' -> '<2,>=1', '' -> ''."""
    spec = spec.replace(" ", "")
    if not spec:
        return ""
    parts = []
    for part in spec.split(","):
        if re.fullmatch(r"=[^=].*", part):  # conda fuzzy pin: =X means X.*
            version = part[1:].rstrip(".*")
            part = f"=={version}.*"
        parts.append(part)
    return str(SpecifierSet(",".join(parts)))


def environment_deps(path: Path) -> tuple[dict[str, str], str | None]:
    """Return ({normalized PyPI name: specifier}, python spec) from environment.yml."""
    env = yaml.safe_load(path.read_text(encoding="utf-8"))
    deps: dict[str, str] = {}
    python_spec = None
    for item in env.get("dependencies", []):
        if isinstance(item, dict):
            for line in item.get("pip", []):
                line = str(line).strip()
                if line.startswith(("-e", "--", "-r", "-c")) or line in (".", "./"):
                    continue
                req = Requirement(line)
                name = normalize(req.name)
                deps[name] = str(SpecifierSet(str(req.specifier)))
                for extra in sorted(req.extras):
                    implied = EXTRA_TO_PACKAGE.get((name, normalize(extra)))
                    if implied:
                        deps[implied] = deps[name]
            continue
        match = _CONDA_SPEC.match(str(item).split("::")[-1])
        if not match:
            raise SystemExit(f"check_env_sync: cannot parse conda dependency {item!r}")
        raw_name, raw_spec = match.groups()
        name = normalize(raw_name)
        if name == "python":
            python_spec = conda_spec_to_pep440(raw_spec)
            continue
        if name in CONDA_ONLY:
            continue
        deps[normalize(CONDA_TO_PYPI.get(name, name))] = conda_spec_to_pep440(raw_spec)
    return deps, python_spec


def compare(root: Path, extras: tuple[str, ...]) -> list[str]:
    py_deps, requires_python = pyproject_deps(root / "pyproject.toml", extras)
    env_deps, env_python = environment_deps(root / "environment.yml")
    problems = []
    for name in sorted(set(py_deps) - set(env_deps)):
        problems.append(f"only in pyproject.toml: {name}{py_deps[name]}")
    for name in sorted(set(env_deps) - set(py_deps)):
        problems.append(f"only in environment.yml: {name}{env_deps[name]}")
    for name in sorted(set(py_deps) & set(env_deps)):
        if SpecifierSet(py_deps[name]) != SpecifierSet(env_deps[name]):
            problems.append(
                f"version differs for {name}: pyproject.toml {py_deps[name] or '(any)'}"
                f" vs environment.yml {env_deps[name] or '(any)'}"
            )
    if env_python is None:
        problems.append("environment.yml does not pin python")
    elif requires_python:
        # Every 3.x that the conda pin admits must be admitted by requires-python.
        env_spec, allowed = SpecifierSet(env_python), SpecifierSet(requires_python)
        outside = [f"3.{minor}" for minor in range(6, 30)
                   if env_spec.contains(f"3.{minor}") and not allowed.contains(f"3.{minor}")]
        if outside:
            problems.append(
                f"environment.yml python{env_python or ' (any)'} admits"
                f" {', '.join(outside[:3])}{', ...' if len(outside) > 3 else ''},"
                f" outside requires-python {requires_python}"
            )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="directory holding pyproject.toml and environment.yml (default: repo root)")
    parser.add_argument("--extras", default=",".join(DEFAULT_EXTRAS),
                        help="pyproject extras mirrored by environment.yml (default: %(default)s)")
    args = parser.parse_args(argv)
    extras = tuple(e for e in args.extras.split(",") if e)
    problems = compare(args.root, extras)
    if problems:
        print("pyproject.toml and environment.yml are out of step:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(f"pyproject.toml and environment.yml agree (runtime + extras: {', '.join(extras)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
