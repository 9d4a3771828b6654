"""CSV text without numpy, pandas or pyarrow: the careful record reader and a writer quoting like pyarrow's.

The reader splits a file into records by the same rules as pyarrow's CSV
reader (LF, CRLF and CR end a record outside quotes; a quote opens a quoted
value only at the start of a cell; blank lines are skipped) and reads each
record alone, so a bad row (ragged, not UTF-8, over :data:`MAX_ROW_BYTES`, an
unclosed quote) fails alone with its line number. :mod:`lupus_rules.batch`
uses it for the rows pyarrow refuses; the pure-Python run of a small file
(:mod:`lupus_rules.plainrun`) reads the whole file with it.

The writer (:func:`csv_line`) writes what ``pyarrow.csv.CSVWriter`` writes for
text columns: every name and every cell in double quotes (a quote doubled
inside), ``,`` between cells, ``\n`` after every row; ``excel_safe`` prefixes
formula-like cells with ``'`` as :func:`lupus_rules.batch.write_chunks` does.

Not for clinical use.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BatchInputError

__all__ = ["MAX_ROW_BYTES", "header_text", "header_names", "read_rows", "csv_line", "excel_safe_cell"]

#: A CSV row longer than this (bytes) fails with an error instead of being read; pyarrow's block size.
MAX_ROW_BYTES = 1 << 20
_BLOCK = 1 << 20


@dataclass
class _Record:
    """One CSV record: its first line, its bytes (``None`` when over :data:`MAX_ROW_BYTES`), where it ends.

    ``open_quote``: the file ended inside a quoted value begun in this record.
    """

    line: int
    data: bytes | None
    size: int
    end: int
    next_line: int
    open_quote: bool = False


# Lexer states, as pyarrow's: at a cell's start, in an unquoted cell, in a quoted one, just after a quote in one.
_START, _UNQUOTED, _QUOTED, _QUOTE_SEEN = range(4)
_EOL = re.compile(rb"\r\n|\r|\n")


def _lex(state: int, data: bytes) -> int:
    """The lexer state after ``data`` (no line ends in it) from ``state``."""
    i, n = 0, len(data)
    while i < n:
        if state == _START:
            if data[i] == 0x22:
                state, i = _QUOTED, i + 1
            else:
                state = _UNQUOTED
        elif state == _UNQUOTED:  # a quote matters only at a cell's start: after a comma
            j = data.find(b',"', i)
            if j < 0:
                return _START if data[-1] == 0x2C else _UNQUOTED
            state, i = _QUOTED, j + 2
        elif state == _QUOTED:
            j = data.find(b'"', i)
            if j < 0:
                return _QUOTED
            state, i = _QUOTE_SEEN, j + 1
        elif data[i] == 0x22:  # _QUOTE_SEEN: a doubled quote stays in the value
            state, i = _QUOTED, i + 1
        elif data[i] == 0x2C:
            state, i = _START, i + 1
        else:
            state = _UNQUOTED
    return state


def _csv_records(handle: Any, offset: int, line: int) -> Iterator[_Record]:
    """Records from the handle's position (byte ``offset``, line ``line``), blank lines skipped.

    Memory holds about two blocks and one record; a record over
    :data:`MAX_ROW_BYTES` is measured, not kept.
    """
    parts: list[bytes] = []
    size, first, state = 0, line, _START
    carry, base = b"", offset  # base: the file offset of buffer[0]
    while True:
        block = handle.read(_BLOCK)
        buffer = carry + block
        limit = len(buffer) - 1 if block and buffer.endswith(b"\r") else len(buffer)  # a CR may start a CRLF
        pos = 0
        for match in _EOL.finditer(buffer, 0, limit):
            state = _lexed(state, buffer[pos:match.start()])
            size += match.end() - pos
            if size <= MAX_ROW_BYTES:
                parts.append(buffer[pos:match.end()])
            pos, line = match.end(), line + 1
            if state != _QUOTED:
                if (record := _finished(parts, size, first, base + pos, line)) is not None:
                    yield record
                parts, size, first, state = [], 0, line, _START
        keep = buffer[pos:limit] if not block or len(buffer) - pos > _BLOCK else b""
        if keep:  # the file's last line without its line end, or a very long line: lex it piece by piece
            state = _lexed(state, keep)
            size += len(keep)
            parts = parts + [keep] if size <= MAX_ROW_BYTES else []
        if not block:
            if size and (record := _finished(parts, size, first, base + len(buffer), line + 1)) is not None:
                record.open_quote = state == _QUOTED
                yield record
            return
        carry = buffer[pos + len(keep):]
        base += len(buffer) - len(carry)


def _lexed(state: int, piece: bytes) -> int:
    if state == _START and b'"' not in piece:
        return _START  # no quote, no quoted value: the common case, without lexing
    return _lex(state, piece)


def _finished(parts: list[bytes], size: int, first: int, end: int, next_line: int) -> _Record | None:
    """The record, or None for a blank line (pyarrow skips those too)."""
    if size > MAX_ROW_BYTES:
        return _Record(first, None, size, end, next_line)
    data = b"".join(parts)
    return _Record(first, data, size, end, next_line) if data.rstrip(b"\r\n") else None


def _parse_record(record: _Record, width: int) -> tuple[list[str], str]:
    """(cells, error) of one record; a bad record gets ``width`` cells (padded, cut or empty) and its error."""
    where = f"line {record.line}"
    if record.open_quote:
        return [""] * width, (f"{where}: a quoted value is not closed before the end of the file, so every "
                              "later line is part of this row; allowed: a closing \" (write \"\" for a quote "
                              "inside a value)")
    if record.data is None:
        return [""] * width, (f"{where}: row too large: {record.size:,} bytes; "
                              f"allowed: at most {MAX_ROW_BYTES:,} bytes per row")
    error = ""
    try:
        text = record.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = record.data.decode("utf-8", "replace")
        error = (f"{where}: not UTF-8: byte 0x{record.data[exc.start]:02x} at byte {exc.start + 1} of the row; "
                 "allowed: UTF-8 text")
    try:
        cells = next(csv.reader([text]), [])
    except csv.Error as exc:
        return [""] * width, f"{where}: unreadable row: {exc}"
    if len(cells) != width and not error:
        error = f"{where}: ragged row: {len(cells)} cells; allowed: {width}, one per header column"
    return (cells + [""] * width)[:width], error



def header_text(source: Path) -> str:
    """The CSV's first record (its header row) as text; only that record is read and decoded."""
    with source.open("rb") as handle:
        record = next(_csv_records(handle, 0, 1), None)
    if record is None:
        return ""
    if record.data is None:
        raise BatchInputError(f"input {source}: header row too large ({record.size:,} bytes; "
                              f"allowed: at most {MAX_ROW_BYTES:,})")
    try:
        return record.data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BatchInputError(f"input {source}: header row is not UTF-8 (byte 0x{record.data[exc.start]:02x} "
                              f"at byte {exc.start + 1}); allowed: UTF-8 text") from None


