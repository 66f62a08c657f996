"""Roster files ─► rows, streamed, with the row numbers a spreadsheet shows.

CSV files are read as UTF-8 (with or without BOM) when every byte of the file is valid UTF-8,
otherwise as Windows-1252; the delimiter (``,``, ``;`` or tab) is the one the header line uses
most. XLSX files are read with openpyxl in read-only mode after a check of the archive against
zip bombs. Which reader applies is decided by the file's first bytes, not its name.

Rows are numbered as a spreadsheet numbers them: the header is row 1 (or the row of the first
non-empty line when the file starts with empty lines), a quoted cell spanning several lines is
one row, and empty rows are counted but not yielded.

Everything that makes the file unusable as a whole raises a :class:`SourceError` (a
:class:`~moodle_bridge.errors.ConfigError`); problems of single rows are the parser's business.
"""

from __future__ import annotations

import codecs
import csv
import re
import zipfile
from collections.abc import Collection, Iterable, Iterator
from datetime import date, datetime, time, timedelta
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import IO, Any, NamedTuple

from moodle_bridge.errors import ConfigError

__all__ = [
    "MAX_XLSX_RATIO",
    "MAX_XLSX_UNCOMPRESSED",
    "DuplicateColumn",
    "MissingColumn",
    "SourceError",
    "SourceRow",
    "UnsafeWorkbook",
    "detect_encoding",
    "header",
    "read_rows",
]

#: Largest total uncompressed size of an XLSX archive's members (bytes).
MAX_XLSX_UNCOMPRESSED = 512 * 1024 * 1024
#: Largest compression ratio of a member bigger than 1 MiB; real sheets compress 5-30 times.
MAX_XLSX_RATIO = 200
_RATIO_FLOOR = 1024 * 1024

_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls (and other OLE documents)
_CHUNK = 1 << 18
# Bytes Windows-1252 leaves undefined: a file with them is neither UTF-8 nor Windows-1252.
_CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
_QUOTED = re.compile(r'"[^"]*"')


class SourceError(ConfigError):
    """The roster file cannot be read at all (missing, unsupported, corrupt, wrong encoding)."""


class MissingColumn(SourceError):
    """A required column is not in the header; ``column`` names it."""

    def __init__(self, column: str, *, path: str | None = None, found: Iterable[str] = ()) -> None:
        shown = ", ".join(found) or "none"
        where = f"{path}: " if path else ""
        super().__init__(
            f"{where}the required column {column!r} is missing (columns found: {shown})"
        )
        self.column = column
        self.path = path


class DuplicateColumn(SourceError):
    """A column this reader needs appears twice in the header; ``column`` names it."""

    def __init__(self, column: str, *, path: str | None = None) -> None:
        where = f"{path}: " if path else ""
        super().__init__(f"{where}the column {column!r} appears more than once in the header")
        self.column = column
        self.path = path


class UnsafeWorkbook(SourceError):
    """The XLSX archive would unpack to more than the limits allow (a zip bomb, or simply huge)."""


class SourceRow(NamedTuple):
    """One non-empty row of a roster file.

    ``row`` is the 1-based row number a spreadsheet shows (header = 1). ``values`` maps each
    lower-cased, stripped header name to the cell text (``""`` for a missing cell). ``extra``
    holds non-empty cells beyond the last header column: usually a delimiter inside an
    unquoted cell, which shifts every column after it.
    """

    row: int
    values: dict[str, str]
    extra: tuple[str, ...] = ()


# --- public entry points -----------------------------------------------------------------------
def header(path: str | Path, *, sheet: str | None = None) -> list[str]:
    """The column names of the file, lower-cased and stripped, in order (empty ones included)."""
    p = Path(path)
    with _open_table(
        p, sheet=sheet, max_uncompressed=MAX_XLSX_UNCOMPRESSED, max_ratio=MAX_XLSX_RATIO
    ) as table:
        names, _ = _read_header(table.rows, p)
        return names


