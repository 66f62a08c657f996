"""``sync --adopt-cohorts`` (and ``--adopt``) on a terminal: the plan lists the cohorts (and
accounts) someone else made that the run would take over, and nothing is adopted unless the
operator says yes.

The emulator's seed has the site's own ``unit:PENDIS`` linked to a course by cohort sync: every
member the bridge adds to it is enrolled in that course at once (issue 13).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner, Result

from moodle_bridge.cli import main, provision_cmd
from moodle_bridge.store import Store
from tests.e2e.conftest import Bridge, nip, people, person

#: Roster people of unit PENDIS (person ``i`` belongs to PENDIS when ``i % 3 == 0``).
PENDIS = (0, 3, 6)
TO_ADOPT = "Cohorts to adopt (made by someone else):"
ADOPTED = "Cohorts adopted (made by someone else):"
COHORT_LINE = "  unit:PENDIS Direktorat Jenderal Pendidikan Islam"
BLIND = "The bridge cannot see which courses these cohorts are linked to by cohort sync"


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A terminal is what makes sync ask for confirmation."""
    tty = SimpleNamespace(stdin=SimpleNamespace(isatty=lambda: True))
    monkeypatch.setattr(provision_cmd, "sys", tty)


def adopt_on_terminal(
    bridge: Bridge, roster: Path, answer: str, option: str = "--adopt-cohorts"
) -> Result:
    return CliRunner().invoke(
        main,
        ["--config", str(bridge.config), "sync", "--plugin", "generic", "--roster", str(roster),
         option],
        env=bridge.env,
        input=f"{answer}\n",
    )  # fmt: skip


def linked_course_participants(bridge: Bridge) -> set[int]:
    """Who the course linked to the site's unit:PENDIS has through that link."""
    world = bridge.emulator.world
    cohort_id = world.cohort_idnumber_index["unit:PENDIS"]
    links = world.cohort_sync_instances[cohort_id]
    assert links, "the seed links unit:PENDIS to a course"
    return {userid for enrolid in links for userid in world.instance_users[enrolid]}


def adopted(bridge: Bridge) -> bool:
    with Store.open(bridge.state_dir / "state.sqlite3") as store:
        row = store.cohort("unit:PENDIS")
    return row is not None and row.adopted


@pytest.mark.usefixtures("terminal")
def test_a_declined_adoption_leaves_the_sites_cohort_alone_for_the_next_sync(bridge: Bridge):
    roster = bridge.roster(people(PENDIS))
    members, enrolled = bridge.cohort_members("PENDIS"), linked_course_participants(bridge)

    declined = adopt_on_terminal(bridge, roster, "n")

    assert declined.exit_code == 0, declined.output
    shown = declined.output.splitlines()
    at = shown.index(TO_ADOPT)
    assert shown[at + 1] == COHORT_LINE
    assert shown[at + 2].startswith(BLIND)
    assert "Nothing applied." in declined.output
    assert not adopted(bridge)
    plain = bridge.sync(roster)
    assert plain.exit_code == 0, plain.output
    assert plain.data is not None
    assert plain.data["foreign_cohorts"] == ["unit:PENDIS"]
    assert plain.data["cohorts_to_adopt"] == []
    assert plain.data["adopted_cohorts"] == []
    assert "cohort_add" not in plain.data["applied"]
    assert bridge.cohort_members("PENDIS") == members
    assert linked_course_participants(bridge) == enrolled
    assert not adopted(bridge)


@pytest.mark.usefixtures("terminal")
def test_a_confirmed_adoption_was_listed_before_the_question(bridge: Bridge):
    roster = bridge.roster(people(PENDIS))

    accepted = adopt_on_terminal(bridge, roster, "y")

    assert accepted.exit_code == 0, accepted.output
    question = accepted.output.index("Apply this plan to Moodle?")
    assert accepted.output.index(TO_ADOPT) < question
    assert accepted.output.index(COHORT_LINE) < question
    assert accepted.output.index(BLIND) < question
    assert ADOPTED in accepted.output[question:]
    assert adopted(bridge)
    ids = {bridge.user(nip(i))["id"] for i in PENDIS}
    assert ids <= bridge.cohort_members("PENDIS")
    # Which is exactly what the plan warned of: the cohort's link enrolled them.
    assert ids <= linked_course_participants(bridge)


def test_json_says_what_is_to_be_adopted_and_what_was(bridge: Bridge):
    run = bridge.sync(bridge.roster(people(PENDIS)), "--adopt-cohorts")

    assert run.exit_code == 0, run.output
    assert run.data is not None
    assert [(c["idnumber"], c["name"]) for c in run.data["cohorts_to_adopt"]] == [
        ("unit:PENDIS", "Direktorat Jenderal Pendidikan Islam")
    ]
    assert run.data["adopted_cohorts"] == ["unit:PENDIS"]


#: The emulator's seed holds a hand-made account with this NIP as its idnumber.
SEEDED_NIP = "197501012000031001"
ACCOUNT_TO_ADOPT = "1 existing accounts to adopt"


def owned(bridge: Bridge, nip_: str) -> bool:
    with Store.open(bridge.state_dir / "state.sqlite3") as store:
        return nip_ in store.accounts()


@pytest.mark.usefixtures("terminal")
def test_a_declined_account_adoption_leaves_the_account_someone_elses(bridge: Bridge):
    before = dict(bridge.user(SEEDED_NIP))
    roster = bridge.roster([*people(PENDIS), person(1, nip=SEEDED_NIP, unit="SETJEN")])

    declined = adopt_on_terminal(bridge, roster, "n", "--adopt")

    assert declined.exit_code == 0, declined.output
    assert declined.output.index(ACCOUNT_TO_ADOPT) < declined.output.index("Apply this plan")
    assert "Nothing applied." in declined.output
    assert not owned(bridge, SEEDED_NIP)
    assert bridge.user(SEEDED_NIP) == before

    accepted = adopt_on_terminal(bridge, roster, "y", "--adopt")

    assert accepted.exit_code == 0, accepted.output
    question = accepted.output.index("Apply this plan to Moodle?")
    assert "Adopted 1 existing accounts." in accepted.output[question:]
    assert owned(bridge, SEEDED_NIP)
    assert bridge.user(SEEDED_NIP)["id"] == before["id"]
    assert bridge.user(SEEDED_NIP)["customfields"]["unit"] == "SETJEN"
