"""Reports turned into what a person reads (lines of text) and what a script reads (JSON data).

Nothing here prints or decides an exit code; NIPs are masked in everything it returns. The plan
and run summaries are in the language of the run (:mod:`moodle_bridge.i18n`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from moodle_bridge.completions import PullReport
from moodle_bridge.doctor import DoctorReport
from moodle_bridge.gap_engine import GapPlan
from moodle_bridge.i18n import N_, _
from moodle_bridge.logs import mask
from moodle_bridge.reports.changes import change_rows
from moodle_bridge.store import PersonChange
from moodle_bridge.sync.engine import SyncReport
from moodle_bridge.sync.plan import Plan

if TYPE_CHECKING:
    from moodle_bridge.demo import DemoResult

__all__ = [
    "FIRST",
    "SHOWN",
    "action_label",
    "change_dicts",
    "change_lines",
    "demo_data",
    "demo_lines",
    "doctor_data",
    "doctor_lines",
    "gaps_data",
    "gaps_lines",
    "plan_lines",
    "plan_rows",
    "pull_data",
    "pull_lines",
    "result_lines",
    "reverted_run",
    "run_error_lines",
    "runs_lines",
]

#: Per-record lines shown on the terminal; the rest are in the run report and --json.
SHOWN = 15


def doctor_lines(report: DoctorReport) -> list[str]:
    """Each check with its fix, and the verdict."""
    lines = [f"Site: {report.sitename} (Moodle {report.release})"] if report.sitename else []
    for check in report.checks:
        mark = "ok  " if check.ok else "FAIL"
        lines.append(f"[{mark}] {check.name}: {check.detail}")
        if check.hint and not check.ok:
            lines.append(f"       fix: {check.hint}")
    lines.append("All checks passed." if report.ok else "Some checks failed.")
    return lines


def doctor_data(report: DoctorReport) -> dict[str, Any]:
    """The doctor's checks for ``--json``."""
    data: dict[str, Any] = {name: getattr(report, name) for name in ("ok", "sitename", "release")}
    data["checks"] = [vars(check) for check in report.checks]
    return data


#: Per-person lines shown per action before the counts take over.
FIRST = 5

# Translators: the actions of a plan or a run, each shown after a count ("3 create") or as a
# heading of the people it concerns ("create (3):"). Keep them short.
_ACTIONS = {
    "create": N_("create"),
    "update": N_("update"),
    "suspend": N_("suspend"),
    "unsuspend": N_("unsuspend"),
    "move": N_("move"),
    "cohort_create": N_("cohort_create"),
    "cohort_add": N_("cohort_add"),
    "cohort_remove": N_("cohort_remove"),
    "cohort_remove_held": N_("cohort_remove_held"),
    "cohort_sync": N_("cohort_sync"),
    "enrol_enrol": N_("enrol_enrol"),
    "enrol_suspend": N_("enrol_suspend"),
    "enrol_reactivate": N_("enrol_reactivate"),
    "enrol_retime": N_("enrol_retime"),
    "absent": N_("absent"),
    "kept": N_("kept"),
}


def action_label(action: str) -> str:
    """An action's name as people read it in the run's language (the code itself in English)."""
    label = _ACTIONS.get(action)
    return _(label) if label is not None else action


def _counts(counts: Iterable[tuple[str, int]]) -> str:
    """``3 create, 1 suspend`` for the actions counted (none: "nothing")."""
    return ", ".join(f"{n} {action_label(k)}" for k, n in counts if n) or _("nothing")


def change_dicts(changes: Iterable[PersonChange], names: Mapping[str, str]) -> list[dict[str, str]]:
    """Per-person changes as rows a person reads (NIPs masked)."""
    columns = ("action", "nip", "name", "unit", "target", "reason", "changes")
    rows = [
        dict(zip(columns, map(str, row[:7]), strict=True)) for row in change_rows(changes, names)
    ]
    for row in rows:
        row["nip"] = mask(row["nip"])
    return rows


def plan_rows(report: SyncReport) -> list[dict[str, str]]:
    """The plan's per-person changes, in the order they are applied."""
    if report.plan is None:
        return []
    return change_dicts(report.plan.person_changes({}), report.names)


def change_lines(rows: list[dict[str, str]], *, limit: int | None = FIRST) -> list[str]:
    """Per-person changes grouped by action: the first ``limit`` of each (all: None)."""
    lines: list[str] = []
    actions: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        actions.setdefault(row["action"], []).append(row)
    for action, group in actions.items():
        lines.append(f"  {action_label(action)} ({len(group)}):")
        lines += _first((_change_line(row) for row in group), limit, indent="    ")
    return lines


