"""Spreadsheet exports that are safe to open: formula-escaped cells, owner-only files.

Formula injection: a cell whose text starts with ``=``, ``+``, ``-``, ``@``, tab, CR or LF
would be read as a formula by Excel, LibreOffice or Google Sheets (``=HYPERLINK(...)`` in a
name sent to a colleague is enough). :func:`escape_cell` prefixes such text with a single
quote ``'``; every text cell of every CSV and XLSX written here goes through it. Numbers
(JP, counts) are written as numbers and dates as dates; they need no escape.

CSV: UTF-8 *with* a byte-order mark, comma-separated, CRLF line ends, quoted where needed
(RFC 4180). The BOM makes Excel read names like ``Nur'aini`` or ``Nurul Huda`` as UTF-8 instead
of Windows-1252; Python's ``utf-8-sig``, pandas and LibreOffice skip it. The comma is the
interchange default; Excel in the Indonesian locale expects ``;`` when a CSV is
double-clicked, which is one reason every table is also written as XLSX: people open the
XLSX, programs (and uploads) read the CSV. A different ``delimiter`` may be asked for. The NIP
is written as its 18 digits; Excel would turn it into ``1.97501E+17`` when opening a CSV, so
again: open the XLSX, whose NIP column is text. A date is written ``YYYY-MM-DD`` (ISO 8601).

XLSX: openpyxl in write-only mode (a whole ministry is 233,000 rows), text cells as shared
strings, never formulas; characters XML cannot hold (control characters other than tab, CR,
LF) become U+FFFD. A date is a date cell (a day number formatted ``yyyy-mm-dd``), which a
spreadsheet sorts and filters as a date and an upload reads as one.

Files: written to a temporary file in the target directory, created ``0600`` (owner read and
write only), then renamed over the target, so a reader never sees half a report and an older
report with wider permissions is replaced, not reused. :func:`private_dir` creates the output
directory ``0700``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from moodle_bridge.files import DIR_MODE, FILE_MODE, private_dir, write_private

if TYPE_CHECKING:
    from openpyxl.cell.cell import Cell as SheetCell
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet

__all__ = [
    "DATE_FORMAT",
    "DIR_MODE",
    "FILE_MODE",
    "FORMULA_PREFIXES",
    "Cell",
    "csv_bytes",
    "escape_cell",
    "private_dir",
    "write_csv",
    "write_private",
    "write_xlsx",
    "xlsx_bytes",
]

#: A text cell starting with one of these is escaped.
FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r", "\n")

#: A cell value: text (escaped), a whole number, a day, or empty.
Cell = str | int | dt.date | None

#: How an XLSX date cell shows its day.
DATE_FORMAT = "yyyy-mm-dd"

_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def escape_cell(value: str) -> str:
    """``value`` with a ``'`` in front when it starts like a formula, else unchanged."""
    if value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return escape_cell(value)


def csv_bytes(
    header: Sequence[str], rows: Iterable[Sequence[Cell]], *, delimiter: str = ","
) -> bytes:
    """The CSV file (UTF-8 with BOM, CRLF) of ``header`` and ``rows``, every cell escaped."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow([escape_cell(h) for h in header])
    for row in rows:
        writer.writerow([_text(v) for v in row])
    return buffer.getvalue().encode("utf-8-sig")


def xlsx_bytes(
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    sheet: str = "Data",
    widths: Sequence[int] = (),
) -> bytes:
    """The XLSX workbook of ``header`` and ``rows``: one sheet, a bold frozen header row, text
    columns formatted as text (``@``), every text cell escaped and never a formula."""
    # openpyxl (and the numpy it loads) costs a command a third of a second to start: only
    # the commands that write spreadsheets pay for it.
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    ws = book.create_sheet(title=sheet[:31])
    for index, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(index)].width = width
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DCE6F1")
    head: list[SheetCell] = []
    for title in header:
        cell = WriteOnlyCell(ws, value=_xml(escape_cell(title)))
        cell.font = bold
        cell.fill = fill
        cell.alignment = Alignment(vertical="top", wrap_text=True)
        head.append(cell)
    ws.append(head)
    for row in rows:
        ws.append([_sheet_cell(ws, value, WriteOnlyCell) for value in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _sheet_cell(
    ws: WriteOnlyWorksheet, value: Cell, make: Callable[..., SheetCell]
) -> SheetCell:
    if isinstance(value, int):
        return make(ws, value=value)
    if isinstance(value, dt.date):
        day = make(ws, value=dt.datetime.combine(value, dt.time()))
        day.number_format = DATE_FORMAT
        return day
    cell = make(ws, value=_xml(_text(value)))
    cell.data_type = "s"
    cell.number_format = "@"
    return cell


def _xml(text: str) -> str:
    return _XML_ILLEGAL.sub("\ufffd", text)


def write_csv(
    path: Path,
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    delimiter: str = ",",
) -> Path:
    """Write a formula-safe CSV (see :func:`csv_bytes`), owner-only."""
    return write_private(path, csv_bytes(header, rows, delimiter=delimiter))


def write_xlsx(
    path: Path,
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    *,
    sheet: str = "Data",
    widths: Sequence[int] = (),
) -> Path:
    """Write a formula-safe XLSX (see :func:`xlsx_bytes`), owner-only."""
    return write_private(path, xlsx_bytes(header, rows, sheet=sheet, widths=widths))
