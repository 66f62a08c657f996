"""Reports turned into what a person reads (lines of text) and what a script reads (JSON data).

Nothing here prints or decides an exit code; NIPs are masked in everything it returns.
"""

from __future__ import annotations

from typing import Any

from moodle_bridge.competency import GapPlan
from moodle_bridge.completions import PullReport
from moodle_bridge.demo import DemoResult
from moodle_bridge.doctor import DoctorReport
from moodle_bridge.logs import mask
from moodle_bridge.sync.engine import SyncReport

__all__ = [
    "SHOWN",
    "demo_data",
    "demo_lines",
    "doctor_data",
    "doctor_lines",
    "gaps_data",
    "gaps_lines",
    "plan_lines",
    "pull_data",
    "pull_lines",
    "result_lines",
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


def plan_lines(report: SyncReport) -> list[str]:
    """The roster's refused rows, what a run resumed, the plan, and a guard that stopped it."""
    lines = [
        f"Roster {report.roster}: {report.rows} rows, {report.people} people, "
        f"{len(report.row_errors)} refused, {len(report.row_warnings)} warnings."
    ]
    for error in report.row_errors[:SHOWN]:
        column = f" [{error.column}]" if error.column else ""
        lines.append(f"  row {error.row}{column}: {error.reason}")
    if len(report.row_errors) > SHOWN:
        lines.append(f"  ... and {len(report.row_errors) - SHOWN} more (see --json or the report)")
    if report.resumed:
        resumed = ", ".join(f"{n} {a}" for a, n in sorted(report.resumed.items()))
        lines.append(f"Re-checked from an interrupted run: {resumed}")
    if report.adopted:
        lines.append(f"Adopted {report.adopted} existing accounts.")
    planned = ", ".join(f"{n} {k}" for k, n in report.planned.items() if n) or "nothing"
    lines.append(f"Plan: {planned}.")
    if report.guard:
        lines.append(f"STOPPED by a safety guard: {report.guard.reason}.")
        if report.proposed_removals:
            lines.append(f"Proposed suspensions written to {report.proposed_removals}")
    return lines


def result_lines(report: SyncReport) -> list[str]:
    """What a run applied, the records Moodle refused, and why it stopped."""
    if report.declined:
        return ["Nothing applied."]
    lines = []
    result = report.result
    if result is not None:
        applied = ", ".join(f"{n} {k}" for k, n in sorted(result.applied.items())) or "nothing"
        lines.append(f"Applied: {applied}.")
        for failure in result.failures[:SHOWN]:
            where = f"row {failure.row}: " if failure.row else ""
            nip = mask(failure.nip) if failure.nip else "-"
            code = f" ({failure.errorcode})" if failure.errorcode else ""
            lines.append(f"  {failure.action} {where}{nip}: {failure.reason}{code}")
        if result.stopped:
            lines.append(f"STOPPED: {result.stopped}. The next run resumes where this one ended.")
    lines.append(f"{sum(report.calls.values())} Moodle calls in {report.seconds:.1f} s.")
    return lines


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


def pull_data(report: PullReport) -> dict[str, Any]:
    """A completion pull for ``--json``."""
    return {
        "people_asked": report.people_asked,
        "enrolments_pending": report.enrolments_pending,
        "skipped_closed_windows": report.skipped_closed,
        "new_completions": report.new_completions,
        "failures": [{"nip": mask(nip), "reason": reason} for nip, reason in report.failures],
        "stopped": report.stopped,
        "calls": dict(report.calls),
        "seconds": round(report.seconds, 3),
    }


def pull_lines(report: PullReport) -> list[str]:
    """A completion pull as a person reads it."""
    lines = [
        f"Asked {report.people_asked} people about {report.enrolments_pending} "
        f"pending enrolments ({report.skipped_closed} past their window): "
        f"{report.new_completions} new completions, "
        f"{sum(report.calls.values())} Moodle calls in {report.seconds:.1f} s."
    ]
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
    lines = [
        f"Demo roster: {result.roster} ({size} synthetic ASN in 3 units), "
        f"assessments: {result.assessments}",
        f"The administrators' part: {result.courses} catalogue courses created, "
        "cohort-mode courses linked to their gap cohorts.",
        f"Moodle emulator: {result.site_url}\n",
        "1. moodle-bridge plan (writes nothing):",
        *plan_lines(result.plan),
        "\n2. moodle-bridge sync:",
        *result_lines(result.first_sync),
        "\n3. moodle-bridge sync again (nothing changed in the roster):",
        f"Plan: {sum(second.planned.values()) or 'nothing'} changes; "
        f"{sum(second.calls.values())} Moodle calls.",
    ]
    if result.pull is not None:
        lines.append(
            f"\n4. Learners finish {result.completed_in_moodle} enrolments in Moodle; "
            f"moodle-bridge completions pull: {result.pull.new_completions} new in the "
            f"ledger, {sum(result.pull.calls.values())} Moodle calls."
        )
    if result.reports is not None:
        lines.append(f"\n5. moodle-bridge report --unit PENDIS: {result.reports.dashboard_html}")
    lines.append(f"\nState and run reports: {result.state_dir}")
    lines.append("Demo OK." if result.ok else "Demo FAILED: see above.")
    return lines
