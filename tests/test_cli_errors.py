"""One error contract for every ``lupus-rules`` command (issue 9).

0 ok, 1 rows/checks failed, 2 unusable input (one message naming the file,
column or option, "did you mean" for a misspelling), 3 internal error (crash
file with the traceback; ``--debug`` prints it), 130 Ctrl-C. Never a traceback.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import lupus_rules
from lupus_rules.cli import build_parser, main
from lupus_rules.output import atomic_output

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "scenarios"
CRASH = re.compile(r"full traceback written to (\S+)$")


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A folder of hostile inputs, each named for what is wrong with it."""
    (tmp_path / "good.csv").write_text("scenario_id,manifestations\ns1,joint\n", encoding="utf-8")
    (tmp_path / "misspelt.csv").write_text("scenario_id,egrf\ns1,60\n", encoding="utf-8")
    (tmp_path / "binary.csv").write_bytes(b"scenario_id,egfr\n\x00\x01\x02\xff\xfe\n")
    (tmp_path / "latin1.csv").write_bytes("scenario_id,description\ns1,café\n".encode("latin-1"))
    (tmp_path / "utf16.csv").write_bytes("scenario_id,egfr\ns1,60\n".encode("utf-16"))
    rules = tmp_path / "rules"
    rules.mkdir()
    for source in (REPO / "lupus_rules" / "rules").glob("*.yaml"):
        (rules / source.name).write_bytes(source.read_bytes())
    (tmp_path / "dangling_rules").mkdir()
    (tmp_path / "dangling_rules" / "x.yaml").symlink_to(tmp_path / "nowhere.yaml")
    (tmp_path / "dir_rules").mkdir()
    (tmp_path / "dir_rules" / "x.yaml").mkdir()
    (tmp_path / "existing_dir.csv").mkdir()
    return tmp_path


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``lupus-rules argv`` run in this process."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors and --version
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


# (argv with {d} for the inputs folder, exit code, texts the stderr must contain)
INPUT_ERRORS = [
    pytest.param(["rnu", "x.csv"], 2, ["invalid choice", "'rnu'", "did you mean 'run'?"], id="misspelt-command"),
    pytest.param(["run", "{d}/good.csv", "-o", "{d}/o.csv", "--engine", "vectorised"], 2,
                 ["--engine", "'vectorised'", "did you mean 'vectorized'?"], id="misspelt-engine"),
    pytest.param(["run", "{d}/misspelt.csv", "-o", "{d}/o.csv"], 2,
                 ["'egrf'", "did you mean 'egfr'?"], id="run-misspelt-column"),
    pytest.param(["coverage", "--scenarios", "{d}/misspelt.csv"], 2,
                 ["'egrf'", "did you mean 'egfr'?"], id="coverage-misspelt-column"),
    pytest.param(["generate", "-o", "{d}/g.csv", "--facts", "metotrexate"], 2,
                 ["'metotrexate'", "did you mean 'methotrexate'?"], id="generate-misspelt-fact"),
    pytest.param(["run", "{d}/absent.csv", "-o", "{d}/o.csv"], 2, ["absent.csv"], id="run-missing-input"),
    pytest.param(["run", "{d}/good.csv", "-o", "{d}/missing/o.csv"], 2,
                 ["folder not found", "missing"], id="run-output-missing-folder"),
    pytest.param(["run", "{d}/good.csv", "-o", "{d}/existing_dir.csv"], 2,
                 ["existing_dir.csv", "is a directory"], id="run-output-is-directory"),
    pytest.param(["run", "{d}/good.csv", "-o", "{d}/good.csv"], 2,
                 ["is the input file", "good.csv"], id="run-output-is-input"),
    pytest.param(["generate", "-o", "{d}/missing/g.csv"], 2, ["folder not found", "missing"],
                 id="generate-output-missing-folder"),
    pytest.param(["diff", "WORKTREE", "WORKTREE", "--scenarios", "{d}/good.csv", "-o", "{d}/missing/d.csv"], 2,
                 ["folder not found", "missing"], id="diff-output-missing-folder"),
    pytest.param(["diff", "WORKTREE", "WORKTREE", "--scenarios", "{d}/good.csv", "-o", "{d}/good.csv"], 2,
                 ["is the input file", "good.csv"], id="diff-output-is-input"),
    pytest.param(["coverage", "--scenarios", "{d}/good.csv", "--proposals", "{d}/missing/p.csv"], 2,
                 ["folder not found", "missing"], id="coverage-proposals-missing-folder"),
    pytest.param(["lint", "-o", "{d}/missing/l.csv"], 2, ["folder not found", "missing"],
                 id="lint-output-missing-folder"),
    pytest.param(["lint", "-o", "{d}/existing_dir.csv"], 2, ["existing_dir.csv", "is a directory"],
                 id="lint-output-is-directory"),
    pytest.param(["lint", "--max-rows", "0"], 2, ["--max-rows", "'0'", ">= 1"], id="lint-max-rows-0"),
    pytest.param(["check-suite", "{d}/binary.csv"], 2, ["binary.csv", "UTF-8"], id="suite-binary"),
    pytest.param(["check-suite", "{d}/latin1.csv"], 2, ["latin1.csv", "not UTF-8", "line 2"], id="suite-latin1"),
    pytest.param(["check-suite", "{d}/utf16.csv"], 2, ["utf16.csv", "UTF-16"], id="suite-utf16"),
    pytest.param(["diff", "a" * 100_000, "WORKTREE"], 2, ["100,000 characters", "at most"], id="diff-huge-revision"),
    pytest.param(["lint", "--rules", "a" * 100_000], 2, ["--rules", "100,000 characters"], id="lint-huge-rules"),
    pytest.param(["coverage", "--rules", "a" * 100_000], 2, ["--rules", "100,000 characters"],
                 id="coverage-huge-rules"),
    pytest.param(["check-suite", "{d}/" + "b" * 100_000 + ".csv"], 2, ["(100,", "characters)"],
                 id="suite-huge-path-elided"),
    pytest.param(["check-suite", str(SCENARIOS), "--rules", "{d}/dangling_rules"], 2,
                 ["x.yaml", "dangling"], id="rules-dangling-link"),
    pytest.param(["check-suite", str(SCENARIOS), "--rules", "{d}/dir_rules"], 2,
                 ["x.yaml", "not a regular file"], id="rules-directory-named-yaml"),
    pytest.param(["lint", "--rules", "{d}/absent_rules"], 2, ["absent_rules"], id="lint-missing-rules"),
]


