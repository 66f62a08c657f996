"""The per-person change file: one line per person-level change a plan proposes or a run made.

For the operator and the unit's HR staff: who is created, updated (which fields, before and
after), suspended, unsuspended, moved, added to or removed from a cohort, enrolled or has an
enrolment suspended, and why, with the roster file and row it came from. It names people, so
it is written owner-only and formula-safe like every other export.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from moodle_bridge.reports.exports import Cell, write_csv
from moodle_bridge.store import PersonChange
from moodle_bridge.sync.plan import Reason

__all__ = ["CHANGE_COLUMNS", "change_rows", "changed_fields", "write_changes"]

CHANGE_COLUMNS = (
    "action", "nip", "name", "unit", "target", "reason", "changes", "source", "row",
)  # fmt: skip


def changed_fields(detail: str | None) -> str:
    """``email: a@x → b@x; satker: A → B`` from a change's detail."""
    if not detail:
        return ""
    data = json.loads(detail)
    before, after = data.get("before", {}), data.get("after", {})
    return "; ".join(
        f"{key.removeprefix('profile_field_')}: {before.get(key, '')} \u2192 {value}"
        for key, value in sorted(after.items())
    )


def change_rows(
    changes: Iterable[PersonChange], names: Mapping[str, str]
) -> Iterable[tuple[Cell, ...]]:
    """Each change as a row of :data:`CHANGE_COLUMNS`."""
    for change in changes:
        reason = Reason.from_json(change.reason)
        yield (
            change.action,
            change.nip,
            names.get(change.nip, ""),
            change.unit,
            change.target,
            reason.text() if reason is not None else "",
            changed_fields(change.detail),
            change.source,
            change.row or None,
        )


def write_changes(path: Path, changes: Iterable[PersonChange], names: Mapping[str, str]) -> Path:
    """Write the change file (CSV, owner-only, formula-safe)."""
    return write_csv(path, CHANGE_COLUMNS, change_rows(changes, names))
