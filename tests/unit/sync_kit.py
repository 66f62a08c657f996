"""What the write-path unit tests share: an emulated site called in process, and plan items."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moodle_bridge.emulator import Emulator, default_seed
from moodle_bridge.emulator.inprocess import InProcessTransport
from moodle_bridge.moodle.client import MoodleClient, RetryPolicy, Timing
from moodle_bridge.moodle.transport import RawResponse
from moodle_bridge.store import Changes, CohortRow, Store
from moodle_bridge.sync.desired import PROFILE_PREFIX
from moodle_bridge.sync.executor import Executor, RunOptions
from moodle_bridge.sync.plan import CreateAccount, EnrolChange, Membership, Reason
from moodle_bridge.sync.stages.accounts import CreateStage
from moodle_bridge.sync.verify import Verifier

#: The site's answer while it is away (an HTML page, no JSON): a fault of the site.
AWAY = RawResponse(503, "text/html", b"<html><title>Service Unavailable</title></html>")

#: Decides, per request, what the site does: ``None`` serves it; ``"before"`` answers AWAY
#: without serving; ``"after"`` serves (and commits) it, then answers AWAY.
Fault = Callable[[str, dict[str, str]], str | None]


class FaultyTransport(InProcessTransport):
    """The emulator in process, with the site going away when ``fault`` says so."""

    def __init__(self, emulator: Emulator) -> None:
        super().__init__(emulator)
        self.fault: Fault = lambda _function, _form: None
        #: (wsfunction, form) of every request that reached the emulator.
        self.served: list[tuple[str, dict[str, str]]] = []

    def post(self, url: str, pairs: list[tuple[str, str]]) -> RawResponse:
        form = dict(pairs)
        function = form.get("wsfunction", "")
        when = self.fault(function, form)
        if when == "before":
            return AWAY
        answer = super().post(url, pairs)
        self.served.append((function, form))
        return AWAY if when == "after" else answer

    def calls(self, function: str) -> list[dict[str, str]]:
        """The forms of the served calls of ``function``."""
        return [form for name, form in self.served if name == function]


@dataclass
class Site:
    """An emulated Moodle, a client to it, and a state store with a running run."""

    emulator: Emulator
    transport: FaultyTransport
    client: MoodleClient
    store: Store
    run_id: int

    def create_stage(self) -> CreateStage:
        return CreateStage(Verifier(self.client, self.store, 5, "student"))

    def executor(self, workers: int = 1, **options: Any) -> Executor:
        return Executor(self.client, self.store, self.run_id, RunOptions(workers, **options))

    def cohorts(self) -> dict[str, int]:
        """The seeded cohorts, recorded in the store as the engine finds them; their ids."""
        ids = {c["idnumber"]: c["id"] for c in self.emulator.world.cohorts.values()}
        found = [CohortRow(idnumber, moodle_id, idnumber, False)
                 for idnumber, moodle_id in ids.items()]
        # Recorded as a settled batch would record them: the store's write path for cohorts.
        batch = self.store.journal_batch(self.run_id, "create_cohorts", {"idnumbers": []})
        self.store.confirm_batch(batch, None, Changes(cohorts=found))
        return ids

    def courses(self, *names: str) -> dict[str, int]:
        return {name: self.course_id(name) for name in names}

    def user(self, nip: str) -> dict[str, Any] | None:
        ids = self.emulator.world.idnumber_index.get(nip, [])
        return self.emulator.world.users[sorted(ids)[0]] if ids else None

    def cohort_id(self, idnumber: str) -> int:
        return next(c["id"] for c in self.emulator.world.cohorts.values()
                    if c["idnumber"] == idnumber)

    def course_id(self, shortname: str) -> int:
        return next(c["id"] for c in self.emulator.world.courses.values()
                    if c["shortname"] == shortname)

    def link(self, cohort: str, course: str) -> None:
        """Link ``cohort`` to ``course`` by cohort sync, as an administrator would."""
        world = self.emulator.world
        course_row = world.courses[self.course_id(course)]
        instance_id = max(world.enrol_instances) + 1
        course_row["enrolment_instances"].append(
            {"id": instance_id, "enrol": "cohort", "status": 0, "roleid": 5, "sortorder": 9,
             "name": None, "cohortid": self.cohort_id(cohort)})
        world.index_course(course_row)


def make_site(tmp_path: Path, *, field_budget: int = 4990) -> Site:
    emulator = Emulator(default_seed())
    transport = FaultyTransport(emulator)
    client = MoodleClient(
        "http://127.0.0.1", emulator.token_for("bridge"), transport=transport,
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_total_wait=0.1),
        field_budget=field_budget, timing=Timing(sleep=lambda _seconds: None),
    )
    store = Store.open(tmp_path / "state.sqlite3")
    return Site(emulator, transport, client, store, store.begin_run("sync", None))


def nip(i: int) -> str:
    """An 18-digit NIP."""
    return f"19800101200501{i:04d}"


def create(i: int, *, unit: str = "PENDIS", **fields: str) -> CreateAccount:
    """The creation of person ``i``'s account, with two custom profile fields."""
    record = {
        "username": nip(i), "idnumber": nip(i), "firstname": f"Nama{i}", "lastname": "Uji",
        "email": f"orang{i}@kemenag.example", "auth": "manual",
        PROFILE_PREFIX + "unit": unit, PROFILE_PREFIX + "satker": "Satker A", **fields,
    }
    return CreateAccount(nip(i), unit, record, display_name=f"Nama{i} Uji", seen_at=1000 + i,
                         source="roster.csv", row=i + 2)


def member(i: int, cohort: str = "unit:PENDIS", **more: Any) -> Membership:
    return Membership(cohort, nip(i), Reason.of("unit", unit="PENDIS"), **more)


def enrolment(i: int, course: str = "TEK-KEU-1", **more: Any) -> EnrolChange:
    return EnrolChange(nip(i), course, more.pop("kind", "enrol"), more.pop("suspended", False),
                       **more)
