"""``moodle_bridge.notify``: the summary, and its delivery to a webhook and a mail server, both
served on 127.0.0.1 (``tests/sinks.py``)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from moodle_bridge.completions import PullReport
from moodle_bridge.config import (
    EmailSettings,
    NotifySettings,
    Settings,
    WebhookSettings,
    load_settings,
)
from moodle_bridge.errors import ConfigError
from moodle_bridge.i18n import use_language
from moodle_bridge.notify import (
    NotifyError,
    Summary,
    deliver,
    pull_part,
    send_email,
    send_webhook,
    sync_part,
)
from moodle_bridge.roster.person import RowError
from moodle_bridge.sync.executor import ExecutionResult
from moodle_bridge.sync.plan import GuardTrip
from moodle_bridge.sync.report import SyncReport
from moodle_bridge.sync.stages.base import RecordFailure
from tests.sinks import Smtp, smtp_sink, webhook

NIP = "198001012005011001"
NAME = "Siti Nurhaliza"
EMAIL = "siti.nurhaliza@kemenag.example"
PASSWORD = "pass word 9!"


def guarded_report() -> SyncReport:
    """A sync stopped by its guard, whose every list names a person."""
    report = SyncReport("sync", "generic", "/data/roster.csv", scope=("PENDIS",), run_id=7)
    report.rows, report.people = 3, 2
    report.row_errors = [
        RowError(source="roster.csv", row=2, column="email", reason=f"bad email {EMAIL}", nip=NIP)
    ]
    report.row_warnings = [
        RowError(source="roster.csv", row=3, column="nama", reason=f"name {NAME} has one word")
    ]
    report.guard = GuardTrip(f"the plan would suspend 40 accounts ({NIP} first)", (NIP,))
    return report


def failed_report() -> SyncReport:
    report = SyncReport("sync", "pendis", "/data/pendis.csv", source="pendis-nightly", run_id=8)
    report.result = ExecutionResult(
        applied=Counter({"create": 5, "suspend": 1}),
        failures=[RecordFailure("create", NIP, "invalidrecord", f"{NAME} <{EMAIL}> refused")],
    )
    return report


def summary(report: SyncReport, command: str = "sync") -> Summary:
    return Summary(command, report.exit_code, (sync_part(report.to_dict(), "/state/r.json"),))


def assert_impersonal(text: str) -> None:
    for personal in (NIP, NAME, EMAIL, "Siti", "nurhaliza"):
        assert personal not in text


# --- the summary ----------------------------------------------------------------------------------
def test_a_guard_trip_is_summarised_with_counts_and_its_reason_masked() -> None:
    note = summary(guarded_report())

    data = note.to_dict()
    assert note.needs_human
    assert data["exit_code"] == 3
    assert data["meaning"] == "stopped by a safety guard before writing"
    (run,) = data["runs"]
    assert run["name"] == "generic"
    assert run["scope"] == ["PENDIS"]
    assert run["run_id"] == 7
    assert run["problems"] == {"row_errors": 1, "row_warnings": 1}
    assert run["guard"] == "the plan would suspend 40 accounts (1980************01 first)"
    assert run["report_file"] == "/state/r.json"
    assert "safety guard: the plan would suspend 40 accounts" in note.text()
    assert_impersonal(json.dumps(data) + note.text() + note.subject)


def test_record_errors_are_counted_never_listed() -> None:
    note = summary(failed_report())

    (run,) = note.to_dict()["runs"]
    assert note.exit_code == 1
    assert run["name"] == "pendis-nightly"
    assert run["plugin"] == "pendis"
    assert run["applied"] == {"create": 5, "suspend": 1}
    assert run["problems"] == {"record_errors": 1}
    assert "applied: 5 create, 1 suspend" in note.text()
    assert_impersonal(json.dumps(note.to_dict()) + note.text())


@pytest.mark.parametrize(
    ("code", "needed"), [(0, False), (1, True), (2, True), (3, True), (4, True), (130, False)]
)
def test_only_a_run_that_needs_a_human_is_sent(code: int, needed: bool) -> None:
    assert Summary("sync", code).needs_human is needed


def test_a_pull_counts_its_failures_and_keeps_its_stop_line_masked() -> None:
    report = PullReport(people_asked=4, new_completions=2, path="per-person")
    report.failures = [(NIP, "usernotenroled"), (NIP, "timed out")]
    report.stopped = f"invalid token while asking about {NIP}"

    part = pull_part(report, 4, ["PENDIS"])

    assert part.applied == {"people_asked": 4, "new_completions": 2}
    assert part.problems == {"failures": 2}
    assert part.stopped == "invalid token while asking about 1980************01"
    assert_impersonal(Summary("completions pull", 4, (part,)).text())


def test_the_text_is_in_the_language_of_the_run_and_the_data_stays_english() -> None:
    report = PullReport(people_asked=4, new_completions=2, path="report+per-person")
    report.failures = [(NIP, "timed out")]
    use_language("id")
    note = Summary(
        "completions pull", 4, (pull_part(report, 4, ["PENDIS"]),), "the site stayed away"
    )

    lines = note.text().splitlines()

    assert lines == [
        f"moodle-bridge completions pull di {note.host}: kode keluar 4 (dihentikan oleh "
        "kesalahan fatal).",
        # A line for developers (an error) stays as the command said it.
        "Dihentikan: the site stayed away",
        "- completions (unit PENDIS): kode keluar 4",
        "  dibaca dari laporan penyelesaian kursus, lalu per pegawai",
        "  diterapkan: 4 pegawai yang diperiksa, 2 penyelesaian kursus baru",
        "  perlu diperiksa: 1 pegawai atau halaman laporan yang tidak dapat dibaca",
    ]
    assert note.to_dict()["meaning"] == "stopped by a fatal error"
    assert Summary("sync", 99).subject.endswith(": kode keluar 99 (tidak diketahui)")
    assert Summary("sync", 99).to_dict()["meaning"] == "unknown"


# --- the webhook ----------------------------------------------------------------------------------
def test_the_webhook_receives_the_summary_as_json_with_its_headers() -> None:
    note = summary(guarded_report())
    with webhook() as hook:
        settings = WebhookSettings(url=hook.url, headers={"Authorization": "Bearer abc"})

        send_webhook(settings, note)

    (posted,) = hook.received
    assert posted.path == "/hook/s3cr3t"
    assert posted.headers["Authorization"] == "Bearer abc"
    assert posted.headers["Content-Type"].startswith("application/json")
    assert posted.json == {"text": note.text(), "summary": note.to_dict()}
    assert_impersonal(posted.body.decode("utf-8"))


def test_a_webhook_answering_500_fails_naming_its_host_only() -> None:
    with webhook(status=500) as hook, pytest.raises(NotifyError) as failed:
        send_webhook(WebhookSettings(url=hook.url), summary(failed_report()))
    assert str(failed.value) == "the webhook at 127.0.0.1 answered HTTP 500"
    assert "s3cr3t" not in str(failed.value)


def test_a_redirect_is_not_followed_with_the_headers() -> None:
    with webhook() as elsewhere, webhook(status=302) as hook:
        hook.location = elsewhere.url
        settings = WebhookSettings(url=hook.url, headers={"Authorization": "Bearer abc"})
        with pytest.raises(NotifyError, match="answered HTTP 302"):
            send_webhook(settings, summary(failed_report()))
    assert len(hook.received) == 1
    assert elsewhere.received == []


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_dead_webhook_fails_without_its_url() -> None:
    url = f"http://127.0.0.1:{closed_port()}/hook/s3cr3t"
    with pytest.raises(NotifyError, match="could not be reached") as failed:
        send_webhook(WebhookSettings(url=url, timeout=2), summary(failed_report()))
    assert "s3cr3t" not in str(failed.value)


def test_only_http_addresses_are_accepted() -> None:
    with pytest.raises(ValueError, match="http"):
        WebhookSettings(url="file:///etc/passwd")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://chat.example/hook/s3cr3t tail", "spaces or control characters"),
        ("https://chat.example:99999/hook/s3cr3t", "port"),
    ],
)
def test_a_malformed_address_is_refused_with_the_settings_never_quoted(
    tmp_path: Path, url: str, why: str
) -> None:
    config = tmp_path / "moodle-bridge.toml"
    config.write_text(f'[notify.webhook]\nurl = "{url}"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=f"notify.webhook.url: .*{why}") as refused:
        load_settings({}, config)
    assert "s3cr3t" not in str(refused.value)


def test_a_missing_ca_bundle_is_a_failure_of_delivery(tmp_path: Path) -> None:
    settings = WebhookSettings(url="https://127.0.0.1/hook", ca_bundle=tmp_path / "nope.pem")
    with pytest.raises(NotifyError, match=r"CA bundle .*nope\.pem cannot be used"):
        send_webhook(settings, summary(failed_report()))


@contextlib.contextmanager
def garbage_receiver() -> Iterator[str]:
    """A "webhook" that answers something that is not HTTP."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def answer() -> None:
            connection, _address = server.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"SSH-2.0-not-a-web-server\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hook/s3cr3t"
        thread.join(timeout=5)


