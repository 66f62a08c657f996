"""Read-back checks: what Moodle accepts without a word but does not do, asked for once.

Moodle silently ignores a custom profile field it does not have, enrols with whatever role
id it is given, and enrols a cohort's members in a course only when someone linked the two
by cohort sync. Each is checked on the first record it concerns, before thousands follow.
A refused create is explained here too: Moodle's ``invalidparameter`` does not say why.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from itertools import islice

from moodle_bridge import errors
from moodle_bridge.i18n import N_, _
from moodle_bridge.moodle import courses as moodle_courses
from moodle_bridge.moodle import enrol as moodle_enrol
from moodle_bridge.moodle import users as moodle_users
from moodle_bridge.moodle.api import Caller
from moodle_bridge.store import EnrolmentRow, NewAccount, Store
from moodle_bridge.sync.desired import PROFILE_PREFIX
from moodle_bridge.sync.plan import CreateAccount
from moodle_bridge.sync.stages.base import RecordFailure

__all__ = ["ROLE_CHECK_USERS", "Verifier"]

_INVALID = N_(
    "Moodle refused the record (invalid parameter): check the username, email, names and auth "
    "method"
)
#: Enrolled users read, at most, to find the first enrolment the bridge made in a course.
ROLE_CHECK_USERS = 5000
#: The reasons an older version recorded for a create batch it took for refused while the
#: site was at fault: Moodle may have committed such a batch.
_SITE_FAULT_CODES = frozenset(failure.signal for failure in errors.SITE_FAILURES)


class Verifier:
    """Makes each read-back check once per run (thread-safe)."""

    def __init__(self, caller: Caller, store: Store, role_id: int, role_shortname: str) -> None:
        self.caller = caller
        self.store = store
        self.role_id = role_id
        self.role_shortname = role_shortname
        self._done: set[str] = set()
        self._lock = threading.Lock()

    def _first(self, check: str) -> bool:
        """Whether ``check`` is still to be made (it counts as made from now on)."""
        with self._lock:
            if check in self._done:
                return False
            self._done.add(check)
            return True

    def profile_fields(self, accounts: Sequence[NewAccount]) -> None:
        """Read back the first created account that has custom profile fields.

        Raises Fatal naming the fields Moodle does not have.
        """
        account = next((a for a in accounts if _custom_fields(a)), None)
        if account is None or not self._first("profile_fields"):
            return
        found = moodle_users.get_users_by_field(self.caller, "id", [account.moodle_id])
        stored = found[0].customfield_values if found else {}
        lost = sorted(name for name in _custom_fields(account) if name not in stored)
        if lost:
            msg = (
                f"Moodle has no custom profile field(s) {', '.join(lost)}: create them in Site "
                "administration > Users > User profile fields, or map them in [sync] "
                "profile_fields of moodle-bridge.toml"
            )
            raise errors.Fatal(msg, wsfunction="core_user_create_users")

    def role(self, userid: int, courseid: int) -> None:
        """Read the first enrolment back: the configured role id must be the student role.

        Raises Fatal when the user holds another role there.
        """
        if not self._first("role"):
            return
        users = moodle_enrol.iter_enrolled_users(self.caller, courseid, userfields=("id", "roles"))
        for user in islice(users, ROLE_CHECK_USERS):
            if user.id != userid:
                continue
            names = {role.shortname for role in user.roles if role.roleid == self.role_id}
            if self.role_shortname not in names:
                msg = (
                    f"role id {self.role_id} is not the '{self.role_shortname}' role on this "
                    f"site (it is {sorted(names) or 'unknown'}): set [enrol] role_id in "
                    "moodle-bridge.toml"
                )
                raise errors.Fatal(msg, wsfunction="enrol_manual_enrol_users")
            return

    def cohort_sync(
        self, enrolments: Sequence[EnrolmentRow], users: Mapping[str, int]
    ) -> list[RecordFailure]:
        """Check the first new member of each audience cohort was enrolled in its course.

        No web service shows cohort-sync instances: the member's courses are the proof.
        """
        failures: list[RecordFailure] = []
        for row in enrolments:
            if row.method != "cohort" or not self._first(f"cohort:{row.cohort}"):
                continue
            courses = moodle_enrol.get_users_courses(
                self.caller, users[row.nip], returnusercount=False
            )
            if not any(course.shortname == row.course for course in courses):
                failures.append(RecordFailure("cohort_sync", row.nip, None, self._unsynced(row)))
        return failures

    def _unsynced(self, row: EnrolmentRow) -> str:
        """Which of the two is wrong when a new member was not enrolled: the course (gone
        from Moodle since a run found it) or the cohort's link to it."""
        if not moodle_courses.get_courses_by_field(self.caller, "shortname", row.course):
            return _(
                "course {course} does not exist in Moodle: create it or fix the catalogue"
            ).format(course=row.course)
        return _(
            "Moodle did not enrol the new member of cohort {cohort} in course {course}: "
            "link cohort {cohort} to course {course} by cohort sync (the course's "
            "Enrolment methods), or set the catalogue row's mode to manual"
        ).format(cohort=row.cohort, course=row.course)

    def refused_create(
        self, create: CreateAccount, error: errors.RecordError
    ) -> moodle_users.MoodleUser | str:
        """Why Moodle refused to create an account, or the account if it is the bridge's own.

        An account with the wanted username and the person's NIP that one of the bridge's own
        create batches sent, recorded as failed because of a site fault (which hid the answer
        from an older version), is the bridge's: no run may stall on accounts the bridge
        itself created. A batch Moodle refused, or the one being sent, proves nothing.
        """
        if not isinstance(error, errors.InvalidParameter):
            return error.message
        try:
            return self._taken(create)
        except errors.RecordError:
            # A value Moodle cannot even look up (a malformed username) is the reason itself.
            return _(_INVALID)

    def _taken(self, create: CreateAccount) -> moodle_users.MoodleUser | str:
        username, email = create.record["username"], create.record["email"]
        taken = moodle_users.get_users_by_field(self.caller, "username", [username])
        if taken:
            sent = self.store.journalled_usernames(
                [create.nip], failed_with=_SITE_FAULT_CODES
            ).get(create.nip, set())
            if taken[0].idnumber == create.nip and username in sent:
                return taken[0]
            return _(
                "an account with this username already exists and the bridge does not own "
                "it: run with --adopt to take it over"
            )
        if moodle_users.get_users_by_field(self.caller, "email", [email]):
            return _("another Moodle account already uses this email address")
        return _(_INVALID)


def _custom_fields(account: NewAccount) -> list[str]:
    """The custom profile fields (shortnames) the account was created with a value for."""
    record = account.record or {}
    return [
        key[len(PROFILE_PREFIX) :]
        for key, value in record.items()
        if key.startswith(PROFILE_PREFIX) and value
    ]