def _change_line(row: Mapping[str, str]) -> str:
    target = f" {row['target']}" if row["target"] else ""
    change = f" [{row['changes']}]" if row["changes"] else ""
    return f"{row['nip']} {row['name']}{target}: {row['reason']}{change}"


def plan_lines(report: SyncReport) -> list[str]:
    """The roster's refused rows and warnings, what the run found, the plan and its guard."""
    if report.command == "revert":
        head = _("Revert of {run}:").format(run=reverted_run(report.roster))
        return [head, *_plan_and_guard(report)]
    head = _(
        "Roster {roster}: {rows} rows, {people} people, {refused} refused, {warnings} warnings"
    )
    line = head.format(
        roster=report.roster,
        rows=report.rows,
        people=report.people,
        refused=len(report.row_errors),
        warnings=len(report.row_warnings),
    )
    if report.untied:
        # Translators: continues "Roster ...: 5 rows, ..., 1 warnings".
        line += _(", {count} rows with no readable NIP").format(count=report.untied)
    if report.scope:
        # Translators: continues the roster line with the units the run speaks for.
        line += _("; scope {units}").format(units=", ".join(report.scope))
    lines = [line + "."]
    lines += _rows(_("Refused rows ({count}):"), report.row_errors)
    lines += _rows(_("Warnings ({count}):"), report.row_warnings)
    lines += _findings(report)
    return lines + _plan_and_guard(report)


def _plan_and_guard(report: SyncReport) -> list[str]:
    lines = [_("Plan: {actions}.").format(actions=_counts(report.planned.items()))]
    lines += change_lines(plan_rows(report))
    estimate = report.estimate
    if estimate is not None and report.plan is not None and not report.plan.is_empty:
        text = (
            _("Applying it takes Moodle about {duration} (this site's measured rates).")
            if estimate.measured
            else _("Applying it takes Moodle about {duration} (the contract's rates).")
        )
        lines.append(text.format(duration=_duration(estimate.seconds)))
    if report.guard:
        lines.append(_("STOPPED by a safety guard: {reason}.").format(reason=report.guard.reason))
        if report.proposed_removals:
            lines.append(
                _("Proposed suspensions written to {path}").format(path=report.proposed_removals)
            )
    return lines


def _rows(title: str, rows: list[Any]) -> list[str]:
    if not rows:
        return []
    lines = [title.format(count=len(rows))]
    for error in rows[:SHOWN]:
        column = f" [{error.column}]" if error.column else ""
        where = _("{source} row {row}").format(source=error.source, row=error.row)
        lines.append(f"  {where}{column}: {mask(error.reason)}")
    if len(rows) > SHOWN:
        more = _("... and {count} more (in the run report and --json)")
        lines.append("  " + more.format(count=len(rows) - SHOWN))
    return lines


def _findings(report: SyncReport) -> list[str]:
    """What the run found besides the roster: catalogue gaps, cohorts, people kept or absent."""
    lines = []
    if report.missing_courses:
        lines.append(
            _(
                "Courses the mapping tables name but Moodle lacks (nobody is enrolled in them "
                "until they exist): {courses}"
            ).format(courses=", ".join(report.missing_courses))
        )
    lines += _cohort_lines(report)
    plan = report.plan
    if plan is not None:
        link = _(
            "Link cohort {cohort} to course {course} (Enrolment methods > Cohort sync): its "
            "people join at the next sync."
        )
        for cohort, course in sorted(plan.awaiting_link.items()):
            lines.append(link.format(cohort=cohort, course=course))
        if plan.held_removals:
            lines.append(
                _(
                    "{count} cohort removals held: the site's cohort sync is not proven to "
                    "suspend rather than unenrol (see [cohorts] probe_course)."
                ).format(count=len(plan.held_removals))
            )
        lines += _kept_and_absent(plan, report.names)
    if report.gaps_unchanged:
        lines.append(
            _(
                "Competency gaps: roster, assessments, mapping tables and ledger unchanged since "
                "the last successful run; enrolments left as they are."
            )
        )
    if report.resumed:
        resumed = ", ".join(f"{n} {a}" for a, n in sorted(report.resumed.items()))
        lines.append(_("Re-checked from an interrupted run: {batches}").format(batches=resumed))
    if report.adopted:
        lines.append(_("Adopted {count} existing accounts.").format(count=report.adopted))
    elif report.accounts_to_adopt:
        lines.append(
            _(
                "{count} existing accounts to adopt (matched by NIP as idnumber, or by username): "
                "taken over once the plan is confirmed."
            ).format(count=len(report.accounts_to_adopt))
        )
    return lines


