"""``plan`` and ``sync`` in English and in Bahasa Indonesia, and the HR error file.

People's text (row errors, warnings, reasons, summaries, the HR file) follows ``--lang``, else
``MOODLE_BRIDGE_LANG``, else the locale; English stays what it was.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from moodle_bridge.cli import main, provision_cmd
from tests.e2e.conftest import Bridge, nip, people, person

#: An 18-digit NIP whose birth month is 13: refused, and shown whole in the HR file.
BAD_NIP = "198013012005011002"

TEXTS = {
    "en": {
        "lead": "Roster ",
        "roster": "roster1.csv: 6 rows, 2 people, 3 refused, 1 warnings, 1 rows with no readable "
        "NIP; scope PENDIS, SETJEN.",
        "refused": "Refused rows (3):",
        "nip": "roster1.csv row 3 [nip]: The first 8 digits of the NIP must be the birth date",
        "email": "roster1.csv row 4 [email]: An email address has exactly one @",
        "name": "roster1.csv row 6 [nama]: The name has only titles",
        "warnings": "Warnings (1):",
        "status": "roster1.csv row 5 [status]: Unknown status 'TUGAS X'",
        "plan": "Plan: 2 create.",
        "change": "  create (2):",
        "reason": ": new in the roster",
        "hr": "Rows for HR to correct, with how to fix each: ",
        "header": ["file", "row", "column", "value", "what is wrong", "how to fix"],
        "fix": "Check the NIP against the person's SK or SIASN data and correct it.",
    },
    "id": {
        "lead": "Daftar pegawai ",
        "roster": "roster1.csv: 6 baris, 2 pegawai, 3 ditolak, 1 peringatan, 1 baris tanpa NIP "
        "yang dapat dibaca; cakupan PENDIS, SETJEN.",
        "refused": "Baris yang ditolak (3):",
        "nip": "roster1.csv baris 3 [nip]: 8 digit pertama NIP harus berupa tanggal lahir",
        "email": "roster1.csv baris 4 [email]: Alamat email harus memuat tepat satu tanda @",
        "name": "roster1.csv baris 6 [nama]: Nama hanya berisi gelar",
        "warnings": "Peringatan (1):",
        "status": "roster1.csv baris 5 [status]: Status 'TUGAS X' tidak dikenal",
        "plan": "Rencana: 2 buat akun.",
        "change": "  buat akun (2):",
        "reason": ": baru dalam daftar pegawai",
        "hr": "Baris yang perlu diperbaiki bagian kepegawaian, beserta cara memperbaikinya: ",
        "header": ["berkas", "baris", "kolom", "isi sel", "masalah", "cara memperbaiki"],
        "fix": "Cocokkan NIP dengan SK atau data SIASN pegawai tersebut, lalu perbaiki.",
    },
}


def _dirty(bridge: Bridge) -> Path:
    """Two good rows, three refused (NIP, email, name) and one unknown status."""
    return bridge.roster(
        [
            person(1),
            person(2, nip=BAD_NIP),
            person(3, email=f"{nip(3)}@@kemenag.example"),
            person(4, status="TUGAS X"),
            person(5, nama="Dr. H."),
            person(6, unit="PENDIS"),
        ]
    )


def _csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def _hr_file(output: str, lead: str) -> Path:
    line = next(line for line in output.splitlines() if line.startswith(lead))
    return Path(line.removeprefix(lead))


@pytest.mark.parametrize("lang", ["en", "id"])
def test_plan_speaks_the_language_and_writes_the_hr_file(bridge: Bridge, lang: str):
    texts = TEXTS[lang]
    out = bridge.tmp_path / "out" / "plan.csv"
    run = bridge.invoke(
        "--lang", lang, "plan", "--plugin", "generic", "--roster", str(_dirty(bridge)),
        "--out", str(out),
    )  # fmt: skip
    assert run.exit_code == 1, run.output
    for key in ("roster", "refused", "nip", "email", "name", "warnings", "status", "plan"):
        assert texts[key] in run.output, key
    lines = run.output.splitlines()
    assert lines[0].startswith(texts["lead"])
    assert texts["change"] in lines
    assert sum(line.endswith(texts["reason"]) for line in lines) == 2

    hr_file = _hr_file(run.output, texts["hr"])
    assert hr_file == out.with_name("plan-perbaikan.csv")
    assert hr_file.stat().st_mode & 0o777 == 0o600
    rows = _csv(hr_file)
    assert rows[0] == texts["header"]
    assert [(r[1], r[2]) for r in rows[1:]] == [
        ("3", "nip"), ("4", "email"), ("5", "status"), ("6", "nama"),
    ]  # fmt: skip
    # The NIP is whole in the NIP column (HR must find the row), masked anywhere else.
    assert rows[1][3] == BAD_NIP
    assert rows[1][5] == texts["fix"]
    assert rows[2][3] == f"{nip(3)[:4]}************{nip(3)[-2:]}@@kemenag.example"
    assert rows[3][3] == "TUGAS X"
    assert rows[4][3] == "Dr. H."
    assert all(row[4] and row[5] for row in rows[1:])


def test_plan_without_out_keeps_the_hr_file_in_the_state(bridge: Bridge):
    run = bridge.invoke("plan", "--plugin", "generic", "--roster", str(_dirty(bridge)))
    hr_file = _hr_file(run.output, TEXTS["en"]["hr"])
    assert hr_file.parent == bridge.state_dir / "reports"
    assert re.fullmatch(r"plan-\d{8}-\d{6}-perbaikan\.csv", hr_file.name)
    assert len(_csv(hr_file)) == 5


def test_a_clean_roster_writes_no_hr_file(bridge: Bridge):
    roster = bridge.roster(people(range(1, 4)))
    run = bridge.invoke("plan", "--plugin", "generic", "--roster", str(roster), "--json")
    assert run.exit_code == 0
    assert run.data is not None
    assert run.data["repairs_file"] is None
    assert not list(bridge.state_dir.rglob("*-perbaikan.csv"))


SYNC_TEXTS = {
    "en": {
        "applied": "Applied: 2 create.",
        "calls": re.compile(r"^\d+ Moodle calls in \d+\.\d s\.$", re.M),
        "report": "Report: ",
        "moved": f": moved from {person(1)['unit']} to PENDIS",
        "plan": "Plan: 1 update, 1 suspend, 1 move.",
        "suspend": "  suspend (1):",
        "pensiun": ": status PENSIUN",
        "guard": "STOPPED by a safety guard: the roster lists nobody but the bridge manages 2 "
        "accounts.",
    },
    "id": {
        "applied": "Diterapkan: 2 buat akun.",
        "calls": re.compile(r"^\d+ panggilan ke Moodle dalam \d+\.\d detik\.$", re.M),
        "report": "Laporan: ",
        "moved": f": pindah dari {person(1)['unit']} ke PENDIS",
        "plan": "Rencana: 1 perbarui, 1 tangguhkan, 1 pindah unit.",
        "suspend": "  tangguhkan (1):",
        "pensiun": ": status PENSIUN",
        "guard": "DIHENTIKAN oleh pengaman: daftar pegawai tidak memuat seorang pun, padahal "
        "bridge mengelola 2 akun.",
    },
}


def _sync_text(bridge: Bridge, lang: str, roster: Path, *options: str) -> tuple[int, str]:
    run = bridge.invoke(
        "--lang", lang, "sync", "--plugin", "generic", "--roster", str(roster), "--yes", *options
    )
    return run.exit_code, run.output


@pytest.mark.parametrize("lang", ["en", "id"])
def test_sync_speaks_the_language_from_first_run_to_guard(bridge: Bridge, lang: str):
    texts, words = SYNC_TEXTS[lang], TEXTS[lang]
    code, output = _sync_text(bridge, lang, _dirty(bridge))
    assert code == 1, output
    assert words["nip"] in output
    assert texts["applied"] in output
    assert texts["calls"].search(output)
    report = _hr_file(output, texts["report"])
    hr_file = _hr_file(output, words["hr"])
    assert hr_file == report.with_name(report.stem + "-perbaikan.csv")
    assert _csv(hr_file)[0] == words["header"]
    assert _csv(hr_file)[1][:4] == ["roster1.csv", "3", "nip", BAD_NIP]

    # Person 1 moves to PENDIS; person 6 retires.
    moved = bridge.roster([person(1, unit="PENDIS"), person(6, unit="PENDIS", status="PENSIUN")])
    code, output = _sync_text(bridge, lang, moved, "--scope", "PENDIS")
    assert code == 0, output
    assert texts["plan"] in output
    assert texts["moved"] in output
    assert texts["suspend"] in output.splitlines()
    assert texts["pensiun"] in output
    assert words["hr"] not in output
    # The run's per-person change file gives the reasons in the run's language too.
    changes = _csv(_hr_file(output, texts["report"]).with_suffix(".csv"))
    assert ["move", nip(1)] == changes[1][:2]
    assert changes[1][5] == texts["moved"][2:]

    empty = bridge.roster([])
    code, output = _sync_text(bridge, lang, empty)
    assert code == 3
    assert texts["guard"] in output


def test_the_confirmation_asks_in_the_language(bridge: Bridge, monkeypatch: pytest.MonkeyPatch):
    # A terminal is what makes sync ask; "t" (tidak) declines and "l" (lihat) lists.
    tty = SimpleNamespace(stdin=SimpleNamespace(isatty=lambda: True))
    monkeypatch.setattr(provision_cmd, "sys", tty)
    roster = bridge.roster(people(range(1, 3)))
    result = CliRunner().invoke(
        main,
        ["--config", str(bridge.config), "--lang", "id", "sync", "--plugin", "generic",
         "--roster", str(roster)],
        env=bridge.env,
        input="l\nt\n",
    )  # fmt: skip
    assert "Terapkan rencana ini ke Moodle? [y]a, [t]idak, [l]ihat semua perubahan" in (
        result.output
    )
    assert result.output.count("baru dalam daftar pegawai") >= 4
    assert "Tidak ada yang diterapkan." in result.output
    assert not bridge.users_by_idnumber(nip(1))


def _plan_words(bridge: Bridge, *lang: str) -> str:
    roster = bridge.roster([person(1, nip="")])
    run = bridge.invoke(*lang, "plan", "--plugin", "generic", "--roster", str(roster))
    assert run.exit_code == 1, run.output
    if "The NIP is empty" in run.output:
        return "en"
    assert "NIP kosong" in run.output
    return "id"


@pytest.mark.parametrize(
    ("option", "environ", "expected"),
    [
        (("--lang", "en"), {"MOODLE_BRIDGE_LANG": "id", "LC_ALL": "id_ID.UTF-8"}, "en"),
        (("--lang", "id"), {"MOODLE_BRIDGE_LANG": "en"}, "id"),
        ((), {"MOODLE_BRIDGE_LANG": "id", "LC_ALL": "en_US.UTF-8"}, "id"),
        ((), {"MOODLE_BRIDGE_LANG": "en", "LC_ALL": "id_ID.UTF-8"}, "en"),
        ((), {"LC_ALL": "id_ID.UTF-8"}, "id"),
        ((), {"LANG": "id_ID.UTF-8"}, "id"),
        ((), {"LC_ALL": "C.UTF-8", "LANG": "id_ID.UTF-8"}, "en"),
        ((), {}, "en"),
    ],
)
def test_option_beats_environment_beats_locale(
    bridge: Bridge,
    monkeypatch: pytest.MonkeyPatch,
    option: tuple[str, ...],
    environ: dict[str, str],
    expected: str,
):
    for name in ("MOODLE_BRIDGE_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert _plan_words(bridge, *option) == expected


def test_an_unknown_language_is_a_usage_error(bridge: Bridge, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MOODLE_BRIDGE_LANG", "fr")
    run = bridge.invoke("plan", "--plugin", "generic", "--roster", str(bridge.roster([])))
    assert run.exit_code == 2
    assert "'fr' is not one of 'en', 'id'" in run.output
