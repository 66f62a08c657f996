"""``moodle-bridge doctor`` against the emulator, a closed port and an HTML page."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import responses
from click.testing import CliRunner

from moodle_bridge.cli import main
from moodle_bridge.doctor import PROBE_HINT
from moodle_bridge.emulator import Emulator
from moodle_bridge.emulator.server import EmulatorHTTPServer
from tests.conftest import SECRET_TOKEN
from tests.e2e.conftest import PROBE_COURSE, Bridge

FAST = "[moodle]\nmax_attempts = 1\nmax_total_wait = 0\n"


def run(args: list[str], env: dict[str, str], tmp_path: Path):
    config = tmp_path / "moodle-bridge.toml"
    config.write_text(FAST)
    return CliRunner().invoke(main, ["--config", str(config), *args], env=env)


def site_env(url: str, token: str) -> dict[str, str]:
    return {"MOODLE_BRIDGE_URL": url, "MOODLE_BRIDGE_TOKEN": token}


def test_doctor_passes_against_the_emulator(served: EmulatorHTTPServer, emulator: Emulator,
                                            tmp_path: Path):
    result = run(["doctor"], site_env(served.url, emulator.token_for("bridge")), tmp_path)
    assert result.exit_code == 0, result.output
    assert "Moodle Real Test" in result.output
    assert "4.5.6" in result.output
    assert "All checks passed." in result.output


def test_doctor_json_output(served: EmulatorHTTPServer, emulator: Emulator, tmp_path: Path):
    result = run(["doctor", "--json"], site_env(served.url, emulator.token_for("bridge")),
                 tmp_path)
    data = json.loads(result.output)
    assert data["ok"] is True
    assert {check["name"] for check in data["checks"]} >= {"token", "functions", "user lookup"}


def test_doctor_names_a_function_missing_from_the_service(served: EmulatorHTTPServer,
                                                          emulator: Emulator, tmp_path: Path):
    emulator.remove_function("enrol_manual_enrol_users")
    result = run(["doctor"], site_env(served.url, emulator.token_for("bridge")), tmp_path)
    assert result.exit_code == 4
    assert "enrol_manual_enrol_users is not in the token's service" in result.output
    assert "External services" in result.output


def test_doctor_reports_blind_user_lookups(served: EmulatorHTTPServer, emulator: Emulator,
                                           tmp_path: Path):
    emulator.world.role_capabilities["moodlebridge"].discard("moodle/user:viewalldetails")
    result = run(["doctor"], site_env(served.url, emulator.token_for("bridge")), tmp_path)
    assert result.exit_code == 4
    assert "user lookups are blind" in result.output
    assert "moodle/user:viewalldetails" in result.output


def test_doctor_rejects_a_bad_token_without_echoing_it(served: EmulatorHTTPServer,
                                                       tmp_path: Path):
    result = run(["doctor"], site_env(served.url, SECRET_TOKEN), tmp_path)
    assert result.exit_code == 4
    assert "refused the token" in result.output
    assert SECRET_TOKEN not in result.output


def test_doctor_reports_an_unreachable_site(tmp_path: Path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The port is closed again now: connecting is refused.
    result = run(["doctor"], site_env(f"http://127.0.0.1:{port}", SECRET_TOKEN), tmp_path)
    assert result.exit_code == 4
    assert "unreachable" in result.output
    assert SECRET_TOKEN not in result.output


@responses.activate
def test_doctor_reports_an_html_page(tmp_path: Path):
    responses.post("https://lms.example/webservice/rest/server.php",
                   body="<html><head><title>Site under maintenance</title></head></html>",
                   content_type="text/html", status=200)
    result = run(["doctor"], site_env("https://lms.example", SECRET_TOKEN), tmp_path)
    assert result.exit_code == 4
    assert "did not answer as Moodle" in result.output
    assert "maintenance" in result.output


def test_doctor_without_url_is_a_usage_error(tmp_path: Path):
    result = run(["doctor"], {"MOODLE_BRIDGE_TOKEN": SECRET_TOKEN}, tmp_path)
    assert result.exit_code == 2
    assert "no Moodle URL" in result.output


@pytest.mark.parametrize("mode", [0o644, 0o640])
def test_doctor_refuses_a_token_file_others_can_read(tmp_path: Path, mode: int):
    token_file = tmp_path / "token"
    token_file.write_text(SECRET_TOKEN)
    token_file.chmod(mode)
    result = run(["doctor"], {"MOODLE_BRIDGE_URL": "https://lms.example",
                              "MOODLE_BRIDGE_TOKEN_FILE": str(token_file)}, tmp_path)
    assert result.exit_code == 2
    assert f"chmod 600 {token_file}" in result.output
    assert SECRET_TOKEN not in result.output


@pytest.mark.parametrize(
    ("action", "suspends"), [("3", True), ("0", False)], ids=["suspend", "unenrol"]
)
def test_doctor_probes_what_the_sites_cohort_sync_does_on_removal(
    served: EmulatorHTTPServer, emulator: Emulator, tmp_path: Path, action: str, suspends: bool
):
    site = Bridge(emulator, served, tmp_path)
    site.configure(site.prove_removals())
    # The administrator's setting: 3 suspends the enrolment, 0 (Moodle's default) deletes it.
    emulator.world.settings["enrol_cohort_unenrolaction"] = action

    result = site.invoke("doctor", "--json")

    assert result.exit_code == (0 if suspends else 4), result.output
    assert result.data is not None
    (check,) = [c for c in result.data["checks"] if c["name"] == "cohort sync removal"]
    assert check["ok"] is suspends
    if suspends:
        assert check["detail"] == (
            f"probed on {PROBE_COURSE}: a removal suspends the enrolment (it stays, with its "
            "history)"
        )
        assert check["hint"] == ""
    else:
        assert check["detail"] == (
            f"probed on {PROBE_COURSE}: a removal deletes the enrolment: removals are held"
        )
        assert check["hint"] == PROBE_HINT
    # The probe leaves nobody behind: the token's own user joined and left bridge:probe.
    world = emulator.world
    assert world.cohort_member_sets[world.cohort_idnumber_index["bridge:probe"]] == set()