def test_a_receiver_that_is_not_http_is_a_failure_of_delivery() -> None:
    with garbage_receiver() as url, pytest.raises(NotifyError) as failed:
        send_webhook(WebhookSettings(url=url, timeout=2), summary(failed_report()))
    assert str(failed.value).startswith("the webhook at 127.0.0.1 could not be reached: ")
    assert "s3cr3t" not in str(failed.value)


def test_a_header_value_python_refuses_is_not_quoted() -> None:
    with webhook() as hook:
        settings = WebhookSettings(url=hook.url, headers={"Authorization": "Bearer s3cr3t\n"})
        with pytest.raises(NotifyError, match="check the address and the headers") as failed:
            send_webhook(settings, summary(failed_report()))
    assert "s3cr3t" not in str(failed.value)
    assert hook.received == []


# --- the mail -------------------------------------------------------------------------------------
def mail_settings(sink: Smtp, **changes: object) -> EmailSettings:
    fields: dict[str, object] = {
        "host": sink.host,
        "port": sink.port,
        "sender": "bridge@kanwil.example",
        "to": ["it@kanwil.example", "hr@kanwil.example"],
        "security": "none",
        **changes,
    }
    return EmailSettings.model_validate(fields)


def test_the_mail_holds_the_summary_and_logs_in_with_the_password_from_the_env() -> None:
    note = summary(guarded_report())
    with smtp_sink() as sink:
        settings = mail_settings(sink, user="bridge")

        send_email(settings, note, {"MOODLE_BRIDGE_SMTP_PASSWORD": PASSWORD})

    (mail,) = sink.mails
    assert mail.login == ("bridge", PASSWORD)
    assert mail.sender == "bridge@kanwil.example"
    assert mail.recipients == ["it@kanwil.example", "hr@kanwil.example"]
    assert mail.message["Subject"] == note.subject
    assert mail.body.splitlines() == note.text().splitlines()
    assert_impersonal(mail.data.decode("utf-8"))


