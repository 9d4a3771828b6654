"""Where a rulebook to compare comes from: a folder, a file, a git revision, the worktree or a variant.

``lupus-rules diff HEAD~1 WORKTREE`` compares the rules of the previous commit
with the files on disk. A revision is read with ``git ls-tree`` / ``git show``
(no shell) and parsed with YAML's safe loader only, like files on disk.
``variant:NAME`` (or ``variant:path/to/file.yaml``) is a rulebook variant
(:mod:`lupus_rules.authoring.variants`) over the rulebook it names as its base.
"""
from __future__ import annotations

import subprocess
from pathlib import Path, PurePosixPath

import yaml

from ..errors import RuleProblem, RulebookError
from ..rulebook import DEFAULT_RULES_DIR, Rulebook, load_rulebook, rulebook_from_documents

__all__ = ["WORKTREE", "resolve_rulebook"]

#: Name that stands for the shipped rule folder as it is on disk now.
WORKTREE = "WORKTREE"

_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_RULE_SUFFIXES = (".yaml", ".yml")


def resolve_rulebook(spec: str | Path | Rulebook | None, repo: str | Path | None = None) -> Rulebook:
    """A rulebook from a folder or file, ``WORKTREE``, a git revision ``REV`` or ``REV:path``, or ``variant:NAME``.

    A path that exists on disk wins over a revision of the same name. A bare
    ``REV`` reads the shipped rule folder (``lupus_rules/rules``) at that
    revision; ``REV:path`` reads a folder or file (path from the repository
    root). ``repo`` is any folder inside the git repository (default: the
    current folder, else the one holding the installed package). Raises
    :class:`RulebookError` saying what was tried when nothing matches.
    """
    if isinstance(spec, Rulebook):
        return spec
    if spec is None or str(spec) == WORKTREE:
        return load_rulebook(DEFAULT_RULES_DIR)
    if str(spec).startswith("variant:"):
        from .variants import load_variant

        return load_variant(str(spec))
    if Path(spec).exists():
        return load_rulebook(spec)
    text = str(spec)
    root = _repo_root(repo)
    if root is None:
        raise RulebookError([RuleProblem(text, None, None, "no such file or folder, and not inside a git "
                                         "repository, so it cannot be a revision either")])
    rev, _, path = text.partition(":")
    if not path:
        path = _default_rules_path(root)
    return _from_revision(root, rev, path.strip("/"), text)


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)


def _repo_root(repo: str | Path | None) -> Path | None:
    candidates = [Path(repo)] if repo is not None else [Path.cwd(), DEFAULT_RULES_DIR]
    for folder in candidates:
        try:
            done = _git(folder, "rev-parse", "--show-toplevel")
        except (FileNotFoundError, NotADirectoryError):
            continue
        if done.returncode == 0:
            return Path(done.stdout.strip())
    return None


def _default_rules_path(root: Path) -> str:
    try:
        return DEFAULT_RULES_DIR.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return "lupus_rules/rules"


def _from_revision(root: Path, rev: str, path: str, spec: str) -> Rulebook:
    if _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").returncode != 0:
        raise RulebookError([RuleProblem(spec, None, None, f"neither a file/folder on disk nor a git revision "
                                         f"known to the repository at {root}")])
    files = _rule_files(root, rev, path)
    if not files:
        raise RulebookError([RuleProblem(spec, None, None, f"revision {rev} has no rule files (.yaml) at '{path}'")])
    docs = []
    problems = []
    for name in files:
        shown = _git(root, "show", f"{rev}:{name}")
        try:
            docs.append((PurePosixPath(name).name, yaml.load(shown.stdout, Loader=_SAFE_LOADER)))
        except yaml.YAMLError as exc:
            problems.append(RuleProblem(f"{rev}:{name}", None, None, f"not valid YAML: {exc}"))
    if problems:
        raise RulebookError(problems)
    return rulebook_from_documents(docs, source=f"{rev}:{path}")


def _rule_files(root: Path, rev: str, path: str) -> list[str]:
    """Rule files directly in ``path`` at ``rev`` (or ``path`` itself when it is a file)."""
    listed = _git(root, "ls-tree", "--name-only", "--full-tree", rev, "--", path, path + "/")
    if listed.returncode != 0:
        return []
    names = [line for line in listed.stdout.splitlines() if line]
    if path in names and path.endswith(_RULE_SUFFIXES):
        return [path]
    inside = [n for n in names if PurePosixPath(n).parent == PurePosixPath(path)]
    return sorted((n for n in inside if n.endswith(_RULE_SUFFIXES)), key=lambda n: PurePosixPath(n).name)
