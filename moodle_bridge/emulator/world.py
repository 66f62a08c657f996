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

        self.tokens: dict[str, int] = {}
        for token in self.service.get("tokens", []):
            value = token.get("token") or REDACTED_TOKEN
            if value == REDACTED_TOKEN:
                value = emulator_token(token["token_user"])
            self.tokens[value] = token["userid"]

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

    def unindex_user(self, user: Row) -> None:
        """Remove a user's current username and email from the lookup indexes."""
        if self.username_index.get(user["username"]) == user["id"]:
            del self.username_index[user["username"]]
        self.email_index[str(user.get("email", "")).lower()].discard(user["id"])

    def user_by_username(self, username: str) -> Row | None:
        """The user with exactly this username (Moodle usernames are lower case), or None."""
        uid = self.username_index.get(username)
        return self.users.get(uid) if uid is not None else None

    def email_taken(self, email: str, *, except_id: int | None = None) -> bool:
        """Whether another user has this email, compared case-insensitively as Moodle does."""
        holders = self.email_index.get(email.lower(), set())
        return any(uid != except_id and uid in self.users for uid in holders)

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
