"""The pure-Python run of a small CSV (engine auto/python): the vectorized path's bytes, without its libraries."""
from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest
from test_hostile_files import BAD_ROWS, GOOD, HEADER, RISKY, csv_bytes, latin1_csv, no_partials

from lupus_rules import load_rulebook, plainrun
from lupus_rules.batch import BatchInputError, run_file
from lupus_rules.plainrun import SMALL_CSV_BYTES, run_plain_file, takes_plain_path

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = sorted((REPO / "scenarios").glob("*.csv"))


@pytest.fixture(scope="module")
def rulebook():
    return load_rulebook()


def both_paths(tmp_path: Path, content: bytes, rulebook, **options) -> tuple[bytes, bytes]:
    """(pure-Python output, vectorized output) of the same input file, each engine cell replaced by ENGINE."""
    source = tmp_path / "in.csv"
    source.write_bytes(content)
    outputs = []
    plain = "auto" if len(content) <= SMALL_CSV_BYTES else "python"  # python: the plain path at any size
    for engine, name in ((plain, "python"), ("vectorized", "vectorized")):
        target = tmp_path / f"out-{engine}.csv"
        summary = run_file(source, target, engine, rulebook, progress=False, **options)
        assert summary.engine == name
        outputs.append(_engine_cells_masked(target.read_bytes(), name))
    return outputs[0], outputs[1]


def _engine_cells_masked(data: bytes, engine: str) -> bytes:
    lines = data.split(b"\n")
    assert lines[0].endswith(b',"engine"') and lines[-1] == b""
    cell = f',"{engine}"'.encode()
    body = [line[:-len(cell)] + b',"ENGINE"' if line.endswith(cell) else line for line in lines[1:-1]]
    return b"\n".join([lines[0], *body, b""])


def test_scenario_files_exist_and_are_small():
    assert len(SCENARIOS) >= 10
    assert all(path.stat().st_size <= SMALL_CSV_BYTES for path in SCENARIOS)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.name)
@pytest.mark.parametrize("excel_safe", [False, True])
def test_scenario_files_give_the_vectorized_bytes(tmp_path, rulebook, path, excel_safe):
    plain, vectorized = both_paths(tmp_path, path.read_bytes(), rulebook, excel_safe=excel_safe)
    assert plain == vectorized
    assert plain.count(b'"ENGINE"') == len(plain.split(b"\n")) - 2  # every row was masked, none missed


HOSTILE = {
    "header only": HEADER.encode(),
    "header only, CR": (HEADER + "\r").encode(),
    "header only, CRLF": (HEADER + "\r\n").encode(),
    "byte order mark, CR": b"\xef\xbb\xbf" + csv_bytes(GOOD, "\r"),
    "no final line end": csv_bytes(GOOD, "\n", final=False),
    "mixed line ends": (HEADER + "\r\n" + GOOD[0] + "\r" + GOOD[1] + "\n" + GOOD[2] + "\r\n" + GOOD[3]).encode(),
    "quoted line ends": latin1_csv(['a,"two\nlines",60,0.2', 'b,"cr\rinside",25,1', 'c,"crlf\r\nin""side",,3',
                                    "d,short"], "\r\n"),
    "nul in a fact": csv_bytes(GOOD[:1] + ["e,nul,60\x00,0.2"] + GOOD[1:]),
    "unclosed quote": csv_bytes(GOOD[:2] + ['e,"never closed,60,0.2', "f,x,60,0.2"]),
    "bad facts": csv_bytes(["a,x,abc,0.2", "b,y,-5,99", "c, z ,  60 ,\u00a00.5\u00a0", "d,w,\u0666\u0660,"]),
    "binary": b"scenario_id,egfr\n\x00\x01\x02\xff\xfe\n",
    "latin-1 description": "scenario_id,description\ns1,café\n".encode("latin-1"),
    "formulas": csv_bytes([f'r{i},"{text}",60,0.2' for i, text in enumerate(RISKY)] + ["n,-1.5,60,0.2",
                                                                                         "m,+2e3,60,0.2"]),
    "oversized quoted multiline cell": csv_bytes(
        GOOD[:1] + ["big,\"" + ("x" * 1000 + "\r") * 1100 + "\",60,0.2", "short,row"] + GOOD[1:], "\r"),
}
HOSTILE.update({f"{case}, {name}": latin1_csv(GOOD[:2] + [BAD_ROWS[case][0]] + GOOD[2:], end)
                for case in BAD_ROWS for name, end in (("LF", "\n"), ("CRLF", "\r\n"), ("CR", "\r"))})


@pytest.mark.parametrize("case", list(HOSTILE))
@pytest.mark.parametrize("excel_safe", [False, True])
def test_hostile_files_give_the_vectorized_bytes(tmp_path, rulebook, case, excel_safe):
    plain, vectorized = both_paths(tmp_path, HOSTILE[case], rulebook, excel_safe=excel_safe)
    assert plain == vectorized


@pytest.mark.parametrize("content", ["scenario_id,egfr\ns1,60\n".encode("utf-16"), b"", b"\xff,egfr\n1,2\n"],
                         ids=["utf-16", "empty", "header not UTF-8"])