def test_the_password_file_must_be_owner_only(tmp_path: Path) -> None:
    secret = tmp_path / "smtp-password"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    secret.chmod(0o644)
    with smtp_sink() as sink:
        settings = mail_settings(sink, user="bridge", password_file=str(secret))
        with pytest.raises(NotifyError, match="chmod 600") as failed:
            send_email(settings, summary(failed_report()), {})
        assert sink.mails == []
        assert PASSWORD not in str(failed.value)

        secret.chmod(0o600)
        send_email(settings, summary(failed_report()), {})

    assert sink.mails[0].login == ("bridge", PASSWORD)


def test_starttls_is_required_when_asked_for_and_nothing_is_said_in_clear() -> None:
    with smtp_sink() as sink:
        settings = mail_settings(sink, security="starttls", user="bridge")
        with pytest.raises(NotifyError, match="does not offer STARTTLS"):
            send_email(settings, summary(failed_report()), {"MOODLE_BRIDGE_SMTP_PASSWORD": "x"})
    assert sink.mails == []


def test_a_refused_mail_names_the_server_and_its_answer() -> None:
    with smtp_sink() as sink:
        sink.refuse = True
        with pytest.raises(NotifyError) as failed:
            send_email(mail_settings(sink), summary(failed_report()), {})
    assert str(failed.value) == (
        f"the mail server 127.0.0.1:{sink.port} refused or failed: 554 5.7.1 refused by policy"
    )


