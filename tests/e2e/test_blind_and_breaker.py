"""A blind account read stops the run; a site-wide failure rate trips the circuit breaker."""

from __future__ import annotations

from tests.e2e.conftest import Bridge, people


def test_reconcile_that_sees_no_account_stops_instead_of_suspending(bridge: Bridge):
    roster = bridge.roster(people(range(20)))
    assert bridge.sync(roster).exit_code == 0
    # Without viewalldetails Moodle answers lookups with nothing, as if nobody existed.
    bridge.emulator.world.role_capabilities["moodlebridge"].discard("moodle/user:viewalldetails")
    run = bridge.sync(roster, "--reconcile")
    assert run.exit_code == 4, run.output
    assert "moodle/user:viewalldetails" in run.output
    assert run.writes == []
    assert all(not bridge.user(p["nip"])["suspended"] for p in people(range(20)))


def test_circuit_breaker_stops_a_run_whose_records_mostly_fail(bridge: Bridge):
    # Every email in this roster is already taken by accounts the bridge does not own.
    taken = people(range(100, 160))
    for row in taken:
        bridge.admin_call(
            "core_user_create_users",
            {
                "users[0][username]": f"other{row['nip']}",
                "users[0][firstname]": "Lain",
                "users[0][lastname]": "Orang",
                "users[0][email]": row["email"],
                "users[0][password]": "Passw0rd!",
            },
        )
    roster = bridge.roster(
        [{**p, "nip": p["nip"][:-3] + f"{i + 500:03d}"} for i, p in enumerate(taken)]
    )
    run = bridge.sync(roster, "--json")
    assert run.exit_code == 4, run.output
    assert run.data is not None
    assert "circuit breaker" in (run.data["stopped"] or "")
    # It stopped early: far fewer than the 60 records were tried one by one.
    assert bridge_created(run) == 0
    assert len(run.data["record_errors"]) < 60


def bridge_created(run) -> int:
    return int((run.data or {}).get("applied", {}).get("create", 0))