def header_names(source: Path) -> list[str]:
    """The header row's cells as written (Python's ``csv`` reading; no renaming of repeated or empty names)."""
    text = header_text(source)
    if not text:
        raise BatchInputError(f"input {source} is empty: a CSV needs a header row of fact names")
    try:
        return next(csv.reader([text]), [])
    except csv.Error as exc:
        raise BatchInputError(f"input {source} has an unreadable header row: {exc}") from None


def read_rows(source: Path, width: int) -> Iterator[tuple[list[str], str]]:
    """Every record after the header as (``width`` cells, read error or ``''``), in file order.

    Memory holds about two blocks and one record, whatever the file size.
    """
    csv.field_size_limit(max(csv.field_size_limit(), MAX_ROW_BYTES))  # process-wide; only ever raised
    with source.open("rb") as handle:
        records = _csv_records(handle, 0, 1)
        next(records, None)  # the header row
        for record in records:
            yield _parse_record(record, width)


def csv_line(cells: Sequence[str], excel_safe: bool = False) -> str:
    """One row as pyarrow's CSV writer writes text cells: each quoted, quotes doubled, ``\n`` at the end."""
    if excel_safe:
        cells = [excel_safe_cell(cell) for cell in cells]
    return ",".join(['"' + cell.replace('"', '""') + '"' for cell in cells]) + "\n"


_RISKY = re.compile(r"[=+\-@\t\r]")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")


def excel_safe_cell(cell: str) -> str:
    """``cell`` prefixed with ``'`` when a spreadsheet would run it as a formula (and it is not a plain number)."""
    if _RISKY.match(cell) and not _NUMBER.match(cell):
        return "'" + cell
    return cell