def _kept_and_absent(plan: Plan, names: Mapping[str, str]) -> list[str]:
    """The people the plan leaves as they are, each with why: the first few of each kind."""
    lines = []
    if plan.kept:
        lines.append(
            _("{count} people kept unchanged (their rows could not be used).").format(
                count=len(plan.kept)
            )
        )
        kept = _("kept unchanged, row {row} refused ({reason})")
        lines += _first(
            f"{_who(k.nip, names)}: {kept.format(row=k.row, reason=mask(k.why))}"
            for k in plan.kept
        )
    if plan.absences:
        absences = sorted(plan.absences, key=lambda a: (a.suspend_on, a.nip))
        lines.append(
            _(
                "{count} people absent from their unit's roster, within the grace period "
                "(the first would be suspended on {day})."
            ).format(count=len(absences), day=_day(absences[0].suspend_on))
        )
        absent = _("absent since {since}, suspended on {day}")
        lines += _first(
            f"{_who(a.nip, names)}: {absent.format(since=_day(a.since), day=_day(a.suspend_on))}"
            for a in absences
        )
    return lines


def _who(nip: str, names: Mapping[str, str]) -> str:
    """A person as the terminal shows them: the masked NIP, and the name when known."""
    name = names.get(nip)
    return f"{mask(nip)} {name}" if name else mask(nip)


def _first(lines: Iterable[str], limit: int | None = FIRST, indent: str = "  ") -> list[str]:
    """The first ``limit`` lines (all: None), indented, then how many more there are."""
    every = list(lines)
    shown = [indent + line for line in every[:limit]]
    if limit is not None and len(every) > limit:
        shown.append(indent + _("... and {count} more").format(count=len(every) - limit))
    return shown


def _cohort_lines(report: SyncReport) -> list[str]:
    """The cohorts someone else made: left alone, or taken over by ``--adopt-cohorts`` (to be,
    or just done), with the warning that the bridge cannot see what they are linked to."""
    foreign = ", ".join(report.foreign_cohorts)
    left_alone = _(
        "Cohorts that exist in Moodle but were not made by the bridge, left alone (use "
        "--adopt-cohorts to use them): {cohorts}"
    )
    lines = [left_alone.format(cohorts=foreign)] if foreign else []
    if not report.cohorts_to_adopt:
        return lines
    lines.append(
        _("Cohorts adopted (made by someone else):")
        if report.adopted_cohorts
        else _("Cohorts to adopt (made by someone else):")
    )
    lines += [f"  {c.idnumber} {c.name}" for c in report.cohorts_to_adopt]
    # No web service of Moodle 4.5 lists a cohort's cohort-sync enrolment methods
    # (core_enrol_get_course_enrolment_methods leaves them out): say so rather than guess.
    lines.append(
        _(
            "The bridge cannot see which courses these cohorts are linked to by cohort sync "
            "(no web service shows it): the Moodle administrator must check them, because "
            "everyone who joins a linked cohort is enrolled in its courses at once."
        )
    )
    return lines


def _day(moment: int) -> str:
    return dt.datetime.fromtimestamp(moment).date().isoformat()


def result_lines(report: SyncReport) -> list[str]:
    """What a run applied, the records Moodle refused, and why it stopped."""
    if report.declined:
        return [_("Nothing applied.")]
    lines = []
    result = report.result
    if result is not None:
        applied = _counts(sorted(result.applied.items()))
        lines.append(_("Applied: {actions}.").format(actions=applied))
        for failure in result.failures[:SHOWN]:
            where = _("row {row}: ").format(row=failure.row) if failure.row else ""
            nip = mask(failure.nip) if failure.nip else "-"
            code = f" ({failure.errorcode})" if failure.errorcode else ""
            action = action_label(failure.action)
            lines.append(f"  {action} {where}{nip}: {failure.reason}{code}")
        if result.stopped:
            lines.append(
                _("STOPPED: {reason}. The next run resumes where this one ended.").format(
                    reason=result.stopped
                )
            )
    lines.append(
        _("{calls} Moodle calls in {seconds:.1f} s.").format(
            calls=sum(report.calls.values()), seconds=report.seconds
        )
    )
    if report.slow_user_seconds is not None:
        lines.append(
            _(
                "Moodle took {ms:.0f} ms per created or email-changed user: the site is "
                "probably scanning mdl_user for every email. See docs/OPERATIONS.md (the "
                "lower(email) index)."
            ).format(ms=report.slow_user_seconds * 1000)
        )
    return lines