def read_rows(
    path: str | Path,
    *,
    required: Collection[str] = (),
    columns: Collection[str] | None = None,
    sheet: str | None = None,
    max_uncompressed: int = MAX_XLSX_UNCOMPRESSED,
    max_ratio: float = MAX_XLSX_RATIO,
) -> Iterator[SourceRow]:
    """Stream the non-empty rows of a CSV or XLSX roster.

    ``required`` columns must be in the header (else :class:`MissingColumn`, raised on the first
    ``next()``). ``columns`` limits ``values`` to these names (all columns when ``None``); a
    name among them that appears twice in the header raises :class:`DuplicateColumn` (elsewhere
    the first occurrence wins). ``sheet`` picks an XLSX sheet by name (default: the first).
    Raises :class:`SourceError` (or :class:`UnsafeWorkbook`) when the file cannot be read.
    """
    p = Path(path)
    with _open_table(
        p, sheet=sheet, max_uncompressed=max_uncompressed, max_ratio=max_ratio
    ) as table:
        names, header_row = _read_header(table.rows, p)
        for column in required:
            if column not in names:
                raise MissingColumn(column, path=p.name, found=[n for n in names if n])
        wanted = set(columns) if columns is not None else None
        index: dict[str, int] = {}
        for i, name in enumerate(names):
            if not name or (wanted is not None and name not in wanted):
                continue
            if name in index:
                if wanted is not None:
                    raise DuplicateColumn(name, path=p.name)
                continue
            index[name] = i
        keys = tuple(index)
        pairs = tuple(index.items())
        # One C-level call picks every wanted cell of a full-width row.
        pick = itemgetter(*index.values()) if len(index) > 1 else None
        needed = max(index.values(), default=-1) + 1
        width = len(names)
        number = header_row
        for cells in table.rows:
            number += 1
            first = cells[0] if cells else ""
            # A row of blanks is empty to a clerk too.
            if (not first or first.isspace()) and not "".join(cells).strip():
                continue
            n = len(cells)
            if n >= needed and pick is not None:
                values = dict(zip(keys, pick(cells), strict=True))
            else:
                values = {name: cells[i] if i < n else "" for name, i in pairs}
            if n <= width:
                yield SourceRow(number, values)
            else:
                extra = tuple(c for c in cells[width:] if c and not c.isspace())
                yield SourceRow(number, values, extra)


def detect_encoding(path: str | Path) -> str:
    """The codec for a CSV file: ``utf-8-sig``, ``utf-8`` or ``cp1252``.

    The whole file is checked in 256 KiB chunks, so a Windows-1252 byte on the last line is still
    found before the first row is handed out. Raises :class:`SourceError` for UTF-16 files and
    for bytes that are neither UTF-8 nor Windows-1252.
    """
    p = Path(path)
    try:
        with p.open("rb") as f:
            start = f.read(4)
            if start.startswith(codecs.BOM_UTF8):
                f.seek(3)
                _check_utf8(f, p)
                return "utf-8-sig"
            if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                msg = (
                    f"{p.name}: the file is UTF-16 ('Unicode text'); "
                    "save it as 'CSV UTF-8' or as .xlsx"
                )
                raise SourceError(msg)
            f.seek(0)
            if _is_utf8(f):
                return "utf-8"
            f.seek(0)
            _check_cp1252(f, p)
            return "cp1252"
    except OSError as exc:
        msg = f"{p.name}: cannot read the file: {exc.strerror or exc}"
        raise SourceError(msg) from exc


# --- tables ------------------------------------------------------------------------------------
class _Table:
    """Rows of cells (lists of str) from one file, closed with the context manager."""

    def __init__(self, rows: Iterator[list[str]], closer: Any) -> None:
        self.rows = rows
        self._closer = closer

    def __enter__(self) -> _Table:
        return self

    def __exit__(self, *exc: object) -> None:
        self._closer()


def _open_table(
    path: Path, *, sheet: str | None, max_uncompressed: int, max_ratio: float
) -> _Table:
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        msg = f"{path.name}: cannot read the file: {exc.strerror or exc}"
        raise SourceError(msg) from exc
    if magic == _ZIP_MAGIC:
        return _open_xlsx(path, sheet=sheet, max_uncompressed=max_uncompressed, max_ratio=max_ratio)
    if magic == _OLE_MAGIC:
        msg = f"{path.name}: old Excel (.xls) files are not supported; save it as .xlsx or CSV"
        raise SourceError(msg)
    return _open_csv(path)


def _read_header(rows: Iterator[list[str]], path: Path) -> tuple[list[str], int]:
    for number, cells in enumerate(rows, start=1):
        if any(c.strip() for c in cells):
            return [" ".join(c.replace("\ufeff", "").split()).lower() for c in cells], number
    msg = f"{path.name}: the file is empty (no header row)"
    raise SourceError(msg)


# --- CSV ---------------------------------------------------------------------------------------
def _is_utf8(f: IO[bytes]) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while chunk := f.read(_CHUNK):
            if not chunk.isascii():
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _check_utf8(f: IO[bytes], path: Path) -> None:
    # The BOM says UTF-8: a bad byte after it is an error, not a hint to guess another codec.
    offset = f.tell()
    if not _is_utf8(f):
        msg = (
            f"{path.name}: the file starts with a UTF-8 mark but has bytes that are not UTF-8; "
            "save it again as 'CSV UTF-8'"
        )
        raise SourceError(msg)
    f.seek(offset)


def _check_cp1252(f: IO[bytes], path: Path) -> None:
    line = 1
    while chunk := f.read(_CHUNK):
        bad = _CP1252_UNDEFINED.search(chunk)
        if bad is not None:
            line += chunk.count(b"\n", 0, bad.start())
            msg = (
                f"{path.name}: line {line} has a byte (0x{chunk[bad.start()]:02X}) that is "
                "neither UTF-8 nor Windows-1252; save the file as 'CSV UTF-8'"
            )
            raise SourceError(msg)
        line += chunk.count(b"\n")


