"""The dashboard in a real browser: headless Chromium renders it with no console message and
every chart in the DOM.

Chromium (``/usr/bin/chromium``, Debian's ``chromium`` package) is installed by CI. Without it
the test is skipped on a developer machine, but never in CI (``CI`` set): there it fails.

The page has no script, so *any* console line is a problem: a JavaScript error, or the
Content-Security-Policy refusing a resource that would have needed the network. Chromium
writes console messages to stderr as ``...:CONSOLE...`` with ``--enable-logging=stderr``; the
first test proves the scan sees them, so a silent browser cannot pass the second by accident.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from pathlib import Path

import pytest

from moodle_bridge.reports import CHART_IDS, GapCounts, ReportInputs, build_reports
from moodle_bridge.reports.ledger import WIB
from moodle_bridge.roster.person import Person
from moodle_bridge.store import EnrolmentRow, LedgerEntry

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason="headless Chromium (/usr/bin/chromium) is not installed; CI installs it",
)

_PROBLEM = re.compile(r":CONSOLE|Uncaught|Refused to", re.IGNORECASE)


def run_chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            *extra,
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def problems(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if _PROBLEM.search(line)]


def test_the_console_scan_sees_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><body><p>x</p><script>undefinedFunction();</script></body></html>",
        encoding="utf-8",
    )
    result = run_chromium(bad, tmp_path / "profile", "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    assert any("Uncaught" in line for line in problems(result.stderr)), result.stderr[-2000:]


def ledger() -> tuple[list[Person], list[LedgerEntry], dict[tuple[str, str], EnrolmentRow]]:
    people: list[Person] = []
    completions: list[LedgerEntry] = []
    enrolments: dict[tuple[str, str], EnrolmentRow] = {}
    for i in range(60):
        nip = f"19800101200501{i:04d}"
        people.append(
            Person(
                nip=nip,
                display_name=f"Pegawai {i}",
                firstname="Pegawai",
                lastname=str(i),
                unit="PENDIS",
                satker=f"MAN {i % 4 + 1} Kota Malang",
            )
        )
        for k in range(i % 4):
            course = f"COURSE-{k}"
            when = dt.datetime(2025, 1 + (i + k) % 12, 1 + i % 28, 10, tzinfo=WIB)
            completions.append(
                LedgerEntry(nip, course, int(when.timestamp()), 8 + 4 * k, f"TEK-{k}", 2)
            )
            enrolments[(nip, course)] = EnrolmentRow(nip, course, False)
    return people, completions, enrolments


def test_dashboard_renders_without_console_errors(tmp_path: Path) -> None:
    people, completions, enrolments = ledger()
    gaps = GapCounts({p.nip: 1 for p in people[:10]}, {"TEK-0": 5, "TEK-3": 2})
    inputs = ReportInputs(unit="PENDIS", year=2025, enrolments=enrolments, gaps=gaps)
    files = build_reports(people, completions, inputs, tmp_path / "out")
    result = run_chromium(files.dashboard_html, tmp_path / "profile", "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    assert problems(result.stderr) == []
    dom = result.stdout
    for chart in CHART_IDS:
        figure = re.search(rf'<figure class="chart" id="{chart}"[^>]*>(.*?)</figure>', dom, re.S)
        assert figure is not None, f"{chart} missing from the DOM"
        svg = figure.group(1)
        assert svg.lstrip().startswith("<svg"), chart
        assert "<path" in svg  # something was drawn
    assert dom.count("<svg") == len(CHART_IDS)

    shot = tmp_path / "shot.png"
    result = run_chromium(
        files.dashboard_html,
        tmp_path / "profile2",
        "--window-size=1280,2000",
        f"--screenshot={shot}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert problems(result.stderr) == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
