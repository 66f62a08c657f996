"""The emulated site the simulation runs against, and the clock everything shares."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from moodle_bridge.emulator import Emulator, default_seed
from moodle_bridge.emulator.cohorts import link_cohort_to_course
from moodle_bridge.emulator.completion import add_self_completion
from moodle_bridge.emulator.server import EmulatorHTTPServer, running

AUDIENCE_COHORT = "course:"
#: enrol_cohort_unenrolaction: Moodle's default (unenrol) and "suspend and remove roles".
UNENROL, SUSPEND = "0", "3"


class SimClock:
    """The simulation's time (Unix seconds); it only moves forward."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> float:
        return float(self.now)

    def at(self, stamp: int) -> None:
        """Move the time to ``stamp`` (never back)."""
        self.now = max(self.now, stamp)


# --- the site -------------------------------------------------------------------------------------
class Site:
    """An emulated Moodle served on 127.0.0.1, with what its administrators do by hand."""

    def __init__(
        self, clock: SimClock, *, wwwroot: str | None = None, cohort_sync: str = UNENROL
    ) -> None:
        self.emulator = Emulator(default_seed(), clock=clock)
        settings = self.emulator.world.settings
        settings["enrol_cohort_unenrolaction"] = cohort_sync
        if wwwroot is not None:
            settings["wwwroot"] = wwwroot
        self._stack = contextlib.ExitStack()
        self.server: EmulatorHTTPServer | None = None
        #: (cohort idnumber, course shortname) linked by cohort sync.
        self.linked: set[tuple[str, str]] = set()

    def __enter__(self) -> Site:
        self.server = self._stack.enter_context(running(self.emulator))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    @property
    def world(self) -> Any:
        return self.emulator.world

    def admin(self, wsfunction: str, fields: Mapping[str, str]) -> Any:
        """A web-service call with the admin's token, as an administrator's script would."""
        pairs = [
            ("wstoken", self.emulator.token_for("admin")),
            ("wsfunction", wsfunction),
            ("moodlewsrestformat", "json"),
            *fields.items(),
        ]
        answer = json.loads(self.emulator.handle(pairs).body)
        if isinstance(answer, dict) and "exception" in answer:
            msg = f"{wsfunction}: {answer}"
            raise AssertionError(msg)
        return answer

    def create_courses(self, names: Sequence[str]) -> dict[str, int]:
        """Courses with completion by self-completion, as the catalogue's teachers set them."""
        fields: dict[str, str] = {}
        for k, name in enumerate(names):
            fields |= {
                f"courses[{k}][fullname]": f"Pelatihan {name}",
                f"courses[{k}][shortname]": name,
                f"courses[{k}][categoryid]": "1",
                f"courses[{k}][enablecompletion]": "1",
            }
        ids = {
            c["shortname"]: int(c["id"]) for c in self.admin("core_course_create_courses", fields)
        }
        for courseid in ids.values():
            add_self_completion(self.emulator, courseid)
        return ids

    def create_cohort(self, idnumber: str) -> int:
        """A cohort made by an administrator."""
        created = self.admin(
            "core_cohort_create_cohorts",
            {
                "cohorts[0][name]": idnumber,
                "cohorts[0][idnumber]": idnumber,
                "cohorts[0][categorytype][type]": "system",
                "cohorts[0][categorytype][value]": "",
            },
        )
        return int(created[0]["id"])

    def course_id(self, shortname: str) -> int:
        return next(
            int(c["id"]) for c in self.world.courses.values() if c.get("shortname") == shortname
        )

    def link(self, cohort: str, shortname: str) -> bool:
        """Link ``cohort`` to a course by cohort sync, once (what the bridge tells the
        administrator to do for an audience cohort). False when the cohort does not exist."""
        cohortid = self.world.cohort_idnumber_index.get(cohort)
        if cohortid is None or (cohort, shortname) in self.linked:
            return False
        link_cohort_to_course(self.emulator, self.course_id(shortname), cohortid)
        self.linked.add((cohort, shortname))
        return True

    def link_audiences(self) -> int:
        """Link every audience cohort (``course:<SHORTNAME>[:<start>]``) to its course."""
        linked = 0
        for idnumber in sorted(self.world.cohort_idnumber_index):
            if idnumber.startswith(AUDIENCE_COHORT):
                linked += self.link(idnumber, idnumber.split(":")[1])
        return linked

    def enrol_by_hand(self, userid: int, courseid: int, start: int, end: int) -> tuple[int, int]:
        """An administrator enrols a learner in a course's manual instance, with a window."""
        self.admin(
            "enrol_manual_enrol_users",
            {
                "enrolments[0][roleid]": "5",
                "enrolments[0][userid]": str(userid),
                "enrolments[0][courseid]": str(courseid),
                "enrolments[0][timestart]": str(start),
                "enrolments[0][timeend]": str(end),
            },
        )
        instance = next(
            i for i in self.world.courses[courseid]["enrolment_instances"] if i["enrol"] == "manual"
        )
        return int(instance["id"]), userid
