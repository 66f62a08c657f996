"""``[notify]`` end to end: the CLI against the emulator over HTTP, telling a webhook and a mail
server on 127.0.0.1 about the runs that need a human, and only about those."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any

from moodle_bridge.store import EnrolmentRow, Store
from tests.e2e.conftest import Bridge, nip, people, person
from tests.sinks import Webhook, smtp_sink, webhook

SECRET_TOKEN = "tok-NOTIFY-0c4e9a"


def hooked(bridge: Bridge, url: str, extra: str = "") -> None:
    bridge.configure(f'[notify.webhook]\nurl = "{url}"\ntimeout = 2\n{extra}')


def personal(rows: list[dict[str, str]]) -> set[str]:
    """Every NIP, name and email of a roster, and each word of the names."""
    found = set()
    for row in rows:
        found |= {row["nip"], row["email"], row["nama"], *row["nama"].split()}
    return found - {""}


def assert_impersonal(text: str, rows: list[dict[str, str]]) -> None:
    leaked = sorted(value for value in personal(rows) if value in text)
    assert leaked == [], leaked


def one_summary(hook: Webhook) -> dict[str, Any]:
    (posted,) = hook.received
    body = posted.json
    # What a Slack-style incoming webhook shows is "text"; the data is beside it.
    assert set(body) == {"text", "summary"}
    assert body["text"].startswith("moodle-bridge ")
    summary: dict[str, Any] = body["summary"]
    return summary


def test_a_clean_sync_sends_nothing(bridge: Bridge) -> None:
    with webhook() as hook:
        hooked(bridge, hook.url)
        run = bridge.sync(bridge.roster(people(range(10))))
    assert run.exit_code == 0, run.output
    assert hook.received == []


def test_a_sync_with_refused_rows_sends_counts_and_no_person(bridge: Bridge) -> None:
    rows = [*people(range(10)), person(10, email="not-an-address")]
    with webhook() as hook:
        hooked(bridge, hook.url, 'headers = {"X-Bridge" = "kanwil"}\n')
        run = bridge.sync(bridge.roster(rows))

    assert run.exit_code == 1, run.output
    assert run.data is not None
    summary = one_summary(hook)
    assert hook.received[0].headers["X-Bridge"] == "kanwil"
    assert summary["command"] == "sync"
    assert summary["exit_code"] == 1
    (part,) = summary["runs"]
    assert part["plugin"] == "generic"
    assert part["scope"] == ["BIMAS_ISLAM", "PENDIS", "SETJEN"]
    assert part["run_id"] == run.data["run_id"]
    assert part["applied"]["create"] == 10
    assert part["problems"] == {"row_errors": 1}
    assert part["report_file"] == run.data["report_file"]
    assert Path(part["report_file"]).is_file()
    assert_impersonal(hook.received[0].body.decode("utf-8"), rows)


def test_a_guard_trip_sends_its_reason_and_the_proposed_suspensions(bridge: Bridge) -> None:
    rows = people(range(40))
    bridge.sync(bridge.roster(rows))
    with webhook() as hook:
        hooked(bridge, hook.url, "[sync]\nabsent_grace_days = 0\n")
        run = bridge.sync(bridge.roster(people(range(20))))

    assert run.exit_code == 3, run.output
    (part,) = one_summary(hook)["runs"]
    assert part["planned"]["suspend"] == 20
    assert part["applied"] == {}
    assert part["guard"].startswith("the plan would suspend 20 accounts, more than the limit")
    assert "safety guard: the plan would suspend 20 accounts" in hook.received[0].json["text"]
    assert_impersonal(hook.received[0].body.decode("utf-8"), rows)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_dead_webhook_is_a_warning_and_leaves_the_exit_code(bridge: Bridge) -> None:
    hooked(bridge, f"http://127.0.0.1:{closed_port()}/hook/s3cr3t")
    rows = [*people(range(5)), person(5, email="not-an-address")]

    run = bridge.sync(bridge.roster(rows))

    assert run.exit_code == 1, run.output
    assert run.data is not None  # stdout is still the report's JSON alone
    assert run.data["applied"]["create"] == 5
    warning = run.result.stderr.strip()
    assert warning == (
        "moodle-bridge: warning: no notification: the webhook at 127.0.0.1 could not be "
        "reached: Connection refused; the exit code is unchanged"
    )


def test_a_failing_command_sends_its_stop_line(bridge: Bridge) -> None:
    wrong = bridge.tmp_path / "wrong.csv"
    wrong.write_text("a,b\n1,2\n", encoding="utf-8")
    with webhook() as hook:
        hooked(bridge, hook.url)
        run = bridge.invoke("sync", "--plugin", "generic", "--roster", str(wrong), "--yes")
    assert run.exit_code == 2, run.output
    summary = one_summary(hook)
    assert summary["exit_code"] == 2
    assert summary["runs"] == []
    assert summary["stopped"] == run.result.stderr.strip().removeprefix("moodle-bridge: ")


def test_a_roster_file_missing_under_cron_is_told(bridge: Bridge) -> None:
    missing = bridge.tmp_path / "exports" / "pendis-today.csv"
    with webhook() as hook:
        hooked(bridge, hook.url)
        run = bridge.invoke("sync", "--plugin", "generic", "--roster", str(missing), "--yes")
    assert run.exit_code == 2, run.output
    assert f"Invalid value for '--roster': File '{missing}' does not exist." in run.output
    summary = one_summary(hook)
    assert summary["exit_code"] == 2
    assert "does not exist" in summary["stopped"]
    assert bridge.emulator.calls == []


def test_a_trial_against_the_built_in_emulator_sends_nothing(bridge: Bridge) -> None:
    rows = [person(0), person(1, email="not-an-address")]
    with webhook() as hook:
        hooked(bridge, hook.url)
        run = bridge.invoke(
            "sync", "--plugin", "generic", "--roster", str(bridge.roster(rows)), "--emulator"
        )
    assert run.exit_code == 1, run.output
    assert hook.received == []


def test_a_manifest_run_sends_one_summary_for_all_its_sources(bridge: Bridge) -> None:
    rows = [*people(range(6)), person(6, email="not-an-address")]
    roster = bridge.roster(rows)
    manifest = bridge.tmp_path / "units.toml"
    manifest.write_text(
        f'[[source]]\nname = "all"\nplugin = "generic"\nroster = "{roster.name}"\n'
        '[[source]]\nname = "late"\nplugin = "generic"\nroster = "not-yet-*.csv"\n',
        encoding="utf-8",
    )
    with webhook() as hook:
        hooked(bridge, hook.url)
        run = bridge.invoke("run", "--manifest", str(manifest), "--yes", "--json")

    assert run.exit_code == 1, run.output
    assert run.data is not None
    summary = one_summary(hook)
    assert summary["command"] == "run"
    assert summary["exit_code"] == 1
    first, late = summary["runs"]
    assert first["name"] == "all"
    assert first["applied"]["create"] == 6
    assert first["problems"] == {"row_errors": 1}
    assert first["report_file"] == run.data["sources"][0]["report_file"]
    assert late == {
        **late,
        "name": "late",
        "exit_code": 1,
        "note": "no roster matches not-yet-*.csv",
        "report_file": None,
    }
    assert_impersonal(hook.received[0].body.decode("utf-8"), rows)


def test_completions_pull_sends_only_when_it_fails(bridge: Bridge) -> None:
    bridge_user = bridge.emulator.world.username_index["bridge"]
    bridge.emulator.world.add_token(SECRET_TOKEN, bridge_user)
    bridge.token = SECRET_TOKEN
    bridge.sync(bridge.roster(people(range(3))))
    # An enrolment waiting for its completion, so that the pull has someone to ask about.
    with Store.open(bridge.state_dir / "state.sqlite3") as store:
        store.record_courses({"C101": 2})
        store.record_enrolments([EnrolmentRow(nip(0), "C101", False)])
    with webhook() as hook:
        hooked(bridge, hook.url)
        fine = bridge.invoke("completions", "pull")
        bridge.emulator.world.revoke_token(SECRET_TOKEN)
        failed = bridge.invoke("completions", "pull", "--json")

    assert fine.exit_code == 0, fine.output
    assert failed.exit_code == 4, failed.output
    assert failed.data is not None
    summary = one_summary(hook)
    assert summary["command"] == "completions pull"
    assert summary["exit_code"] == 4
    (part,) = summary["runs"]
    assert part["stopped"] == failed.data["stopped"]
    assert part["applied"] == {}  # the revoked token stopped it at the site's identity
    assert SECRET_TOKEN not in hook.received[0].body.decode("utf-8")


def test_an_unattended_command_stopped_by_its_own_input_is_told(bridge: Bridge) -> None:
    """Broken mapping tables stop a completions pull, a broken manifest a manifest run: both
    before anything is asked of Moodle, both told (exit 2 and the command's own line)."""
    broken = bridge.tmp_path / "broken-mappings"
    shutil.copytree(Path(__file__).parents[2] / "mappings", broken)
    (broken / "competencies.csv").write_text("kode\n", encoding="utf-8")
    manifest = bridge.tmp_path / "units.toml"
    manifest.write_text("[[source]]\nname = \n", encoding="utf-8")
    with webhook() as hook:
        hooked(bridge, hook.url, f'[enrol]\nmappings_dir = "{broken}"\n')
        pulled = bridge.invoke("completions", "pull")
        ran = bridge.invoke("run", "--manifest", str(manifest), "--yes")

    assert (pulled.exit_code, ran.exit_code) == (2, 2), (pulled.output, ran.output)
    told = [posted.json["summary"] for posted in hook.received]
    assert [(s["command"], s["exit_code"]) for s in told] == [("completions pull", 2), ("run", 2)]
    for summary, run in zip(told, (pulled, ran), strict=True):
        assert summary["stopped"] == run.result.stderr.strip().removeprefix("moodle-bridge: ")
    assert bridge.emulator.calls == []


def test_the_mail_tells_the_same_summary(bridge: Bridge) -> None:
    rows = [*people(range(4)), person(4, email="not-an-address")]
    with smtp_sink() as sink:
        bridge.configure(
            "[notify.email]\n"
            f'host = "{sink.host}"\nport = {sink.port}\nsecurity = "none"\n'
            'from = "bridge@kanwil.example"\nto = ["it@kanwil.example"]\n'
        )
        run = bridge.sync(bridge.roster(rows))

    assert run.exit_code == 1, run.output
    (mail,) = sink.mails
    assert mail.recipients == ["it@kanwil.example"]
    subject = str(mail.message["Subject"]).strip()
    assert subject.startswith("moodle-bridge sync on ")
    assert subject.endswith(": exit code 1 (done, with errors in some records)")
    assert "to look at: 1 refused roster rows" in mail.body
    assert_impersonal(mail.data.decode("utf-8"), rows)
