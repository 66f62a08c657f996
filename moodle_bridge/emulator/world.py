"""The emulated site's state: what Moodle keeps in its database, loaded from a seed file.

Rows are plain dicts shaped like the seed's (see ``_seed.json`` in the contract), indexed the
way the handlers look them up, so the emulator stays fast at a quarter of a million users.
"""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Any

Row = dict[str, Any]

#: Tokens in the recordings are redacted; the emulator hands out predictable ones instead.
REDACTED_TOKEN = "<TOKEN>"


def default_seed() -> dict[str, Any]:
    """Return the seed recorded with the contract (a copy, safe to change)."""
    text = resources.files("moodle_bridge.emulator").joinpath("data/seed.json").read_text("utf-8")
    seed: dict[str, Any] = json.loads(text)
    return seed


def load_seed(path: Path | None) -> dict[str, Any]:
    """Read a seed file, or the built-in one when ``path`` is None."""
    if path is None:
        return default_seed()
    seed: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return seed


def emulator_token(username: str) -> str:
    """The token the emulator gives a service user whose seeded token is redacted."""
    return f"emulator-token-{username}"


class World:
    """Everything the emulated Moodle stores."""

    def __init__(self, seed: dict[str, Any]) -> None:
        seed = copy.deepcopy(seed)
        self.release: str = seed.get("moodle_release", "4.5.6 (Build: 20250811)")
        self.version: str = seed.get("moodle_version", "2024100706")
        self.settings: dict[str, Any] = seed["site_settings"]
        self.site: dict[str, Any] = seed["site"]
        self.roles: dict[int, Row] = {r["id"]: r for r in seed["roles"]}
        self.role_capabilities: dict[str, set[str]] = {
            name: set(caps) for name, caps in seed.get("role_capabilities_system", {}).items()
        }
        self.role_allow_assign: list[Row] = seed.get("role_allow_assign", [])
        self.profile_fields: dict[int, Row] = {
            f["id"]: f for f in seed.get("custom_profile_fields", [])
        }
        self.categories: dict[int, Row] = {c["id"]: c for c in seed.get("categories", [])}
        self.courses: dict[int, Row] = {c["id"]: c for c in seed.get("courses", [])}
        self.cohorts: dict[int, Row] = {c["id"]: c for c in seed.get("cohorts", [])}
        self.users: dict[int, Row] = {u["id"]: u for u in seed.get("users", [])}
        self.competency_frameworks: dict[int, Row] = {
            f["id"]: f for f in seed.get("competency_frameworks", [])
        }
        self.competencies: dict[int, Row] = {c["id"]: c for c in seed.get("competencies", [])}
        self.scales: dict[int, Row] = {s["id"]: s for s in seed.get("scales", [])}
        self.reports: dict[int, Row] = {r["id"]: r for r in seed.get("reports", [])}
        self.service: dict[str, Any] = seed["service"]

        # user_enrolments: one row per (enrolment instance, user), as in Moodle's unique key.
        self.enrolments: dict[tuple[int, int], Row] = {
            (e["enrolid"], e["userid"]): e for e in seed.get("enrolments", [])
        }
        # course_completions: one row per (course, user).
        self.completions: dict[tuple[int, int], Row] = {
            (c["courseid"], c["userid"]): c for c in seed.get("completions", [])
        }
        # course_modules_completion and criteria completions, filled by handlers and hooks.
        self.module_completions: dict[tuple[int, int], Row] = {}
        self.criteria_completions: dict[tuple[int, int], Row] = {}

        self.username_index: dict[str, int] = {u["username"]: uid for uid, u in self.users.items()}
        self.email_index: dict[str, set[int]] = defaultdict(set)
        for uid, user in self.users.items():
            self.email_index[str(user.get("email", "")).lower()].add(uid)
        # idnumber is not unique in Moodle: several users may share one. Empty ones are not kept.
        self.idnumber_index: dict[str, set[int]] = defaultdict(set)
        for uid, user in self.users.items():
            if user.get("idnumber"):
                self.idnumber_index[str(user["idnumber"])].add(uid)

        self.tokens: dict[str, int] = {}
        for token in self.service.get("tokens", []):
            value = token.get("token") or REDACTED_TOKEN
            if value == REDACTED_TOKEN:
                value = emulator_token(token["token_user"])
            self.tokens[value] = token["userid"]

        # Cohort membership as sets both ways (the rows keep Moodle's "members" lists too), and
        # cohorts by idnumber; kept in step by add_cohort_member/remove_cohort_member/index_cohort.
        self.cohort_member_sets: dict[int, set[int]] = {}
        self.user_cohorts: dict[int, set[int]] = defaultdict(set)
        self.cohort_idnumber_index: dict[str, int] = {}
        for cohort in self.cohorts.values():
            self.index_cohort(cohort)
        # Enrolment instances by id, the course of each, and the cohort-sync instances per cohort.
        self.enrol_instances: dict[int, Row] = {}
        self.instance_course: dict[int, int] = {}
        self.cohort_sync_instances: dict[int, list[int]] = defaultdict(list)
        for course in self.courses.values():
            self.index_course(course)
        # The users of each enrolment instance (user_enrolments by enrolid).
        self.instance_users: dict[int, set[int]] = defaultdict(set)
        # The enrolment instances of each user (user_enrolments by userid).
        self.user_enrolids: dict[int, set[int]] = defaultdict(set)
        for enrolid, userid in self.enrolments:
            self.instance_users[enrolid].add(userid)
            self.user_enrolids[userid].add(enrolid)
        self._next_context: int = self._seed_contexts()

        self._next_ids: dict[str, int] = {}

    # --- ids ---------------------------------------------------------------------------------
    def next_id(self, table: str, existing: dict[Any, Row] | None = None) -> int:
        """Return the next id of ``table``, like a database sequence (never reused)."""
        if table not in self._next_ids:
            rows = existing.values() if existing is not None else []
            self._next_ids[table] = max((int(r["id"]) for r in rows), default=0) + 1
        value = self._next_ids[table]
        self._next_ids[table] = value + 1
        return value

    def reserve_ids(self, table: str, at_least: int) -> None:
        """Make the sequence of ``table`` hand out ids from ``at_least`` on (no lower)."""
        self._next_ids[table] = max(self._next_ids.get(table, 0), at_least)

    # --- users -------------------------------------------------------------------------------
    def index_user(self, user: Row) -> None:
        """Add a new or changed user to the lookup indexes."""
        self.username_index[user["username"]] = user["id"]
        self.email_index[str(user.get("email", "")).lower()].add(user["id"])
        if user.get("idnumber"):
            self.idnumber_index[str(user["idnumber"])].add(user["id"])

    def unindex_user(self, user: Row) -> None:
        """Remove a user's current username and email from the lookup indexes."""
        if self.username_index.get(user["username"]) == user["id"]:
            del self.username_index[user["username"]]
        self.email_index[str(user.get("email", "")).lower()].discard(user["id"])
        if user.get("idnumber"):
            self.idnumber_index[str(user["idnumber"])].discard(user["id"])

    def user_by_username(self, username: str) -> Row | None:
        """The user with exactly this username (Moodle usernames are lower case), or None."""
        uid = self.username_index.get(username)
        return self.users.get(uid) if uid is not None else None

    def email_taken(self, email: str, *, except_id: int | None = None) -> bool:
        """Whether another user has this email, compared case-insensitively as Moodle does."""
        holders = self.email_index.get(email.lower(), set())
        return any(uid != except_id and uid in self.users for uid in holders)

    # --- contexts ----------------------------------------------------------------------------
    def next_context_id(self) -> int:
        """Return the next id of Moodle's context table, after every context id in the seed."""
        value = self._next_context
        self._next_context = value + 1
        return value

    def _seed_contexts(self) -> int:
        """Give the seeded fixture users their user contexts; return the next context id.

        Every Moodle user has a context, but the seed lists none for users. Its fixture users
        were made by the seeding step after the courses, so their contexts follow the highest
        context id the seed lists (the install's users and the service users come before it).
        """
        rows: list[Row] = [
            *self.categories.values(),
            *self.courses.values(),
            *self.cohorts.values(),
            *self.users.values(),
            *self.competency_frameworks.values(),
            *self.reports.values(),
        ]
        rows += [cm for c in self.courses.values() for cm in c.get("course_modules", [])]
        ids = [int(r["contextid"]) for r in rows if r.get("contextid") is not None]
        ids.append(int(self.site.get("system_contextid", 1)))
        following = max(ids) + 1
        for uid in sorted(self.users):
            user = self.users[uid]
            if user.get("kind") == "fixture" and user.get("contextid") is None:
                user["contextid"] = following
                following += 1
        return following

    # --- cohorts -----------------------------------------------------------------------------
    def index_cohort(self, cohort: Row) -> None:
        """Add a new cohort (with its "members" list) to the cohort indexes."""
        members = set(cohort.setdefault("members", []))
        self.cohort_member_sets[cohort["id"]] = members
        for uid in members:
            self.user_cohorts[uid].add(cohort["id"])
        if cohort.get("idnumber") is not None:
            self.cohort_idnumber_index[cohort["idnumber"]] = cohort["id"]

    def unindex_cohort(self, cohort: Row) -> None:
        """Remove a cohort from the cohort indexes (before deleting it or changing its idnumber)."""
        for uid in self.cohort_member_sets.pop(cohort["id"], set()):
            self.user_cohorts[uid].discard(cohort["id"])
        idnumber = cohort.get("idnumber")
        if idnumber is not None and self.cohort_idnumber_index.get(idnumber) == cohort["id"]:
            del self.cohort_idnumber_index[idnumber]

    def add_cohort_member(self, cohortid: int, userid: int) -> None:
        """Record ``userid`` as a member of ``cohortid`` (no events: see cohorts.py)."""
        self.cohorts[cohortid]["members"].append(userid)
        self.cohort_member_sets[cohortid].add(userid)
        self.user_cohorts[userid].add(cohortid)

    def remove_cohort_member(self, cohortid: int, userid: int) -> None:
        """Drop ``userid`` from ``cohortid`` (no events: see cohorts.py)."""
        members = self.cohort_member_sets[cohortid]
        if userid in members:
            members.discard(userid)
            self.cohorts[cohortid]["members"].remove(userid)
        self.user_cohorts[userid].discard(cohortid)

    # --- enrolment instances and enrolments --------------------------------------------------
    def index_course(self, course: Row) -> None:
        """Add a new course's enrolment instances to the instance indexes."""
        for instance in course.get("enrolment_instances", []):
            self.enrol_instances[instance["id"]] = instance
            self.instance_course[instance["id"]] = course["id"]
            if instance["enrol"] == "cohort" and instance.get("cohortid") is not None:
                self.cohort_sync_instances[instance["cohortid"]].append(instance["id"])

    def add_enrolment(self, row: Row) -> None:
        """Store a user_enrolments row (seed shape); every writer goes through here."""
        self.enrolments[(row["enrolid"], row["userid"])] = row
        self.instance_users[row["enrolid"]].add(row["userid"])
        self.user_enrolids[row["userid"]].add(row["enrolid"])

    def remove_enrolment(self, enrolid: int, userid: int) -> Row | None:
        """Delete a user_enrolments row; every writer goes through here."""
        self.instance_users[enrolid].discard(userid)
        self.user_enrolids[userid].discard(enrolid)
        return self.enrolments.pop((enrolid, userid), None)

    # --- tokens ------------------------------------------------------------------------------
    def token_for(self, username: str) -> str:
        """The token of a service user, for tests and the demo."""
        uid = self.username_index[username]
        for token, holder in self.tokens.items():
            if holder == uid:
                return token
        msg = f"no token for user {username}"
        raise KeyError(msg)

    def add_token(self, token: str, userid: int) -> None:
        """Give ``userid`` a token (test hook)."""
        self.tokens[token] = userid

    def revoke_token(self, token: str) -> None:
        """Delete a token, as an administrator would (test hook)."""
        self.tokens.pop(token, None)
