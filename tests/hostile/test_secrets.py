"""Hostile: the token never leaves the process; NIPs and emails never reach logs or the terminal.

A full ``demo`` and every command that talks to Moodle (``doctor``, ``plan``, ``sync``,
``completions pull``, ``report``) are run with ``-vv`` through click's CliRunner, the last
ones against an emulator served on 127.0.0.1 whose bridge token is a distinctive secret.
Then everything they produced is scanned:

* stdout, stderr, every log line (as the masking handler writes it) and every raw log record:
  no token, no raw 18-digit NIP and no full email of the roster (masked forms are fine);
* every file the runs wrote (run reports, proposed suspensions, report files, the state
  database): no token (NIPs are allowed there: that is their purpose), and mode 0600;
* exceptions raised or rendered, including Moodle or proxy answers that echo the token.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import logging
import re
import stat
import traceback
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from moodle_bridge import errors, logs
from moodle_bridge.cli import SHIPPED_MAPPINGS, main
from moodle_bridge.demo import DEMO_UNITS, _learners_complete, _prepare_site
from moodle_bridge.emulator import Emulator
from moodle_bridge.emulator.server import EmulatorHTTPServer
from moodle_bridge.moodle.client import MoodleClient, RetryPolicy
from moodle_bridge.moodle.transport import RawResponse
from moodle_bridge.samples import (
    generate_assessments,
    generate_people,
    write_assessments_csv,
    write_roster_csv,
)
from moodle_bridge.store import Store
from moodle_bridge.sync.gaps import load_unit_mappings

#: The token: any appearance of it (or of its random part) outside the request body is a leak.
SECRET = "tok-SECRET-h0stile-9d41c0ffee7b"
SECRET_PART = "9d41c0ffee7b"

#: Retry fast: a few tests make the site fail on purpose.
FAST = "[moodle]\nmax_attempts = 2\nmax_total_wait = 0.2\n"

SIZE = 300
SEED = 11

_EIGHTEEN_DIGITS = re.compile(r"(?<!\d)\d{18}(?!\d)")
_SPACED_NIP = re.compile(r"(?<!\d)\d{8} \d{6} \d \d{3}(?!\d)")
_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


# --- what must not leak ---------------------------------------------------------------------
@dataclass(frozen=True)
class Roster:
    """The personal identifiers of a roster file: its NIPs (raw and as digits) and emails."""

    path: Path
    nips: frozenset[str]
    raw_nips: frozenset[str]
    emails: frozenset[str]

    @classmethod
    def read(cls, path: Path) -> Roster:
        with path.open(encoding="utf-8-sig", newline="") as source:
            rows = list(csv.DictReader(source))
        raw = {row["nip"].strip() for row in rows if row.get("nip", "").strip()}
        digits = {re.sub(r"\D", "", nip) for nip in raw}
        emails = {row["email"].strip().lower() for row in rows if "@" in row.get("email", "")}
        return cls(
            path,
            frozenset(d for d in digits if len(d) >= 15),
            frozenset(n for n in raw if len(n) >= 15),
            frozenset(emails),
        )


def token_leaks(text: str) -> list[str]:
    return [s for s in (SECRET, SECRET_PART) if s in text]


def personal_leaks(text: str, roster: Roster) -> list[str]:
    """Raw NIPs and full emails of ``roster`` found in ``text`` (masked forms are fine)."""
    found = set(_EIGHTEEN_DIGITS.findall(text)) | set(_SPACED_NIP.findall(text))
    found |= {nip for nip in roster.nips | roster.raw_nips if nip in text}
    lowered = text.lower()
    found |= {email for email in roster.emails if email in lowered}
    found |= {e for e in (m.lower() for m in _EMAIL.findall(text)) if e in roster.emails}
    return sorted(found)


# --- capturing logs ---------------------------------------------------------------------------
class _Collect(logging.Handler):
    def __init__(self, into: list[str], *, formatted: bool) -> None:
        super().__init__(logging.DEBUG)
        self.into = into
        self.formatted = formatted
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if self.formatted:
            self.into.append(self.format(record))
            return
        # Before the masking filter rewrote it: the message, its arguments, any traceback.
        parts = [str(record.msg), repr(record.args), record.getMessage()]
        if record.exc_info:
            parts.extend(traceback.format_exception(*record.exc_info))
        self.into.append("\n".join(parts))


@dataclass
class LogTap:
    """The moodle_bridge log records of every invocation, raw and as the log lines show them."""

    raw: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


@pytest.fixture
def log_tap(monkeypatch: pytest.MonkeyPatch) -> Iterator[LogTap]:
    tap = LogTap()
    logger = logging.getLogger("moodle_bridge")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    original = logs.configure

    def configure(verbosity: int) -> None:
        original(verbosity)
        # First in line sees the record as the library made it; last sees what stderr shows.
        logger.handlers.insert(0, _Collect(tap.raw, formatted=False))
        logger.handlers.append(_Collect(tap.lines, formatted=True))

    monkeypatch.setattr(logs, "configure", configure)
    yield tap
    logger.handlers[:], logger.level, logger.propagate = saved


# --- running the CLI --------------------------------------------------------------------------
@dataclass
class Outputs:
    """Everything the invocations showed: stdout, stderr, rendered exceptions."""

    texts: list[tuple[str, str]] = field(default_factory=list)

    def add(self, label: str, result: Result) -> Result:
        self.texts.append((f"{label} stdout", result.stdout))
        self.texts.append((f"{label} stderr", result.stderr))
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            rendered = "".join(traceback.format_exception(result.exception))
            self.texts.append((f"{label} exception", rendered))
        return result


def invoke(outputs: Outputs, label: str, args: list[str], env: dict[str, str]) -> Result:
    result = CliRunner().invoke(main, args, env=env)
    return outputs.add(label, result)


def assert_no_leaks(
    outputs: Outputs, tap: LogTap, caplog: pytest.LogCaptureFixture, roster: Roster
) -> None:
    assert tap.raw, "no moodle_bridge log record was captured: is -vv logging on?"
    shown = [*outputs.texts, *((f"log line {i}", t) for i, t in enumerate(tap.lines))]
    shown += [(f"other logger {r.name}", r.getMessage()) for r in caplog.records]
    token = [(label, token_leaks(text)) for label, text in shown if token_leaks(text)]
    token += [("raw log record", token_leaks(t)) for t in tap.raw if token_leaks(t)]
    assert token == [], f"the token appears in: {token[:5]}"
    personal = [(label, personal_leaks(text, roster)) for label, text in shown]
    personal = [(label, found[:3]) for label, found in personal if found]
    assert personal == [], f"raw NIPs or emails appear in: {personal[:5]}"


def written_files(*roots: Path, skip: Iterable[Path] = ()) -> list[Path]:
    skipped = {p.resolve() for p in skip}
    return sorted(
        p
        for root in roots
        if root.exists()
        for p in root.rglob("*")
        if p.is_file() and p.resolve() not in skipped
    )


def file_contents(path: Path) -> Iterator[tuple[str, bytes]]:
    """The bytes of ``path``, and of each member when it is a zip (XLSX)."""
    data = path.read_bytes()
    yield str(path), data
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                yield f"{path}!{name}", archive.read(name)


def assert_token_in_no_file(files: list[Path]) -> None:
    assert files, "the runs wrote no file to scan"
    leaked = [
        where
        for path in files
        for where, data in file_contents(path)
        if SECRET.encode() in data or SECRET_PART.encode() in data
    ]
    assert leaked == [], f"the token was written to {leaked}"


def assert_owner_only(files: Iterable[Path]) -> None:
    modes = {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert modes, "no file to check"
    opened = {path: mode for path, mode in modes.items() if mode != "0o600"}
    assert opened == {}, f"personal-data files not 0600: {opened}"


# --- the demo ---------------------------------------------------------------------------------
@pytest.mark.parametrize("json_flag", [[], ["--json"]], ids=["text", "json"])
def test_full_demo_leaks_no_token_nip_or_email(
    tmp_path: Path, log_tap: LogTap, caplog: pytest.LogCaptureFixture, json_flag: list[str]
):
    caplog.set_level(logging.DEBUG)
    outputs = Outputs()
    workdir = tmp_path / "demo"
    config = tmp_path / "moodle-bridge.toml"
    config.write_text("", encoding="utf-8")
    env = {"MOODLE_BRIDGE_TOKEN": SECRET, "MOODLE_BRIDGE_STATE_DIR": str(tmp_path / "unused")}
    args = ["--config", str(config), "-vv", "demo", "--size", str(SIZE), "--dir", str(workdir)]
    result = invoke(outputs, "demo", [*args, *json_flag], env)
    assert result.exit_code == 0, result.output
    if json_flag:
        json.loads(result.stdout)

    roster = Roster.read(workdir / "roster.csv")
    assert len(roster.nips) > SIZE // 2
    assert len(roster.emails) > SIZE // 4
    assert_no_leaks(outputs, log_tap, caplog, roster)

    state_and_reports = written_files(workdir / "state", workdir / "reports")
    assert (workdir / "state" / "state.sqlite3") in state_and_reports
    assert any(p.suffix == ".xlsx" for p in state_and_reports)
    assert_token_in_no_file(written_files(workdir))
    assert_owner_only(state_and_reports)


# --- every command against a served emulator with a secret token -------------------------------
@dataclass
class Site:
    emulator: Emulator
    url: str
    tmp_path: Path
    roster: Roster
    assessments: Path
    outputs: Outputs = field(default_factory=Outputs)

    @property
    def state_dir(self) -> Path:
        return self.tmp_path / "state"

    @property
    def env(self) -> dict[str, str]:
        return {
            "MOODLE_BRIDGE_URL": self.url,
            "MOODLE_BRIDGE_TOKEN": SECRET,
            "MOODLE_BRIDGE_STATE_DIR": str(self.state_dir),
        }

    def run(self, label: str, *args: str, env: dict[str, str] | None = None) -> Result:
        config = self.tmp_path / "moodle-bridge.toml"
        config.write_text(FAST, encoding="utf-8")
        argv = ["--config", str(config), "-vv", *args]
        return invoke(self.outputs, label, argv, env if env is not None else self.env)


@pytest.fixture
def site(emulator: Emulator, served: EmulatorHTTPServer, tmp_path: Path) -> Site:
    """An emulator whose bridge user's token is SECRET, with the catalogue's courses, and a
    synthetic roster (with dirty rows) and its assessments."""
    bridge_id = emulator.world.username_index["bridge"]
    emulator.world.add_token(SECRET, bridge_id)
    mappings = load_unit_mappings(SHIPPED_MAPPINGS, DEMO_UNITS)
    offers = [o for m in mappings.values() for o in m.catalogue]
    with MoodleClient(served.url, emulator.token_for("admin")) as admin:
        _prepare_site(admin, emulator, offers)
    roster_file = tmp_path / "roster.csv"
    write_roster_csv(roster_file, generate_people(SIZE, SEED, units=DEMO_UNITS))
    competencies = sorted({c for m in mappings.values() for c in m.competencies})
    assessments = tmp_path / "assessments.csv"
    write_assessments_csv(
        assessments,
        generate_assessments(generate_people(SIZE, SEED, units=DEMO_UNITS), competencies, SEED),
    )
    return Site(emulator, served.url, tmp_path, Roster.read(roster_file), assessments)


def test_every_command_keeps_the_token_and_personal_data_out(
    site: Site, log_tap: LogTap, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    roster, assessments = str(site.roster.path), str(site.assessments)
    unit = ["--plugin", "generic", "--roster", roster, "--assessments", assessments]

    assert site.run("doctor", "doctor").exit_code == 0
    assert site.run("doctor json", "doctor", "--catalogue", "--json").exit_code == 0
    plan_out = site.tmp_path / "plan.json"
    plan = site.run("plan", "plan", *unit, "--out", str(plan_out))
    assert plan.exit_code in (0, 1), plan.output
    plan_json = site.run("plan json", "plan", *unit, "--json")
    assert plan_json.exit_code in (0, 1), plan_json.output
    first = site.run("sync", "sync", *unit, "--yes")
    assert first.exit_code in (0, 1), first.output
    assert site.emulator.world.tokens[SECRET] == site.emulator.world.username_index["bridge"]

    with Store.open(site.state_dir / "state.sqlite3") as store:
        assert _learners_complete(site.emulator, store, SEED) > 0
    pull = site.run("pull", "completions", "pull")
    assert pull.exit_code == 0, pull.output
    assert site.run("pull json", "completions", "pull", "--json").exit_code == 0

    out_dir = site.tmp_path / "out"
    year = str(dt.date.today().year)
    report = site.run(
        "report", "report", "--unit", "PENDIS", "--year", year, "--out", str(out_dir),
        "--roster", roster, "--assessments", assessments,
    )  # fmt: skip
    assert report.exit_code == 0, report.output
    again = site.run("sync again json", "sync", *unit, "--yes", "--json", "--reconcile")
    assert again.exit_code in (0, 1), again.output

    # Half the roster gone, with no grace for the absent: the guard stops the run and writes
    # the proposed suspensions.
    lines = site.roster.path.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    halved = site.tmp_path / "halved.csv"
    halved.write_text("".join(lines[: len(lines) // 2]), encoding="utf-8")
    guard = site.run(
        "guard", "sync", "--plugin", "generic", "--roster", str(halved), "--yes",
        env={**site.env, "MOODLE_BRIDGE_ABSENT_GRACE_DAYS": "0"},
    )  # fmt: skip
    assert guard.exit_code == 3, guard.output

    assert_no_leaks(site.outputs, log_tap, caplog, site.roster)

    run_reports = sorted((site.state_dir / "reports").glob("*.json"))
    proposed = sorted((site.state_dir / "reports").glob("proposed-suspensions-*.csv"))
    report_files = written_files(out_dir)
    assert run_reports, "sync saved no run report"
    assert proposed, "the guard wrote no proposed-suspensions file"
    assert any(p.suffix == ".xlsx" for p in report_files)
    # NIPs belong in these files; the token never does.
    assert any(nip in run_reports[0].read_text(encoding="utf-8") for nip in site.roster.nips)
    # plan --out is written with the umask's mode: it must hold masked NIPs only.
    assert personal_leaks(plan_out.read_text(encoding="utf-8"), site.roster) == []
    inputs = [site.roster.path, site.assessments, halved]
    assert_token_in_no_file(written_files(site.tmp_path, skip=inputs))
    assert_owner_only(written_files(site.state_dir, out_dir))


# --- refused and echoed tokens, configuration errors ------------------------------------------
def small_site(emulator: Emulator, served: EmulatorHTTPServer, tmp_path: Path) -> Site:
    roster = tmp_path / "roster.csv"
    write_roster_csv(roster, generate_people(20, SEED, units=DEMO_UNITS))
    return Site(emulator, served.url, tmp_path, Roster.read(roster), tmp_path)


def test_a_refused_token_is_never_shown(
    emulator: Emulator,
    served: EmulatorHTTPServer,
    tmp_path: Path,
    log_tap: LogTap,
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.DEBUG)
    site = small_site(emulator, served, tmp_path)
    roster = site.roster.path
    assert site.run("doctor", "doctor").exit_code == 4  # SECRET is no token of this site
    assert site.run("doctor json", "doctor", "--json").exit_code == 4
    sync = site.run("sync", "sync", "--plugin", "generic", "--roster", str(roster), "--yes")
    assert sync.exit_code == 4, sync.output
    assert "token" in sync.stderr.lower()
    assert_no_leaks(site.outputs, log_tap, caplog, site.roster)
    assert_token_in_no_file(written_files(site.state_dir))


def _json(body: dict[str, str]) -> RawResponse:
    return RawResponse(200, "application/json; charset=utf-8", json.dumps(body).encode())


#: Answers from a Moodle or a proxy in front of it that repeat the token they were sent.
ECHOES = {
    "message": _json(
        {"exception": "moodle_exception", "errorcode": "invalidtoken",
         "message": f"Invalid token - token {SECRET} not found"}
    ),
    "debuginfo": _json(
        {"exception": "invalid_parameter_exception", "errorcode": "invalidparameter",
         "message": "Invalid parameter value detected", "debuginfo": f"wstoken={SECRET}"}
    ),
    "errorcode": _json(
        {"exception": "moodle_exception", "errorcode": f"bad:{SECRET}", "message": "Refused"}
    ),
    "exception class": _json(
        {"exception": f"proxy_error {SECRET}", "errorcode": "x", "message": "Refused"}
    ),
    "html title": RawResponse(
        502, "text/html", f"<html><title>Bad gateway for {SECRET}</title></html>".encode()
    ),
    "html 200": RawResponse(
        200, "text/html", f"<html><title>Login {SECRET}</title><p>{SECRET}</p></html>".encode()
    ),
}  # fmt: skip


class _Echo:
    def __init__(self, answer: RawResponse) -> None:
        self.answer = answer
        self.sent: list[list[tuple[str, str]]] = []

    def post(self, url: str, pairs: list[tuple[str, str]]) -> RawResponse:
        self.sent.append(pairs)
        return self.answer


def _rendered(error: BaseException) -> str:
    chain: list[str] = []
    current: BaseException | None = error
    while current is not None:
        chain += [str(current), repr(current), repr(current.args), repr(vars(current))]
        current = current.__cause__ or current.__context__
    return "\n".join([*chain, *traceback.format_exception(error)])


@pytest.mark.parametrize("kind", sorted(ECHOES))
def test_an_answer_echoing_the_token_is_scrubbed_from_the_error(kind: str):
    transport = _Echo(ECHOES[kind])
    client = MoodleClient(
        "https://lms.kemenag.example",
        SECRET,
        transport=transport,
        retry=RetryPolicy(max_attempts=1),
    )
    with pytest.raises(errors.MoodleError) as caught:
        client.call("core_webservice_get_site_info")
    assert ("wstoken", SECRET) in transport.sent[0]  # it was sent, in the body
    assert token_leaks(_rendered(caught.value)) == [], _rendered(caught.value)
    assert token_leaks(repr(client)) == []


def test_an_echoed_token_is_not_shown_by_the_cli(
    emulator: Emulator,
    served: EmulatorHTTPServer,
    tmp_path: Path,
    log_tap: LogTap,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
):
    caplog.set_level(logging.DEBUG)
    emulator.world.add_token(SECRET, emulator.world.username_index["bridge"])
    original = emulator.handle_form

    def echoing(body: str, query: str = "") -> object:
        reply = original(body, query)
        if "core_webservice_get_site_info" in body:
            echo = {
                "exception": "moodle_exception",
                "errorcode": "invalidtoken",
                "message": f"Invalid token {SECRET}",
                "debuginfo": f"token={SECRET}",
            }
            return dataclasses.replace(reply, body=json.dumps(echo))  # fmt: skip
        return reply

    monkeypatch.setattr(emulator, "handle_form", echoing)
    site = small_site(emulator, served, tmp_path)
    assert site.run("doctor", "doctor").exit_code == 4
    assert site.run("doctor json", "doctor", "--json").exit_code == 4
    assert_no_leaks(site.outputs, log_tap, caplog, site.roster)


def _private_file(path: Path, text: str, mode: int) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


@pytest.mark.parametrize(
    "case",
    ["token with a space", "token file open to others", "token in the url query",
     "token as url password", "unreachable site"],
)  # fmt: skip
def test_configuration_and_network_errors_never_show_the_token(
    case: str, tmp_path: Path, log_tap: LogTap, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    closed = "http://127.0.0.1:9"  # discard port: nothing listens there
    env = {"MOODLE_BRIDGE_URL": closed, "MOODLE_BRIDGE_TOKEN": SECRET}
    if case == "token with a space":
        env["MOODLE_BRIDGE_TOKEN"] = f"{SECRET} {SECRET_PART}"
    elif case == "token file open to others":
        del env["MOODLE_BRIDGE_TOKEN"]
        env["MOODLE_BRIDGE_TOKEN_FILE"] = str(_private_file(tmp_path / "t", SECRET, 0o644))
    elif case == "token in the url query":
        env["MOODLE_BRIDGE_URL"] = f"https://lms.kemenag.example/?wstoken={SECRET}"
    elif case == "token as url password":
        env["MOODLE_BRIDGE_URL"] = f"http://bridge:{SECRET}@127.0.0.1:9"
    outputs = Outputs()
    config = _private_file(tmp_path / "moodle-bridge.toml", FAST, 0o600)
    result = invoke(outputs, case, ["--config", str(config), "-vv", "doctor"], env)
    assert result.exit_code in (2, 4), result.output
    texts = [text for _, text in outputs.texts] + log_tap.raw + log_tap.lines
    texts += [r.getMessage() for r in caplog.records]
    assert [t for t in texts if token_leaks(t)] == []
