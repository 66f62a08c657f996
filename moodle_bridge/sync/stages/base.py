"""What every stage shares: the :class:`Stage` protocol, its answers, and the run's targets."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from moodle_bridge import errors
from moodle_bridge.i18n import _
from moodle_bridge.moodle.api import Caller
from moodle_bridge.store import Changes
from moodle_bridge.sync.journal import Action, Payload

__all__ = ["RecordFailure", "Settled", "Stage", "StageDefaults", "Targets"]

T_contra = TypeVar("T_contra", contravariant=True)


@dataclass(frozen=True)
class RecordFailure:
    """One record Moodle (or the bridge, before sending) refused; ``reason`` is the bridge's
    words in the run's language, or Moodle's own message as Moodle wrote it."""

    action: str
    nip: str | None
    errorcode: str | None
    reason: str
    source: str = ""
    row: int = 0
    #: Moodle's answer, as received (token removed), for the run report only.
    raw: str | None = None


@dataclass
class Settled:
    """What one answered batch did: its journal result, its store changes, its counts."""

    result: object
    changes: Changes = field(default_factory=Changes)
    #: Records applied, per action name (``create``, ``suspend``, ``enrol_enrol``...).
    applied: Counter[str] = field(default_factory=Counter)
    failures: list[RecordFailure] = field(default_factory=list)


@dataclass
class Targets:
    """The Moodle ids the stages write to, kept current as the run creates accounts and cohorts.

    ``users`` and ``units`` map NIPs to Moodle user ids and units, ``cohorts`` cohort idnumbers
    and ``courses`` course shortnames to Moodle ids.
    """

    users: dict[str, int] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    cohorts: dict[str, int] = field(default_factory=dict)
    courses: Mapping[str, int] = field(default_factory=dict)

    def missing(self, nip: str, *, cohort: str = "", course: str = "") -> str | None:
        """What a write for ``nip`` (in ``cohort`` or ``course``) lacks, or None."""
        if nip not in self.users:
            return _("the person has no account")
        if cohort and cohort not in self.cohorts:
            return _("cohort {cohort} is not in Moodle").format(cohort=cohort)
        if course and course not in self.courses:
            return _("course {course} is not in Moodle").format(course=course)
        return None

    def record(self, changes: Changes) -> None:
        """Learn the accounts and cohorts a settled batch recorded."""
        for account in changes.accounts:
            self.users[account.nip] = account.moodle_id
            self.units[account.nip] = account.unit
        for cohort in changes.cohorts:
            if cohort.moodle_id is not None:
                self.cohorts[cohort.idnumber] = cohort.moodle_id


class Stage(Protocol[T_contra]):
    """One kind of write. The runner asks ``blocked`` and ``wire`` to make budgeted chunks,
    journals each batch's ``payload``, calls ``send``, and then ``settle``; or ``refused``
    for a record Moodle refused alone, ``unsettled`` after a lost answer was read back; and
    ``verify`` once a batch is settled."""

    #: The journal's name for the batches, and the progress stage they count in.
    action: Action
    progress: str

    def blocked(self, item: T_contra) -> str | None:
        """Why ``item`` cannot be sent (no account, no cohort id...), or None when it can."""
        ...

    def wire(self, item: T_contra) -> Any:
        """``item`` as its typed wrapper's input (sized by the client's budget)."""
        ...

    def payload(self, items: Sequence[T_contra]) -> Payload:
        """What the journal keeps of a batch: enough to look its records up later."""
        ...

    def send(self, caller: Caller, items: Sequence[T_contra]) -> Any:
        """Send one batch through the typed wrapper; return its answer.

        Raises RecordError when Moodle refused the batch as a whole (the runner bisects it).
        """
        ...

    def settle(self, items: Sequence[T_contra], answer: Any) -> Settled:
        """What Moodle's answer to a batch changed (and which of its items it refused)."""
        ...

    def failure(self, item: T_contra, errorcode: str | None, reason: str) -> RecordFailure:
        """The failure of ``item``, under the action people know it by."""
        ...

    def refused(self, item: T_contra, error: errors.RecordError) -> Settled | RecordFailure:
        """A record Moodle refused on its own: why, or what it turned out to be after all."""
        ...

    def unsettled(self, items: Sequence[T_contra], changes: Changes) -> list[Any] | None:
        """After a lost answer was read back: the items to send again.

        None for writes the client already retried (idempotent ones): the run stops and the
        next plan does them again.
        """
        ...

    def verify(self, changes: Changes) -> list[RecordFailure]:
        """Read-back checks of what a settled batch changed; raises Fatal when nothing else
        would work either (the run stops)."""
        ...


class StageDefaults(ABC):
    """The common answers of :class:`Stage` methods most stages do not need to change."""

    @abstractmethod
    def failure(self, item: Any, errorcode: str | None, reason: str) -> RecordFailure:
        """The failure of ``item``: every stage names its own action and record."""

    def blocked(self, item: Any) -> str | None:
        """Nothing the item needs can be missing."""
        return None

    def refused(self, item: Any, error: errors.RecordError) -> Settled | RecordFailure:
        """Moodle's own reason."""
        return self.failure(item, error.errorcode, error.message)

    def unsettled(self, items: Sequence[Any], changes: Changes) -> list[Any] | None:
        """Idempotent: left to the next plan."""
        return None

    def verify(self, changes: Changes) -> list[RecordFailure]:
        """Nothing to read back."""
        return []