# --- both -----------------------------------------------------------------------------------------
def test_deliver_tries_every_channel_and_returns_what_failed() -> None:
    url = f"http://127.0.0.1:{closed_port()}/hook"
    with smtp_sink() as sink:
        settings = NotifySettings(
            webhook=WebhookSettings(url=url, timeout=2), email=mail_settings(sink)
        )

        problems = deliver(settings, summary(failed_report()), {})

    assert [str(p) for p in problems] == [
        "the webhook at 127.0.0.1 could not be reached: Connection refused"
    ]
    assert len(sink.mails) == 1


def test_deliver_never_raises_whatever_a_channel_does(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("/hook/s3cr3t")

    monkeypatch.setattr("moodle_bridge.notify.send_webhook", broken)
    settings = NotifySettings(webhook=WebhookSettings(url="https://chat.example/hook/s3cr3t"))

    problems = deliver(settings, summary(failed_report()), {})

    assert [str(p) for p in problems] == ["the webhook was not sent: RuntimeError"]


def test_deliver_sends_nothing_for_a_run_that_went_well() -> None:
    with webhook() as hook, smtp_sink() as sink:
        settings = NotifySettings(webhook=WebhookSettings(url=hook.url), email=mail_settings(sink))

        problems = deliver(settings, Summary("sync", 0, ()), {})

    assert problems == []
    assert hook.received == []
    assert sink.mails == []


# --- the settings ---------------------------------------------------------------------------------
def test_the_notify_settings_read_from_toml(tmp_path: Path) -> None:
    config = tmp_path / "moodle-bridge.toml"
    config.write_text(
        "[notify.webhook]\n"
        'url = "https://chat.kanwil.example/hooks/abc"\n'
        'headers = {"X-Token" = "t"}\n'
        "[notify.email]\n"
        'host = "smtp.kanwil.example"\n'
        'from = "bridge@kanwil.example"\n'
        'to = ["it@kanwil.example"]\n'
        'security = "ssl"\n',
        encoding="utf-8",
    )

    notify = load_settings({}, config).notify

    assert notify.webhook is not None
    assert notify.webhook.headers == {"X-Token": "t"}
    assert notify.email is not None
    assert notify.email.sender == "bridge@kanwil.example"
    assert notify.email.smtp_port == 465
    assert Settings().notify == NotifySettings()


def test_a_password_in_the_toml_is_refused_without_echoing_it(tmp_path: Path) -> None:
    config = tmp_path / "moodle-bridge.toml"
    config.write_text(
        '[notify.email]\nhost = "h"\nfrom = "a@b.example"\nto = ["c@d.example"]\n'
        f'password = "{PASSWORD}"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="MOODLE_BRIDGE_SMTP_PASSWORD") as failed:
        load_settings({}, config)
    assert PASSWORD not in str(failed.value)


def test_a_password_key_elsewhere_is_not_taken_for_the_smtp_password(tmp_path: Path) -> None:
    config = tmp_path / "moodle-bridge.toml"
    config.write_text('[moodle]\npassword = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown key moodle\.password") as failed:
        load_settings({}, config)
    assert "SMTP" not in str(failed.value)