@pytest.mark.parametrize(("argv", "code", "texts"), INPUT_ERRORS)
def test_unusable_input_exits_2_naming_it(argv: list[str], code: int, texts: list[str], files: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    got, _, err = run_cli([a.format(d=files) for a in argv], capsys)
    assert got == code, err
    for text in texts:
        assert text in err
    assert "Traceback" not in err
    assert len(err) < 3000  # one message, not a dump of the input


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_output_into_read_only_folder_exits_2(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locked = files / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code, _, err = run_cli(["run", str(files / "good.csv"), "-o", str(locked / "o.csv")], capsys)
    finally:
        locked.chmod(0o755)
    assert code == 2 and "not writable" in err and "locked" in err


def test_output_is_checked_before_any_work(files: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("evaluated although the output location is unusable")

    monkeypatch.setattr("lupus_rules.batch.run_file", never)
    code, _, err = run_cli(["run", str(files / "good.csv"), "-o", str(files / "missing" / "o.csv")], capsys)
    assert code == 2 and "folder not found" in err


@pytest.mark.parametrize("argv", [["run", "{d}/misspelt.csv", "-o", "{d}/o.csv"], ["rnu"],
                                  ["check-suite", "{d}/latin1.csv"], ["lint", "--max-rows", "0"]])
def test_real_process_exits_2_without_traceback(argv: list[str], files: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "lupus_rules", *(a.format(d=files) for a in argv)],
                          capture_output=True, text=True, timeout=300, cwd=files)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.strip()


def _crash(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(args: object) -> int:
        raise RuntimeError("engine exploded")

    monkeypatch.setattr("lupus_rules.cli.suite.run_check_suite", broken)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))


def test_internal_error_exits_3_with_crash_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    _crash(monkeypatch, tmp_path)
    code, _, err = run_cli(["check-suite", str(SCENARIOS)], capsys)
    assert code == 3
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith("lupus-rules check-suite: internal error: RuntimeError: engine exploded;")
    crash = Path(CRASH.search(line).group(1))
    assert crash.parent == tmp_path and crash.name.startswith("lupus-rules-crash-")
    text = crash.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text and "RuntimeError: engine exploded" in text


def test_each_crash_gets_its_own_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    _crash(monkeypatch, tmp_path)
    paths = {CRASH.search(run_cli(["check-suite", "x"], capsys)[2].strip()).group(1) for _ in range(3)}
    assert len(paths) == 3


def test_debug_prints_the_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    _crash(monkeypatch, tmp_path)
    code, _, err = run_cli(["--debug", "check-suite", str(SCENARIOS)], capsys)
    assert code == 3
    assert "Traceback (most recent call last)" in err and "RuntimeError: engine exploded" in err
    assert "internal error" in err


def test_internal_error_in_a_real_process(tmp_path: Path) -> None:
    code = ("import sys, tempfile; tempfile.tempdir = sys.argv[1]\n"
            "import lupus_rules.cli.suite as s\n"
            "def broken(args): raise RuntimeError('engine exploded')\n"
            "s.run_check_suite = broken\n"
            "from lupus_rules.cli import main; sys.exit(main(['check-suite', 'x']))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr and "internal error: RuntimeError" in proc.stderr
    assert len(list(tmp_path.glob("lupus-rules-crash-*.txt"))) == 1


@pytest.mark.parametrize("engine, runner", [("auto", "lupus_rules.plainrun.run_plain_file"),
                                            ("vectorized", "lupus_rules.batch.run_file")])
def test_ctrl_c_exits_130_and_leaves_nothing(files: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str], engine: str, runner: str) -> None:
    out = files / "o.csv"

    def interrupted(source: object, target: object, *args: object, **kwargs: object) -> None:
        with atomic_output(target) as partial:
            partial.write_text("half a result", encoding="utf-8")
            raise KeyboardInterrupt

    monkeypatch.setattr(runner, interrupted)
    before = set(os.listdir(files))
    code, _, err = run_cli(["run", str(files / "good.csv"), "-o", str(out), "--engine", engine], capsys)
    assert code == 130 and "interrupted" in err and "Traceback" not in err
    assert set(os.listdir(files)) == before


def test_broken_pipe_is_not_an_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def piped(args: object) -> int:
        raise BrokenPipeError

    monkeypatch.setattr("lupus_rules.cli.suite.run_check_suite", piped)
    assert run_cli(["check-suite", "x"], capsys)[0] == 0


def test_version_names_package_and_rulebook(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0
    assert out.strip() == (f"lupus-rules {lupus_rules.__version__}  "
                           f"rulebook_version {lupus_rules.default_rulebook().version}")


def test_excel_safe_neutralizes_formulas(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = files / "formula.csv"
    source.write_text("scenario_id,manifestations\n=HYPERLINK(1),joint\n", encoding="utf-8")
    for flag, expected in (([], "=HYPERLINK(1)"), (["--excel-safe"], "'=HYPERLINK(1)")):
        out = files / f"out{len(flag)}.csv"
        code, _, err = run_cli(["run", str(source), "-o", str(out), "--no-progress", *flag], capsys)
        assert code == 0, err
        assert pd.read_csv(out, dtype=str, keep_default_na=False)["scenario_id"].tolist() == [expected]


@pytest.mark.parametrize("choices", ["'run', 'generate', 'lint'", "run, generate, lint"])
def test_did_you_mean_whatever_argparse_quotes(choices: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Python 3.11-3.12.7 quote the choices in "invalid choice" messages, later versions do not."""
    parser = build_parser()
    with pytest.raises(SystemExit) as exited:
        parser.error(f"argument COMMAND: invalid choice: 'rnu' (choose from {choices})")
    assert exited.value.code == 2
    assert "did you mean 'run'?" in capsys.readouterr().err


def test_os_error_about_a_file_exits_2_naming_it(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    def unreadable(args: object) -> int:
        raise OSError(5, "Input/output error", "/data/patients.csv")

    monkeypatch.setattr("lupus_rules.cli.suite.run_check_suite", unreadable)
    code, _, err = run_cli(["check-suite", "x"], capsys)
    assert code == 2
    assert err.strip() == "lupus-rules check-suite: /data/patients.csv: Input/output error"


@pytest.mark.skipif(sys.platform == "win32", reason="signals to a child process")
@pytest.mark.parametrize("signal_name, code, word", [("SIGINT", 130, "interrupted"), ("SIGTERM", 143, "terminated")])
def test_a_signal_exits_with_its_code_and_leaves_no_partial_file(tmp_path: Path, signal_name: str, code: int,
                                                                 word: str) -> None:
    import signal

    out = tmp_path / "all.csv"
    proc = subprocess.Popen([sys.executable, "-m", "lupus_rules", "generate", "-o", str(out), "--yes",
                             "--no-progress", "--chunk-size", "1000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "scenarios (" in proc.stdout.readline()  # the row count: work has started
    proc.send_signal(getattr(signal, signal_name))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert word in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("lost, code", [(KeyboardInterrupt, 130), ("terminated", 143)])
def test_a_signal_lost_in_garbage_collection_still_stops_the_command(lost: object, code: int,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Regression (CI, Python 3.13): Ctrl-C landed in a weakref callback, was "ignored", and generate ran on."""
    from lupus_rules.cli import _errors

    error = _errors._Terminated if lost == "terminated" else lost

    class DiesLoudly:
        def __del__(self) -> None:
            raise error()

    def command() -> int:
        DiesLoudly()  # dropped at once: its __del__'s exception cannot propagate
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the bytecodes after it, where the signal is delivered again
            pass
        return 0

    hook = sys.unraisablehook
    assert _errors.run_guarded("generate", command) == code
    err = capsys.readouterr().err
    assert "Exception ignored" not in err and "Traceback" not in err
    assert sys.unraisablehook is hook
