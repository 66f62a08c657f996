"""The emulated REST server: from form fields to Moodle's answer, computed from the world.

Handlers register per web-service function with :func:`ws_function`; test hooks (the contract's
setup actions) with :func:`setup_action`. A handler receives a :class:`Call` with validated
parameters and returns the raw answer, which is then cleaned against the function's recorded
return description, exactly as Moodle's external API does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from moodle_bridge.emulator.cost import Bill, SimulatedCost
from moodle_bridge.emulator.external import (
    ExternalError,
    clean_returnvalue,
    error_body,
    error_xml,
    invalid_parameter,
    signatures,
    to_json,
    to_xml,
    validate_parameters,
)
from moodle_bridge.emulator.phpform import decode_pairs
from moodle_bridge.emulator.world import World

Handler = Callable[["Call"], Any]
SetupAction = Callable[["Emulator", dict[str, Any]], None]

_HANDLERS: dict[str, Handler] = {}
_SETUP_ACTIONS: dict[str, SetupAction] = {}

JSON_TYPE = "application/json"

#: Web-service functions that exist in Moodle 4.5 but that the emulator does not serve: a
#: token's service cannot include them, so calling one is an access error, not "no such
#: function" (a fact about Moodle's function table; extend as needed).
OTHER_MOODLE_FUNCTIONS = frozenset(
    {
        "core_course_delete_courses",
        "core_course_update_courses",
        "core_course_duplicate_course",
        "core_course_delete_categories",
        "core_course_update_categories",
        "core_course_get_courses",
        "core_course_search_courses",
        "core_course_get_contents",
        "core_user_update_picture",
        "core_user_get_course_user_profiles",
        "core_role_assign_roles",
        "core_role_unassign_roles",
        "core_group_create_groups",
        "core_group_add_group_members",
        "core_group_get_course_groups",
        "core_enrol_get_potential_users",
        "enrol_self_enrol_user",
        "enrol_guest_get_instance_info",
        "core_cohort_search_cohort_members",
        "core_completion_update_activity_completion_status_manually",
        "core_webservice_get_site_info_extended",
        "gradereport_user_get_grade_items",
        "core_grades_get_grades",
        "core_message_send_instant_messages",
        "core_notes_create_notes",
        "core_badges_get_user_badges",
        "core_calendar_get_calendar_events",
        "core_files_upload",
        "mod_assign_get_assignments",
        "mod_quiz_get_quizzes_by_courses",
    }
)
XML_TYPE = "application/xml; charset=utf-8"


def ws_function(name: str) -> Callable[[Handler], Handler]:
    """Register the handler of web-service function ``name``."""

    def register(handler: Handler) -> Handler:
        _HANDLERS[name] = handler
        return handler

    return register


def setup_action(name: str) -> Callable[[SetupAction], SetupAction]:
    """Register a test hook named like a contract setup action."""

    def register(action: SetupAction) -> SetupAction:
        _SETUP_ACTIONS[name] = action
        return action

    return register


def nopermissions(capability_name: str) -> ExternalError:
    """``required_capability_exception`` as Moodle words it, e.g. ``(Create users)``."""
    return ExternalError(
        "nopermissions",
        f"Sorry, but you do not currently have permissions to do that ({capability_name}).",
        exception="core\\exception\\required_capability_exception",
    )


@dataclass
class Call:
    """One web-service call being served."""

    emulator: Emulator
    world: World
    wsfunction: str
    userid: int
    params: dict[str, Any]
    now: int

    @property
    def user(self) -> dict[str, Any]:
        """The token's user."""
        return self.world.users[self.userid]

    @property
    def is_admin(self) -> bool:
        """Whether the token's user is a site administrator (who has every capability)."""
        return bool(self.user.get("site_admin"))

    def has_capability(self, capability: str) -> bool:
        """Whether the token's user holds ``capability`` at system level."""
        if self.is_admin:
            return True
        return any(
            capability in self.world.role_capabilities.get(role, set())
            for role in self.user.get("system_roles", [])
        )

    def require_capability(self, capability: str, name: str) -> None:
        """Raise Moodle's ``nopermissions`` unless the user holds ``capability``.

        ``name`` is the capability's human name as Moodle prints it, e.g. "Create users".
        """
        if not self.has_capability(capability):
            raise nopermissions(name)


@dataclass
class Reply:
    """An HTTP answer of the emulated server."""

    status: int
    content_type: str
    body: str
    headers: dict[str, str] = field(default_factory=dict)


