"""``moodle-bridge report`` from the state database alone: people as last applied, the ledger."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner

from moodle_bridge.cli import main
from moodle_bridge.store import LedgerEntry, NewAccount, Store

NIP_A, NIP_B = "198001012005011001", "198203152006042002"
JAN_2026 = 1_767_225_600  # 2026-01-01 07:00 WIB


def record(first: str, last: str, satker: str) -> dict[str, str]:
    return {"firstname": first, "lastname": last, "profile_field_satker": satker}


def test_report_totals_jp_per_person_from_the_ledger(tmp_path: Path):
    state = tmp_path / "state"
    with Store.open(state / "state.sqlite3") as store:
        store.record_accounts([
            NewAccount(NIP_A, 10, NIP_A, "PENDIS", "h", record=record("Nur", "Aini", "MAN 1")),
            NewAccount(NIP_B, 11, NIP_B, "PENDIS", "h", record=record("=Siti", "R", "MAN 2")),
        ])
        store.record_completions([
            LedgerEntry(NIP_A, "MAN-INTEG-12", JAN_2026, 20, "MAN-INTEG", 2),
            LedgerEntry(NIP_A, "SOS-KULT-23", JAN_2026 + 86400, 12, "SOS-KULT", 3),
            LedgerEntry(NIP_B, "MAN-INTEG-12", JAN_2026 - 86400 * 2, 20, "MAN-INTEG", 2),
        ])
    config = tmp_path / "moodle-bridge.toml"
    config.write_text(f'[state]\ndir = "{state}"\n')
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["--config", str(config), "report", "--unit", "PENDIS",
                                       "--year", "2026", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["people"], data["trainings"]) == (2, 2)
    people_csv = next(Path(p) for p in data["files"] if p.endswith("pegawai.csv"))
    rows = list(csv.reader(people_csv.read_text(encoding="utf-8-sig").splitlines()))
    by_nip = {row[0]: row for row in rows[1:]}
    # 32 JP in 2026 for A (meets 20 JP); B's completion was in 2025.
    assert "32" in by_nip[NIP_A]
    assert "Ya" in by_nip[NIP_A]
    assert "0" in by_nip[NIP_B]
    assert "Tidak" in by_nip[NIP_B]
    # A name that looks like a formula is escaped in the export.
    assert any(cell.startswith("'=Siti") for cell in by_nip[NIP_B])
    assert oct(people_csv.stat().st_mode & 0o777) == "0o600"
