"""What Moodle's database held while ``_cohort_sync_suspend.json`` was recorded, in the emulator.

The recording's answers are replayed in ``test_contract_replay``; its ``database_observations``
(the enrolment row kept, suspended, without its role, then reactivated) are what the bridge's
cohort-sync probe relies on, and no web service shows them all. They are checked here in the
emulator's state, and against Moodle's default action, which deletes the row instead.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from moodle_bridge.emulator import Emulator
from tests.contract.replay import Apart, apart, replay_file

RECORDING: Apart = next(r for r in apart() if r.path.name == "_cohort_sync_suspend.json")
DOCUMENT: dict[str, Any] = json.loads(RECORDING.path.read_text(encoding="utf-8"))
CASES = {case["name"]: case for case in DOCUMENT["cases"]}
_JOIN = CASES["add_member_to_cohort_synced_to_course"]["request"]["params"]
#: The cohort, its member and the cohort-synced course the recording is about.
COHORT = int(_JOIN["members[0][cohorttype][value]"])
USER = int(_JOIN["members[0][usertype][value]"])
COURSE = int(CASES["enrolled_users_after_suspending_removal"]["request"]["params"]["courseid"])
REMOVAL = "remove_member_with_unenrolaction_suspend"


def cohort_enrolment(emulator: Emulator) -> dict[str, Any] | None:
    """The member's enrolment through the course's cohort-sync instance, if there is one."""
    world = emulator.world
    (instance,) = [
        i
        for i in world.courses[COURSE]["enrolment_instances"]
        if i["enrol"] == "cohort" and i["cohortid"] == COHORT
    ]
    return world.enrolments.get((instance["id"], USER))


def rows_after_each_case(emulator: Emulator) -> dict[str, dict[str, Any] | None]:
    """Replay the recording; the member's cohort-sync enrolment (a copy) after each case."""
    rows = {}
    for outcome in replay_file(emulator, RECORDING.path):
        row = cohort_enrolment(emulator)
        rows[outcome.case_id.partition("#")[2]] = copy.deepcopy(row)
    return rows


def test_a_removal_keeps_the_enrolment_suspended_without_roles_and_a_readd_reactivates_it():
    observed = DOCUMENT["database_observations"]
    assert cohort_enrolment(RECORDING.emulator()) is None  # the member starts outside

    rows = rows_after_each_case(RECORDING.emulator())

    added, removed = rows["add_member_to_cohort_synced_to_course"], rows[REMOVAL]
    readded = rows["readd_member_after_suspending_removal"]
    assert added is not None
    assert removed is not None
    assert readded is not None
    assert str(added["status"]) == observed["user_enrolment_status_after_add"]
    assert str(removed["status"]) == observed["user_enrolment_status_after_removal"]
    assert (
        str(len(removed["roleids"]))
        == (observed["student_role_assignments_in_course_after_removal"])
    )
    assert str(readded["status"]) == observed["user_enrolment_status_after_readd"]
    # The same row all along: the history attached to it (grades, completions) stays.
    assert readded["timecreated"] == removed["timecreated"] == added["timecreated"]


def test_with_moodles_default_action_the_removal_deletes_the_enrolment():
    emulator = RECORDING.emulator(enrol_cohort_unenrolaction="0")
    outcomes = {}
    rows = {}
    for outcome in replay_file(emulator, RECORDING.path):
        name = outcome.case_id.partition("#")[2]
        outcomes[name], rows[name] = outcome, cohort_enrolment(emulator)

    assert rows["add_member_to_cohort_synced_to_course"] is not None
    assert rows[REMOVAL] is None
    # What the probe reads tells the two apart: the member is no longer a participant.
    participants = outcomes["enrolled_users_after_suspending_removal"]
    assert USER in {user["id"] for user in participants.expected["response"]}
    assert USER not in {user["id"] for user in participants.actual["response"]}