def _sniff_delimiter(line: str) -> str:
    unquoted = _QUOTED.sub("", line)
    counts = {d: unquoted.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _open_csv(path: Path) -> _Table:
    encoding = detect_encoding(path)
    try:
        f = path.open("r", encoding=encoding, newline="")
    except OSError as exc:
        msg = f"{path.name}: cannot read the file: {exc.strerror or exc}"
        raise SourceError(msg) from exc
    return _Table(_csv_rows(f, path), f.close)


def _csv_rows(f: IO[str], path: Path) -> Iterator[list[str]]:
    number = 0
    try:
        first = f.readline()
        reader = csv.reader(chain((first,), f), delimiter=_sniff_delimiter(first))
        for cells in reader:
            number += 1
            yield cells
    except csv.Error as exc:
        msg = (
            f"{path.name}: row {number + 1} cannot be read ({exc}); "
            'a quotation mark (") that is opened and never closed is the usual cause'
        )
        raise SourceError(msg) from exc
    except (UnicodeDecodeError, OSError) as exc:
        msg = f"{path.name}: reading stopped at row {number + 1}: {exc}"
        raise SourceError(msg) from exc


# --- XLSX --------------------------------------------------------------------------------------
def _check_archive(path: Path, *, max_uncompressed: int, max_ratio: float) -> None:
    """Refuse a zip bomb before openpyxl opens it.

    zipfile never inflates a member beyond the size its header declares (it stops there and
    fails the CRC check), so the declared sizes are a safe bound.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        ValueError,
        EOFError,
        NotImplementedError,
    ) as exc:
        msg = f"{path.name}: not a valid .xlsx file ({exc})"
        raise SourceError(msg) from exc
    total = 0
    for info in members:
        total += info.file_size
        if info.file_size > _RATIO_FLOOR:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > max_ratio:
                msg = (
                    f"{path.name}: refused: {info.filename} would expand {ratio:.0f} times "
                    f"(limit {max_ratio:.0f}); this is what a zip bomb looks like"
                )
                raise UnsafeWorkbook(msg)
    if total > max_uncompressed:
        msg = (
            f"{path.name}: refused: the workbook would unpack to {total / 2**20:.0f} MiB, "
            f"more than the limit of {max_uncompressed / 2**20:.0f} MiB; export it as CSV"
        )
        raise UnsafeWorkbook(msg)


def _open_xlsx(path: Path, *, sheet: str | None, max_uncompressed: int, max_ratio: float) -> _Table:
    _check_archive(path, max_uncompressed=max_uncompressed, max_ratio=max_ratio)
    # openpyxl may fail in many ways on a corrupt file (KeyError, ValueError, XML errors...);
    # all of them mean the same thing to the caller: this workbook cannot be read.
    try:
        # A file object, not the path: openpyxl would refuse a workbook named ``.csv``.
        stream = path.open("rb")
    except OSError as exc:
        msg = f"{path.name}: cannot read the file: {exc.strerror or exc}"
        raise SourceError(msg) from exc
    try:
        from openpyxl import load_workbook  # type: ignore[import-untyped, unused-ignore]

        workbook = load_workbook(stream, read_only=True, data_only=True, keep_links=False)
    except Exception as exc:
        stream.close()
        msg = f"{path.name}: the workbook cannot be opened ({type(exc).__name__}: {exc})"
        raise SourceError(msg) from exc

    def close() -> None:
        try:
            workbook.close()
        finally:
            stream.close()

    try:
        if sheet is None:
            if not workbook.worksheets:
                msg = f"{path.name}: the workbook has no sheet"
                raise SourceError(msg)
            worksheet = workbook.worksheets[0]
        elif sheet in workbook.sheetnames:
            worksheet = workbook[sheet]
        else:
            names = ", ".join(workbook.sheetnames)
            msg = f"{path.name}: no sheet named {sheet!r} (sheets: {names})"
            raise SourceError(msg)
        if not hasattr(worksheet, "reset_dimensions"):
            msg = f"{path.name}: the first sheet is a chart, not a table"
            raise SourceError(msg)
        # Some exporters write a wrong dimension (A1:A1); reading without it is always right.
        worksheet.reset_dimensions()
    except BaseException:
        close()
        raise
    return _Table(_xlsx_rows(worksheet.iter_rows(values_only=True), path), close)


def _xlsx_rows(rows: Iterator[tuple[Any, ...]], path: Path) -> Iterator[list[str]]:
    number = 0
    try:
        for values in rows:
            number += 1
            yield [_cell_text(v) for v in values]
    except SourceError:
        raise
    except Exception as exc:
        msg = f"{path.name}: row {number + 1} of the sheet cannot be read ({type(exc).__name__})"
        raise SourceError(msg) from exc


_MAX_EXACT_FLOAT = 2**53


def _cell_text(value: Any) -> str:
    """A cell value as the text a clerk sees, keeping lost precision visible."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < _MAX_EXACT_FLOAT:
            return str(int(value))
        text = repr(value)
        if value.is_integer() and "e" not in text:
            # A whole number beyond 2**53 is not exact (an 18-digit NIP typed as a number):
            # show it in scientific form so nothing downstream mistakes it for the digits.
            text = f"{value:.15e}"
        return text.upper() if "e" in text else text
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)