def _duration(seconds: float) -> str:
    if seconds < 90:
        return _("{count:.0f} s").format(count=max(seconds, 1))
    if seconds < 5400:
        return _("{count:.0f} minutes").format(count=seconds / 60)
    return _("{count:.1f} hours").format(count=seconds / 3600)


def gaps_data(plan: GapPlan) -> dict[str, Any]:
    """Gap statistics, projected course loads and positions without a standard."""
    courses = [
        {
            "course": load.offer.label(),
            "competency": load.offer.competency,
            "from_level": load.offer.from_level,
            "mode": load.offer.mode,
            "existing": load.existing,
            "chosen": load.chosen,
            "capacity": load.capacity,
            "waiting": len(load.waiting),
        }
        for load in plan.courses
    ]
    stats = {
        code: {
            "required": s.required,
            "met": s.met,
            "not_assessed": s.not_assessed,
            "gaps_by_level": dict(s.gaps_by_level),
        }
        for code, s in sorted(plan.stats.items())
    }
    missing = [
        {"unit": m.unit, "jabatan": m.jabatan, "people": len(m.nips)} for m in plan.without_standard
    ]
    return {
        "summary": plan.summary(),
        "competencies": stats,
        "courses": courses,
        "positions_without_standard": missing,
    }


def gaps_lines(data: dict[str, Any]) -> list[str]:
    """:func:`gaps_data` as a person reads it."""
    summary = data["summary"]
    lines = ["People: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in summary.items())]
    lines.append("\nGaps per competency (people at each current level):")
    for code, s in data["competencies"].items():
        levels = ", ".join(f"L{lvl}: {n}" for lvl, n in sorted(s["gaps_by_level"].items()))
        lines.append(
            f"  {code:<16} required {s['required']:>6}, met {s['met']:>6}, "
            f"not assessed {s['not_assessed']:>5}; gaps {levels or '-'}"
        )
    lines.append("\nProjected enrolments per course:")
    for c in data["courses"]:
        seats = f"/{c['capacity']}" if c["capacity"] is not None else ""
        waiting = f", {c['waiting']} waiting" if c["waiting"] else ""
        lines.append(f"  {c['course']:<40} {c['existing'] + c['chosen']}{seats}{waiting}")
    for m in data["positions_without_standard"]:
        lines.append(f"No standard for {m['unit']} / {m['jabatan']} ({m['people']} people)")
    return lines


_PULL_COUNTS = (
    "people_asked", "enrolments_pending", "new_completions", "found_by_report",
    "found_by_person", "report_pages", "report_rows", "rows_ignored", "pull_time_entries",
    "skipped_suspended", "skipped_not_started",
)  # fmt: skip


def pull_data(report: PullReport) -> dict[str, Any]:
    """A completion pull for ``--json``."""
    return {
        "path": report.path,
        "report": report.report,
        "fallback": report.fallback,
        "notes": report.notes,
        **{name: getattr(report, name) for name in _PULL_COUNTS},
        "failures": [{"nip": mask(nip), "reason": reason} for nip, reason in report.failures],
        "stopped": report.stopped,
        "calls": dict(report.calls),
        "seconds": round(report.seconds, 3),
    }


def pull_lines(report: PullReport) -> list[str]:
    """A completion pull as a person reads it."""
    how = (
        f"report {report.report!r}: {report.report_pages} pages, {report.report_rows} rows"
        if report.path == "report"
        else f"person by person: {report.people_asked} people"
    )
    lines = [
        f"Completions by {how}; {report.enrolments_pending} enrolments pending, "
        f"{report.new_completions} new completions, "
        f"{sum(report.calls.values())} Moodle calls in {report.seconds:.1f} s."
    ]
    if report.fallback:
        lines.append(f"  (no report used: {report.fallback})")
    lines += [f"  {note}" for note in report.notes]
    lines += [f"  {mask(nip)}: {reason}" for nip, reason in report.failures[:SHOWN]]
    if report.stopped:
        lines.append(f"STOPPED: {report.stopped}")
    return lines


def demo_data(result: DemoResult) -> dict[str, Any]:
    """The demo's runs for ``--json``."""
    return {
        "ok": result.ok,
        "roster": str(result.roster),
        "plan": result.plan.to_dict(),
        "first_sync": result.first_sync.to_dict(),
        "second_sync": result.second_sync.to_dict(),
        "completed_in_moodle": result.completed_in_moodle,
        "pulled": result.pull.new_completions if result.pull else 0,
        "pull_calls": dict(result.pull.calls) if result.pull else {},
        "reports": [str(p) for p in result.reports.paths] if result.reports else [],
    }


def demo_lines(result: DemoResult, size: int) -> list[str]:
    """The demo, step by step, as the commands it stands for would show it."""
    second = result.second_sync
    writes = sum(n for name, n in second.calls.items() if not name.startswith(_READS))
    lines = [
        f"Demo roster: {result.roster} ({size} synthetic ASN in 3 units), "
        f"assessments: {result.assessments}",
        f"The administrators' part: {result.courses} catalogue courses created.",
        f"Moodle emulator: {result.site_url}\n",
        "1. moodle-bridge plan (writes nothing):",
        *plan_lines(result.plan),
        "\n2. moodle-bridge sync:",
        *result_lines(result.first_sync),
    ]
    if result.joined is not None and result.joined is not result.first_sync:
        lines += [
            f"\n3. An administrator links the {result.linked} audience cohorts the sync created "
            "to their cohort-mode courses (Cohort sync); moodle-bridge sync brings their "
            "people in:",
            *result_lines(result.joined),
        ]
    lines += [
        "\n4. moodle-bridge sync again (nothing changed in the roster):",
        f"Plan: {'nothing to change' if second.plan and second.plan.is_empty else 'changes'}; "
        f"{sum(second.calls.values())} Moodle calls, {writes} of them writes.",
    ]
    if result.pull is not None:
        lines.append(
            f"\n5. Learners finish {result.completed_in_moodle} enrolments in Moodle; "
            f"moodle-bridge completions pull: {result.pull.new_completions} new in the "
            f"ledger, {sum(result.pull.calls.values())} Moodle calls."
        )
    if result.reports is not None:
        lines.append(f"\n6. moodle-bridge report --unit PENDIS: {result.reports.dashboard_html}")
    lines.append(f"\nState and run reports: {result.state_dir}")
    lines.append("Demo OK." if result.ok else "Demo FAILED: see above.")
    return lines


#: Web-service functions that only read (the rest write).
_READS = (
    "core_webservice_",
    "core_user_get",
    "core_cohort_search",
    "core_cohort_get",
    "core_course_get",
    "core_enrol_get",
    "core_completion_get",
    "core_reportbuilder_",
)


# --- runs ----------------------------------------------------------------------------------------
# Translators: a run's state in the listing of runs, where a finished run shows its duration.
_UNFINISHED = {"running": N_("running"), "crashed": N_("crashed")}


def reverted_run(label: str) -> str:
    """The run a revert undoes, as people read it (the engine labels it ``run 12``)."""
    number = label.removeprefix("run ")
    return _("run {run}").format(run=number) if number.isdigit() else label


def runs_lines(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The history of runs (``runs_cmd.run_data``), a line each, newest first."""
    # Translators: one line of "moodle-bridge runs": id, start, duration, command, roster or
    # manifest source, units, exit code, OS user@host, what it applied. Keep the widths
    # ({id:>5}...): they line the columns up.
    line = _(
        "{id:>5}  {started}  {took:>10}  {command:<7} {source:<24} {units:<16} exit {code}  "
        "{who}  {applied}"
    )
    lines = []
    for row in rows:
        source = row["source"] or row["plugin"] or ""
        applied = ", ".join(f"{n} {action_label(k)}" for k, n in sorted(row["applied"].items()))
        said = line.format(
            id=row["id"],
            started=row["started"],
            took=_took(row["seconds"], row["status"]),
            command=row["command"],
            source=reverted_run(source) if row["command"] == "revert" else source,
            units=", ".join(row["scope"]) or "-",
            code="-" if row["exit_code"] is None else row["exit_code"],
            who=row["who"],
            applied=applied or "-",
        )
        lines.append(said.rstrip())
    return lines


def _took(seconds: int | None, status: str) -> str:
    """A finished run's duration; else its state (running, or crashed)."""
    if seconds is not None:
        return _("{count:.0f} s").format(count=seconds)
    unfinished = _UNFINISHED.get(status)
    return _(unfinished) if unfinished is not None else status


def run_error_lines(errors: list[Mapping[str, Any]]) -> list[str]:
    """A past run's refused rows and records (from its stored report), NIPs masked."""
    lines = []
    for error in errors[:SHOWN]:
        nip = mask(str(error.get("nip") or "-"))
        said = _("error: {nip}: {reason}").format(nip=nip, reason=error.get("reason"))
        lines.append("  " + said)
    if len(errors) > SHOWN:
        more = _("... and {count} more errors (in the run's report and --json)")
        lines.append("  " + more.format(count=len(errors) - SHOWN))
    return lines
