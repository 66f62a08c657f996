"""The HR error file: which rows, the NIP whole only in its own column, owner-only, safe cells."""

from __future__ import annotations

import csv
import stat
from pathlib import Path

from moodle_bridge.i18n import use_language
from moodle_bridge.reports.repairs import refused_rows, repairs_path, write_repairs
from moodle_bridge.roster.person import RowError, UnknownStatus

NIP = "198001012005011001"


def _error(row: int, column: str | None, value: str, **more: str) -> RowError:
    return RowError(source="r.csv", row=row, column=column, reason="bad", value=value, **more)


def _lines(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def test_the_file_sits_beside_its_report():
    assert repairs_path(Path("/s/reports/sync-3-20261201.json")) == Path(
        "/s/reports/sync-3-20261201-perbaikan.csv"
    )
    assert repairs_path(Path("out/plan.csv")) == Path("out/plan-perbaikan.csv")


def test_refused_rows_and_unknown_statuses_in_file_order_without_rowless_findings():
    late, early = _error(9, "nip", "x"), _error(3, "email", "y")
    unknown = UnknownStatus(source="r.csv", row=5, column="status", reason="?", status="X")
    other = _error(4, "email", "shared")
    rowless = _error(0, "unit", "")
    assert refused_rows([late, early, rowless], [other, unknown]) == [early, unknown, late]


def test_the_nip_is_whole_in_its_column_and_masked_elsewhere(tmp_path: Path):
    errors = [
        _error(2, "NIP Baru", f"{NIP}x"),
        _error(3, "email", f"{NIP}@@kemenag.example"),
        _error(4, "username", f"nip {NIP[:8]} {NIP[8:14]} {NIP[14]} {NIP[15:]}"),
    ]
    path = write_repairs(tmp_path / "p.csv", errors, nip_columns=("nip", "NIP Baru"))
    rows = _lines(path)
    assert rows[1][3] == f"{NIP}x"
    assert rows[2][3] == "1980************01@@kemenag.example"
    assert NIP not in rows[3][3]
    assert NIP[:8] not in "".join(rows[2] + rows[3])


def test_columns_fixes_and_language(tmp_path: Path):
    errors = [_error(2, "nama", "Dr. H.", fix="Write the name."), _error(3, None, "")]
    rows = _lines(write_repairs(tmp_path / "en.csv", errors))
    assert rows == [
        ["file", "row", "column", "value", "what is wrong", "how to fix"],
        ["r.csv", "2", "nama", "Dr. H.", "bad", "Write the name."],
        [
            "r.csv",
            "3",
            "",
            "",
            "bad",
            "Correct this cell in the HR data and export the file again.",
        ],
    ]
    use_language("id")
    rows = _lines(write_repairs(tmp_path / "id.csv", errors[1:]))
    assert rows[0] == ["berkas", "baris", "kolom", "isi sel", "masalah", "cara memperbaiki"]
    assert rows[1][5] == "Perbaiki sel ini di data kepegawaian, lalu ekspor ulang berkasnya."


def test_owner_only_and_formula_safe(tmp_path: Path):
    path = write_repairs(tmp_path / "p.csv", [_error(2, "nama", '=HYPERLINK("http://x","y")')])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _lines(path)[1][3] == '\'=HYPERLINK("http://x","y")'