def test_an_unreadable_header_gets_the_vectorized_paths_error(tmp_path, rulebook, content):
    source = tmp_path / "in.csv"
    source.write_bytes(content)
    messages = []
    for engine in ("auto", "python", "vectorized"):
        with pytest.raises(BatchInputError) as caught:
            run_file(source, tmp_path / "out.csv", engine, rulebook, progress=False)
        messages.append(str(caught.value))
    assert len(set(messages)) == 1 and "in.csv" in messages[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_a_bad_row_fails_alone_naming_its_line(tmp_path, rulebook):
    source = tmp_path / "in.csv"
    source.write_bytes(latin1_csv(GOOD[:2] + ["e,caf\xe9,60,0.2", "f,short"] + GOOD[2:], "\r"))
    summary = run_plain_file(source, tmp_path / "out.csv", rulebook)
    assert (summary.rows, summary.failed, summary.failures, summary.engine) == (6, 2, {"other": 2}, "python")
    lines = (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()
    assert "line 4: not UTF-8: byte 0xe9" in lines[3] and "line 5: ragged row: 2 cells" in lines[4]
    assert all('"R-' in line for i, line in enumerate(lines[1:]) if i not in (2, 3))


def test_auto_takes_the_plain_path_only_for_a_small_csv_to_csv(tmp_path, rulebook):
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    small.write_bytes(csv_bytes(GOOD))
    large.write_bytes(csv_bytes([f"r{i},d,60,0.2" for i in range(SMALL_CSV_BYTES // 10)]))
    assert large.stat().st_size > SMALL_CSV_BYTES
    assert takes_plain_path("auto", small, tmp_path / "o.csv")
    assert not takes_plain_path("auto", large, tmp_path / "o.csv")
    assert takes_plain_path("python", large, tmp_path / "o.csv")  # python: any size, streamed
    assert not takes_plain_path("auto", small, tmp_path / "o.parquet")
    assert not takes_plain_path("vectorized", small, tmp_path / "o.csv")
    assert run_file(large, tmp_path / "o.csv", rulebook=rulebook, progress=False).engine == "vectorized"


@pytest.mark.parametrize("header", ["scenario_id,egfr,egfr", "scenario_id,,egfr", "scenario_id, ,egfr"])
def test_a_header_pandas_would_rename_goes_the_vectorized_way(tmp_path, header):
    source = tmp_path / "in.csv"
    source.write_text(header + "\na,60,60\n", encoding="utf-8")
    assert not takes_plain_path("auto", source, tmp_path / "o.csv")
    with pytest.raises(BatchInputError, match="unknown column"):
        run_file(source, tmp_path / "o.csv", progress=False)


def test_an_unknown_column_is_refused_before_writing(tmp_path, rulebook):
    source = tmp_path / "in.csv"
    source.write_text("scenario_id,egrf\na,60\n", encoding="utf-8")
    with pytest.raises(BatchInputError, match="unknown column 'egrf'"):
        run_plain_file(source, tmp_path / "o.csv", rulebook)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_a_full_disk_is_a_clear_error_and_keeps_the_old_output(tmp_path, rulebook, monkeypatch):
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_bytes(csv_bytes(GOOD))
    target.write_bytes(b"old,complete\n")
    real, calls = plainrun.csv_line, []

    def full(cells, excel_safe=False):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(cells, excel_safe)

    monkeypatch.setattr(plainrun, "csv_line", full)
    with pytest.raises(BatchInputError, match="out.csv.*No space left"):
        run_plain_file(source, target, rulebook)
    assert target.read_bytes() == b"old,complete\n" and no_partials(tmp_path) == []


def test_a_read_error_names_the_input(tmp_path, rulebook, monkeypatch):
    source = tmp_path / "in.csv"
    source.write_bytes(csv_bytes(GOOD))
    real = plainrun.read_rows

    def failing(path, width):
        yield next(real(path, width))
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(plainrun, "read_rows", failing)
    with pytest.raises(BatchInputError, match=r"input .*in\.csv: could not read \(Input/output error\)"):
        run_plain_file(source, tmp_path / "out.csv", rulebook)
    assert not (tmp_path / "out.csv").exists() and no_partials(tmp_path) == []


def test_a_one_row_run_imports_no_numpy_pandas_or_pyarrow(tmp_path):
    source, target = tmp_path / "one.csv", tmp_path / "out.csv"
    source.write_text("scenario_id,methotrexate,egfr\np1,intolerant,50\n", encoding="utf-8")
    code = ("import sys\nfrom lupus_rules.cli import main\n"
            f"code = main(['run', {str(source)!r}, '-o', {str(target)!r}])\n"
            "print('heavy:', sorted(m for m in ('numpy', 'pandas', 'pyarrow', 'durable_rules_engine') "
            "if m in sys.modules))\nsys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "engine: python" in done.stdout and "heavy: []" in done.stdout
    assert target.read_text(encoding="utf-8").splitlines()[1].endswith('"python"')
