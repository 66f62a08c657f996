"""``gaps``, ``explain`` and ``doctor --catalogue`` on small hand-made mapping tables."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from moodle_bridge.cli import main
from moodle_bridge.emulator import Emulator
from moodle_bridge.emulator.server import EmulatorHTTPServer

NIPS = ("198001012005011001", "198001012005011002", "198001012005011003")


def write_tables(folder: Path) -> None:
    (folder / "standards").mkdir(parents=True)
    (folder / "catalogue").mkdir()
    (folder / "competencies.csv").write_text(
        "code,name,kind,priority\nTEK-A,Teknis A,teknis,1\nTEK-B,Teknis B,teknis,2\n"
    )
    (folder / "position_levels.csv").write_text("unit,jabatan,position_level\n")
    (folder / "standards" / "PENDIS.csv").write_text(
        "jabatan,competency,level\nGuru,TEK-A,3\nGuru,TEK-B,2\n"
    )
    (folder / "catalogue" / "national.csv").write_text(
        "competency,from_level,to_level,course_shortname,jp,window_start,window_end,capacity,mode\n"
        "TEK-A,1,2,A-12,20,,,1,\nTEK-A,2,3,A-23,20,,,,\nTEK-B,1,2,B-12,20,,,,\n"
    )


def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    tables = tmp_path / "tables"
    write_tables(tables)
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "nip,nama,email,unit,satker,jabatan,golongan,status\n"
        + "".join(
            f"{nip},Nur Aini {i},n{i}@kemenag.example,PENDIS,MAN 1,Guru,III/a,\n"
            for i, nip in enumerate(NIPS)
        )
    )
    assessments = tmp_path / "assessments.csv"
    assessments.write_text(
        "nip,kompetensi,level,tanggal\n"
        f"{NIPS[0]},TEK-A,1,2026-01-10\n{NIPS[0]},TEK-B,1,2026-01-10\n"
        f"{NIPS[1]},TEK-A,1,2026-01-10\n{NIPS[1]},TEK-B,2,2026-01-10\n"
    )
    config = tmp_path / "moodle-bridge.toml"
    config.write_text(f'[enrol]\nmappings_dir = "{tables}"\n[state]\ndir = "{tmp_path / "s"}"\n')
    return config, roster, assessments


def create_courses(emulator: Emulator, *shortnames: str) -> None:
    """Create catalogue courses in Moodle, as its administrator does."""
    fields = [
        ("wstoken", emulator.token_for("admin")),
        ("wsfunction", "core_course_create_courses"),
        ("moodlewsrestformat", "json"),
    ]
    for k, name in enumerate(shortnames):
        fields += [(f"courses[{k}][fullname]", name), (f"courses[{k}][shortname]", name),
                   (f"courses[{k}][categoryid]", "1")]  # fmt: skip
    assert "exception" not in emulator.handle(fields).body


def test_gaps_reports_capacity_waiting_list_and_people_not_assessed(tmp_path: Path):
    config, roster, assessments = setup(tmp_path)
    result = CliRunner().invoke(
        main,
        [
            "--config",
            str(config),
            "gaps",
            "--plugin",
            "generic",
            "--roster",
            str(roster),
            "--assessments",
            str(assessments),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    a12 = next(c for c in data["courses"] if c["course"] == "A-12")
    assert (a12["chosen"], a12["capacity"], a12["waiting"]) == (1, 1, 1)
    assert data["summary"]["people_not_assessed"] == 1
    # JSON keys are text: two people start TEK-A at level 1.
    assert data["competencies"]["TEK-A"]["gaps_by_level"] == {"1": 2}


def test_explain_says_why_in_and_why_not(tmp_path: Path):
    config, roster, assessments = setup(tmp_path)
    base = ["--config", str(config), "explain"]
    rest = ["--plugin", "generic", "--roster", str(roster), "--assessments", str(assessments)]
    first = CliRunner().invoke(main, [*base, NIPS[0], *rest])
    second = CliRunner().invoke(main, [*base, NIPS[1], *rest])
    assert first.exit_code == 0, first.output
    text = first.output + second.output
    assert "chosen: A-12 closes" in text
    assert "B-12" in first.output
    assert "waiting list" in text or "capacity" in text
    # No sync has looked the courses up in Moodle: said once, never taken for missing.
    assert first.output.count("not checked against Moodle yet") == 1
    assert "not checked against Moodle yet (a sync looks them up): A-12, B-12" in first.output
    assert "missing in Moodle" not in text


def test_explain_marks_a_chosen_course_the_last_sync_found_missing_in_moodle(
    served: EmulatorHTTPServer, emulator: Emulator, tmp_path: Path
):
    config, roster, assessments = setup(tmp_path)
    create_courses(emulator, "A-12", "A-23")  # the administrator never made B-12
    env = {"MOODLE_BRIDGE_URL": served.url, "MOODLE_BRIDGE_TOKEN": emulator.token_for("bridge")}
    rest = ["--plugin", "generic", "--roster", str(roster), "--assessments", str(assessments)]
    synced = CliRunner().invoke(main, ["--config", str(config), "sync", *rest, "--yes"], env=env)
    assert synced.exit_code == 0, synced.output

    result = CliRunner().invoke(main, ["--config", str(config), "explain", NIPS[0], *rest])

    assert result.exit_code == 0, result.output
    missing = "B-12 (missing in Moodle: create it or fix the catalogue) closes the gap"
    assert f"TEK-B: chosen: {missing}" in result.output
    assert "TEK-A: already enrolled in A-12, which closes the gap" in result.output
    assert "not checked" not in result.output
    as_json = CliRunner().invoke(
        main, ["--config", str(config), "explain", NIPS[0], *rest, "--json"]
    )
    data = json.loads(as_json.output)
    assert (data["missing_in_moodle"], data["not_checked_in_moodle"]) == (["B-12"], [])


def test_doctor_names_catalogue_courses_missing_from_moodle(
    served: EmulatorHTTPServer, emulator: Emulator, tmp_path: Path
):
    config, _, _ = setup(tmp_path)
    env = {"MOODLE_BRIDGE_URL": served.url, "MOODLE_BRIDGE_TOKEN": emulator.token_for("bridge")}
    result = CliRunner().invoke(main, ["--config", str(config), "doctor", "--catalogue"], env=env)
    assert result.exit_code == 4
    assert "3 catalogue course(s) do not exist in Moodle: A-12, A-23, B-12" in result.output


def test_the_plan_names_catalogue_courses_moodle_lacks_apart_from_the_rosters_rows(
    served: EmulatorHTTPServer, emulator: Emulator, tmp_path: Path
):
    config, roster, assessments = setup(tmp_path)
    create_courses(emulator, "A-12", "A-23")  # B-12, chosen for a person, is not in Moodle
    env = {"MOODLE_BRIDGE_URL": served.url, "MOODLE_BRIDGE_TOKEN": emulator.token_for("bridge")}
    args = ["--config", str(config), "plan", "--plugin", "generic", "--roster", str(roster),
            "--assessments", str(assessments)]  # fmt: skip

    text = CliRunner().invoke(main, args, env=env)
    as_json = CliRunner().invoke(main, [*args, "--json"], env=env)

    assert text.exit_code == 0, text.output
    assert (
        "Courses the mapping tables name but Moodle lacks (nobody is enrolled in them until "
        "they exist): B-12\n" in text.output
    )
    assert "Refused rows" not in text.output
    assert "0 refused" in text.output
    data = json.loads(as_json.output)
    assert data["row_errors"] == []
    assert data["missing_courses"] == ["B-12"]
