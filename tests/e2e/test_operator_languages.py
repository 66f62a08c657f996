"""The operator's text in English and in Bahasa Indonesia: the history of runs (``runs``,
``runs show``, ``runs revert``), the outcome lines of ``run --manifest`` and the summary a
``[notify]`` webhook and mail receive. ``--json`` keeps its keys and codes in English.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from moodle_bridge.cli.render import SHOWN
from tests.e2e.conftest import Bridge, Run, nip, people, person
from tests.sinks import smtp_sink, webhook

AT_ONCE = "[sync]\nabsent_grace_days = 0\nsuspend_share = 1.0\n"
UNIT = "PENDIS"
#: People refused for their email in the second run: more than the terminal lists.
REFUSED = range(10, 10 + SHOWN + 2)
MASKED_0 = f"{nip(0)[:4]}{'*' * 12}{nip(0)[-2:]}"

HISTORY = {
    "en": {
        "took": " s  sync ",
        "exit": " exit 1  ",
        "applied": "  1 suspend",
        "suspend": "  suspend (1):",
        "absent": f"    {MASKED_0} Ahmad Pegawai000: absent from the roster of PENDIS since ",
        "error": f"  error: {nip(10)[:4]}{'*' * 12}{nip(10)[-2:]}: An email address has exactly "
        "one @ (one address per cell)",
        "errors": "  error: ",
        "more": "  ... and 2 more errors (in the run's report and --json)",
        "revert": "Revert of run 2:",
        "plan": "Plan: 1 unsuspend.",
        "report": "Report: ",
        "reverted": "  revert  run 2 ",
        "unsuspend": "  1 unsuspend",
    },
    "id": {
        "took": " detik  sync ",
        "exit": " kode keluar 1  ",
        "applied": "  1 tangguhkan",
        "suspend": "  tangguhkan (1):",
        "absent": f"    {MASKED_0} Ahmad Pegawai000: tidak tercantum dalam daftar pegawai PENDIS "
        "sejak ",
        "error": f"  kesalahan: {nip(10)[:4]}{'*' * 12}{nip(10)[-2:]}: Alamat email harus memuat "
        "tepat satu tanda @ (satu alamat per sel)",
        "errors": "  kesalahan: ",
        "more": "  ... dan 2 kesalahan lainnya (lihat laporan proses dan --json)",
        "revert": "Pembatalan proses 2:",
        "plan": "Rencana: 1 aktifkan kembali.",
        "report": "Laporan: ",
        "reverted": "  revert  proses 2 ",
        "unsuspend": "  1 aktifkan kembali",
    },
}


def ok(run: Run, code: int = 0) -> Run:
    assert run.exit_code == code, run.output
    return run


def history(bridge: Bridge, lang: str) -> None:
    """Run 1 creates four people of PENDIS; run 2 (exit 1) suspends person 0, who left its
    roster, and refuses the rows of :data:`REFUSED`."""
    bridge.configure(AT_ONCE)
    first = [person(i, unit=UNIT) for i in range(4)]
    second = [*first[1:], *(person(i, unit=UNIT, email="x") for i in REFUSED)]
    for rows, code in ((first, 0), (second, 1)):
        roster = str(bridge.roster(rows))
        synced = bridge.invoke(
            "--lang", lang, "sync", "--plugin", "generic", "--roster", roster, "--yes"
        )
        ok(synced, code)


@pytest.mark.parametrize("lang", ["en", "id"])
def test_runs_and_runs_show_speak_the_language(bridge: Bridge, lang: str) -> None:
    texts = HISTORY[lang]
    history(bridge, lang)

    listed = ok(bridge.invoke("--lang", lang, "runs")).output.splitlines()
    shown = ok(bridge.invoke("--lang", lang, "runs", "show", "2")).output.splitlines()
    data = ok(bridge.invoke("--lang", lang, "runs", "show", "2", "--json")).data
    assert data is not None

    newest, oldest = listed
    assert newest.split()[0] == "2"
    assert oldest.split()[0] == "1"
    for key in ("took", "exit", "applied"):
        assert texts[key] in newest, key
    assert newest.endswith(texts["applied"])
    assert f"roster2.csv {UNIT} " in newest
    # runs show begins with the run's line of the listing, then who was changed and why.
    assert shown[0] == newest
    assert shown[1] == texts["suspend"]
    assert shown[2].startswith(texts["absent"])
    assert shown[3] == texts["error"]
    assert sum(line.startswith(texts["errors"]) for line in shown) == SHOWN
    assert shown[-1] == texts["more"]
    # Scripts read the same keys and codes whatever the language.
    assert data["scope"] == [UNIT]
    assert data["exit_code"] == 1
    assert [change["action"] for change in data["changes"]] == ["suspend"]
    assert len(data["errors"]) == len(REFUSED)


@pytest.mark.parametrize("lang", ["en", "id"])
def test_runs_revert_speaks_the_language(bridge: Bridge, lang: str) -> None:
    texts = HISTORY[lang]
    history(bridge, lang)

    reverted = ok(bridge.invoke("--lang", lang, "runs", "revert", "2", "--yes")).output
    (line,) = ok(bridge.invoke("--lang", lang, "runs", "--limit", "1")).output.splitlines()

    lines = reverted.splitlines()
    assert lines[0] == texts["revert"]
    assert lines[1] == texts["plan"]
    assert lines[-1].startswith(texts["report"])
    assert Path(lines[-1].removeprefix(texts["report"])).is_file()
    # The revert is run 3; it has no roster and speaks for the unit of the person it
    # unsuspended.
    assert line.split()[0] == "3"
    assert texts["reverted"] in line
    assert f" {UNIT} " in line
    assert line.endswith(texts["unsuspend"])


MANIFEST = {
    "en": {
        "first": "all: roster1.csv: report {path} (exit 1)",
        "late": "late: no roster matches not-yet-*.csv (exit 1)",
        "again": "all: unchanged since its last successful run (exit 0)",
    },
    "id": {
        "first": "all: roster1.csv: laporan {path} (kode keluar 1)",
        "late": "late: tidak ada daftar pegawai yang cocok dengan not-yet-*.csv (kode keluar 1)",
        "again": "all: tidak berubah sejak proses terakhirnya yang berhasil (kode keluar 0)",
    },
}


@pytest.mark.parametrize("lang", ["en", "id"])
def test_a_manifest_run_tells_each_outcome_in_the_language(bridge: Bridge, lang: str) -> None:
    texts = MANIFEST[lang]
    roster = bridge.roster([*people(range(3)), person(3, email="not-an-address")])
    manifest = bridge.tmp_path / "units.toml"
    manifest.write_text(
        f'[[source]]\nname = "all"\nplugin = "generic"\nroster = "{roster.name}"\n'
        '[[source]]\nname = "late"\nplugin = "generic"\nroster = "not-yet-*.csv"\n',
        encoding="utf-8",
    )

    def run() -> Run:
        return ok(bridge.invoke("--lang", lang, "run", "--manifest", str(manifest), "--yes"), 1)

    first = run()
    again = run()
    data = ok(bridge.invoke("--lang", lang, "run", "--manifest", str(manifest), "--json"), 1).data

    *_, outcome, late = first.output.splitlines()
    (report,) = (bridge.state_dir / "reports").glob("sync-*.json")
    assert outcome == texts["first"].format(path=report)
    assert late == texts["late"]
    # Nothing changed: the source is skipped, and Moodle is not written to.
    assert again.output.splitlines() == [texts["again"], texts["late"]]
    assert again.writes == []
    assert data is not None
    assert [(s["name"], s["code"]) for s in data["sources"]] == [("all", 0), ("late", 1)]


def _summaries(bridge: Bridge, rows: list[dict[str, str]], extra: str = "") -> tuple[Run, Any]:
    """A ``--lang id`` sync of ``rows`` telling a webhook and a mail server."""
    with webhook() as hook, smtp_sink() as sink:
        bridge.configure(
            f'{extra}[notify.webhook]\nurl = "{hook.url}"\ntimeout = 2\n'
            f'[notify.email]\nhost = "{sink.host}"\nport = {sink.port}\nsecurity = "none"\n'
            'from = "bridge@kanwil.example"\nto = ["it@kanwil.example"]\n'
        )
        run = bridge.invoke(
            "--lang", "id", "sync", "--plugin", "generic", "--roster", str(bridge.roster(rows)),
            "--yes", "--json",
        )  # fmt: skip
    (posted,) = hook.received
    (mail,) = sink.mails
    text = posted.json["text"]
    # The mail says the same: its subject is the first line.
    assert mail.body.splitlines() == text.splitlines()
    assert str(mail.message["Subject"]).strip() + "." == text.splitlines()[0]
    return run, posted.json


def test_the_notification_speaks_the_language_and_its_data_stays_english(bridge: Bridge) -> None:
    host = socket.gethostname()
    rows = [*people(range(30)), person(30, email="not-an-address")]

    run, body = _summaries(bridge, rows)

    assert run.data is not None
    lines = body["text"].splitlines()
    assert lines[0] == (
        f"moodle-bridge sync di {host}: kode keluar 1 (selesai, dengan kesalahan pada sebagian "
        "data)."
    )
    assert lines[1] == (
        f"- generic (unit BIMAS_ISLAM, PENDIS, SETJEN), proses {run.data['run_id']}: kode keluar 1"
    )
    assert lines[2].startswith("  rencana: 30 buat akun, ")
    assert lines[3].startswith("  diterapkan: ")
    assert "30 buat akun" in lines[3].removeprefix("  diterapkan: ").split(", ")
    assert lines[4] == "  perlu diperiksa: 1 baris daftar pegawai yang ditolak"
    assert lines[5] == f"  laporan: {run.data['report_file']}"
    summary = body["summary"]
    assert summary["meaning"] == "done, with errors in some records"
    assert summary["runs"][0]["problems"] == {"row_errors": 1}
    assert summary["runs"][0]["applied"]["create"] == 30

    # Half of them leave at once: the guard stops the run, and says so in Indonesian.
    guarded, body = _summaries(bridge, people(range(15)), "[sync]\nabsent_grace_days = 0\n")

    assert guarded.exit_code == 3, guarded.output
    lines = body["text"].splitlines()
    assert lines[0] == (
        f"moodle-bridge sync di {host}: kode keluar 3 (dihentikan oleh pengaman sebelum menulis "
        "ke Moodle)."
    )
    assert lines[2] == "  rencana: 15 tangguhkan"
    assert lines[3].startswith("  pengaman: rencana ini akan menangguhkan 15 akun, melebihi batas ")
    assert lines[3].endswith(" (gunakan --allow-suspend N untuk menyetujui)")
    assert body["summary"]["meaning"] == "stopped by a safety guard before writing"
    assert body["summary"]["runs"][0]["planned"] == {"suspend": 15}