class Emulator:
    """An in-memory Moodle 4.5 that answers the web-service functions moodle_bridge uses."""

    def __init__(
        self,
        seed: dict[str, Any],
        *,
        clock: Callable[[], float] = time.time,
        cost: SimulatedCost | None = None,
    ) -> None:
        self.world = World(seed)
        self.clock = clock
        #: Moodle's time, simulated (see :mod:`moodle_bridge.emulator.cost`); None answers at once.
        self.cost = cost
        self.lock = threading.RLock()
        #: Every call served: (wsfunction, number of form fields). Tests count writes with it.
        self.calls: list[tuple[str, int]] = []
        #: Seconds each request waits before it is served (test hook): keeps requests in
        #: flight long enough for crash tests to kill a client mid-batch.
        self.latency = 0.0

    @property
    def debug(self) -> bool:
        """Whether error bodies carry ``debuginfo`` (Moodle's debug setting)."""
        return str(self.world.settings.get("debug", "0")) not in ("", "0")

    @property
    def max_input_vars(self) -> int:
        """PHP's ``max_input_vars`` on the emulated site."""
        return int(self.world.settings.get("php_max_input_vars", 5000))

    def now(self) -> int:
        """The emulated site's clock, in unix seconds."""
        return int(self.clock())

    # --- serving ---------------------------------------------------------------------------
    def handle(
        self, body_pairs: list[tuple[str, str]], query_pairs: list[tuple[str, str]] | None = None
    ) -> Reply:
        """Serve one request to ``/webservice/rest/server.php``."""
        if self.latency:
            time.sleep(self.latency)
        if self.cost is None:
            return self._handle(body_pairs, query_pairs, None)
        with self.cost.serving() as bill:
            return self._handle(body_pairs, query_pairs, bill)

    def _handle(
        self,
        body_pairs: list[tuple[str, str]],
        query_pairs: list[tuple[str, str]] | None,
        bill: Bill | None,
    ) -> Reply:
        # PHP keeps the first max_input_vars + 1 body fields and drops the rest without a word.
        kept = body_pairs[: self.max_input_vars + 1]
        variables = decode_pairs(list(query_pairs or []))
        variables.update(decode_pairs(kept))
        fmt = variables.pop("moodlewsrestformat", None)
        restformat = fmt if fmt in ("json", "xml") else "xml"
        token = variables.pop("wstoken", None)
        wsfunction = variables.pop("wsfunction", None)
        with self.lock:
            try:
                value, desc = self._serve(token, wsfunction, variables, bill)
            except ExternalError as error:
                if restformat == "json":
                    return Reply(200, JSON_TYPE, to_json(error_body(error, self.debug)))
                return Reply(200, XML_TYPE, error_xml(error, self.debug))
        if restformat == "json":
            return Reply(200, JSON_TYPE, to_json(value))
        return Reply(200, XML_TYPE, to_xml(value, desc))

    def _serve(
        self, token: Any, wsfunction: Any, params: dict[str, Any], bill: Bill | None
    ) -> tuple[Any, dict[str, Any] | None]:
        userid = self.world.tokens.get(token) if isinstance(token, str) else None
        if userid is None or userid not in self.world.users:
            raise ExternalError(errorcode="invalidtoken", message="Invalid token - token not found")
        if not isinstance(wsfunction, str) or not wsfunction:
            raise invalid_parameter(debuginfo="Missing function name")
        info = signatures().get(wsfunction)
        if wsfunction in OTHER_MOODLE_FUNCTIONS and wsfunction not in _HANDLERS:
            raise ExternalError(
                errorcode="accessexception",
                message="Access control exception",
                exception="webservice_access_exception",
            )
        if info is None or wsfunction not in _HANDLERS:
            raise ExternalError(
                errorcode="invalidrecord",
                message="Can't find data record in database table external_functions.",
                exception="dml_missing_record_exception",
            )
        if wsfunction not in self.world.service.get("functions", []):
            raise ExternalError(
                errorcode="accessexception",
                message="Access control exception",
                exception="webservice_access_exception",
            )
        self.calls.append((wsfunction, sum(1 for _ in params)))
        if bill is not None:
            bill.wsfunction = wsfunction
        validated = validate_parameters(info["parameters"], params, self.world.settings)
        call = Call(self, self.world, wsfunction, userid, validated, self.now())
        raw = _HANDLERS[wsfunction](call)
        if bill is not None:
            bill.charge(validated, raw, accounts=len(self.world.users))
        returns = info.get("returns")
        return clean_returnvalue(returns, raw, self.world.settings), returns

    def handle_form(self, body: str, query: str = "") -> Reply:
        """Serve a request given as url-encoded body and query strings."""
        return self.handle(
            parse_qsl(body, keep_blank_values=True), parse_qsl(query, keep_blank_values=True)
        )

    # --- test hooks --------------------------------------------------------------------------
    def run_setup(self, action: dict[str, Any]) -> None:
        """Run one of the contract's setup actions (``{"action": NAME, ...fields}``)."""
        with self.lock:
            _SETUP_ACTIONS[action["action"]](self, action)

    def token_for(self, username: str) -> str:
        """The token of a service user (``bridge``, ``admin``, ``nocap`` in the default seed)."""
        return self.world.token_for(username)

    def remove_function(self, wsfunction: str) -> None:
        """Take a function out of the service, as an administrator might (test hook)."""
        with self.lock:
            functions = self.world.service.get("functions", [])
            if wsfunction in functions:
                functions.remove(wsfunction)
