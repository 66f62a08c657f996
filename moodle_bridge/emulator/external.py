"""Moodle's external API rules: parameter validation, return cleaning and the XML format.

These follow ``core_external\\external_api::validate_parameters()`` and ``clean_returnvalue()``
and ``clean_param()``/``validate_param()`` from ``lib/moodlelib.php``, driven by the function
descriptions recorded in ``_signatures.json``. Answers therefore get Moodle's key order, types
and error texts from the description, not from hand-written code per function.
"""

from __future__ import annotations

import html
import json
import re
import zoneinfo
from functools import cache
from importlib import resources
from typing import Any

Desc = dict[str, Any]

INSTALLED_LANGS = frozenset({"en"})
INSTALLED_THEMES = frozenset({"boost", "classic"})


class ExternalError(Exception):
    """A Moodle exception raised while serving a call; the emulator renders it as a body."""

    def __init__(
        self,
        errorcode: str | None,
        message: str,
        *,
        exception: str = "core\\exception\\moodle_exception",
        debuginfo: str | None = None,
    ) -> None:
        super().__init__(message)
        self.errorcode = errorcode
        self.message = message
        self.exception = exception
        self.debuginfo = debuginfo


def invalid_parameter(debuginfo: str | None = None) -> ExternalError:
    """Moodle's opaque ``invalid_parameter_exception``."""
    return ExternalError(
        "invalidparameter",
        "Invalid parameter value detected",
        exception="core\\exception\\invalid_parameter_exception",
        debuginfo=debuginfo,
    )


def invalid_response(debuginfo: str) -> ExternalError:
    """What Moodle raises when a function's answer does not fit its description."""
    return ExternalError(
        "invalidresponse",
        "Invalid response value detected",
        exception="core\\exception\\invalid_response_exception",
        debuginfo=debuginfo,
    )


@cache
def signatures() -> dict[str, Desc]:
    """The recorded descriptions of every function in the service, by name."""
    text = (
        resources.files("moodle_bridge.emulator")
        .joinpath("data/signatures.json")
        .read_text("utf-8")
    )
    functions: dict[str, Desc] = json.loads(text)["functions"]
    return functions


# --- clean_param -----------------------------------------------------------------------------
_TAGS = re.compile(r"<[^>]*>?")
_PLUGIN_NAME = re.compile(r"^[a-z](?:[a-z0-9_](?!__))*[a-z0-9]+$")
_INT_PREFIX = re.compile(r"^\s*([+-]?\d+)")
_FLOAT_SHAPE = re.compile(r"^[\+-]?[0-9]*\.?[0-9]*(e[-+]?[0-9]+)?$", re.IGNORECASE)


def php_string(value: Any) -> str:
    """``(string)$value`` in PHP."""
    if value is True:
        return "1"
    if value is False or value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _php_int(value: Any) -> int:
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float):
        return int(value)
    match = _INT_PREFIX.match(str(value))
    return int(match.group(1)) if match else 0


def _clean_plugin(value: str) -> str:
    value = re.sub(r"[^a-zA-Z0-9_-]", "", value)
    return value if _PLUGIN_NAME.match(value) else ""


def _valid_timezone(value: str) -> bool:
    if value == "99":
        return True
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return -13 <= float(value) <= 13
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def clean_param(value: Any, paramtype: str, settings: dict[str, Any] | None = None) -> Any:
    """Moodle's ``clean_param()`` for the parameter types the service uses."""
    settings = settings or {}
    text = php_string(value)
    if paramtype == "int":
        return _php_int(value)
    if paramtype == "float":
        try:
            return float(text)
        except ValueError:
            return 0.0
    if paramtype == "bool":
        lowered = text.lower()
        if lowered in ("on", "yes", "true"):
            return 1
        if lowered in ("off", "no", "false"):
            return 0
        return 0 if text in ("", "0") else 1
    if paramtype == "raw":
        return value
    if paramtype == "raw_trimmed":
        return text.strip()
    if paramtype in ("text", "notags"):
        return _TAGS.sub("", text)
    if paramtype == "alpha":
        return re.sub(r"[^a-zA-Z]", "", text)
    if paramtype == "alphanum":
        return re.sub(r"[^a-zA-Z0-9]", "", text)
    if paramtype == "alphanumext":
        return re.sub(r"[^a-zA-Z0-9_-]", "", text)
    if paramtype == "username":
        cleaned = text.strip().lower()
        if str(settings.get("extendedusernamechars", "0")) in ("", "0"):
            cleaned = re.sub(r"[^-\.@_a-z0-9]", "", cleaned.replace(" ", ""))
        return cleaned
    if paramtype == "auth":
        plugin = _clean_plugin(text)
        installed = settings.get("auth_plugins_installed", [])
        return plugin if plugin in installed else ""
    if paramtype in ("plugin", "area", "component"):
        return _clean_plugin(text) if paramtype != "component" else text
    if paramtype == "lang":
        return text if text in INSTALLED_LANGS else ""
    if paramtype == "theme":
        return text if text in INSTALLED_THEMES else ""
    if paramtype == "timezone":
        return text if _valid_timezone(text) else ""
    if paramtype == "safedir":
        return re.sub(r"[^a-zA-Z0-9_-]", "", text)
    # url, localurl, file, path, tag: the emulator only ever returns these, never checks them.
    return value


def validate_param(
    value: Any,
    paramtype: str,
    allownull: bool,
    debuginfo: str,
    settings: dict[str, Any] | None = None,
) -> Any:
    """Moodle's ``validate_param()``: clean, then refuse anything cleaning changed."""
    if value is None:
        if allownull:
            return None
        raise invalid_parameter(debuginfo=debuginfo)
    if isinstance(value, dict | list):
        raise invalid_parameter(debuginfo=debuginfo)
    cleaned = clean_param(value, paramtype, settings)
    if paramtype == "float":
        if not isinstance(value, float | int) and not (
            _FLOAT_SHAPE.match(php_string(value)) and php_string(value) not in ("", ".")
        ):
            raise invalid_parameter(debuginfo=debuginfo)
    elif php_string(value) != php_string(cleaned):
        raise invalid_parameter(debuginfo=debuginfo)
    return cleaned


def _print_r(value: Any) -> str:
    if isinstance(value, dict):
        inner = "".join(f"    [{k}] => {_print_r(v)}\n" for k, v in value.items())
        return f"Array\n(\n{inner})\n"
    return php_string(value)


def _is_bool_like(value: Any) -> bool:
    return isinstance(value, bool) or (value in (0, 1, "0", "1") and not isinstance(value, float))


def _wrap(key: str, error: ExternalError) -> ExternalError:
    return invalid_parameter(f"{key} => {error.message}: {error.debuginfo}")


def validate_parameters(desc: Desc, params: Any, settings: dict[str, Any] | None = None) -> Any:
    """Check decoded form data against a description and return it cleaned and ordered."""
    kind = desc["type"]
    if kind == "value":
        if isinstance(params, dict | list):
            raise invalid_parameter(debuginfo="Scalar type expected, array or object received.")
        if desc["paramtype"] == "bool" and _is_bool_like(params):
            return bool(int(params))
        debuginfo = (
            f'Invalid external api parameter: the value is "{php_string(params)}", '
            f'the server was expecting "{desc["paramtype"]}" type'
        )
        return validate_param(
            params, desc["paramtype"], desc.get("allownull", True), debuginfo, settings
        )
    if kind == "single_structure":
        if not isinstance(params, dict):
            raise invalid_parameter(
                debuginfo=f"Only arrays accepted. The bad value is: '{_print_r(params)}'"
            )
        remaining = dict(params)
        result: dict[str, Any] = {}
        for key, sub in desc["keys"].items():
            if key not in remaining:
                if sub["required"] == "required":
                    raise invalid_parameter(
                        debuginfo=f"Missing required key in single structure: {key}"
                    )
                if sub["required"] == "default":
                    try:
                        result[key] = validate_parameters(sub, sub.get("default"), settings)
                    except ExternalError as error:
                        raise _wrap(key, error) from error
            else:
                try:
                    result[key] = validate_parameters(sub, remaining[key], settings)
                except ExternalError as error:
                    raise _wrap(key, error) from error
            remaining.pop(key, None)
        if remaining:
            keys = ", ".join(remaining)
            raise invalid_parameter(
                debuginfo=f"Unexpected keys ({keys}) detected in parameter array."
            )
        return result
    if not isinstance(params, dict | list):
        raise invalid_parameter(
            debuginfo=f"Only arrays accepted. The bad value is: '{_print_r(params)}'"
        )
    items = params.values() if isinstance(params, dict) else params
    return [validate_parameters(desc["content"], item, settings) for item in items]


def clean_returnvalue(desc: Desc | None, value: Any, settings: dict[str, Any] | None = None) -> Any:
    """Shape a handler's answer the way Moodle's ``clean_returnvalue()`` does.

    ``settings`` are the site's (installed auth plugins, username rules): some value types
    are checked against them.
    """
    if desc is None:
        return None
    kind = desc["type"]
    if kind == "value":
        if isinstance(value, dict | list):
            raise invalid_response(debuginfo="Scalar type expected, array or object received.")
        if desc["paramtype"] == "bool" and _is_bool_like(value):
            return bool(int(value))
        debuginfo = (
            f'Invalid external api response: the value is "{php_string(value)}", '
            f'the server was expecting "{desc["paramtype"]}" type'
        )
        try:
            return validate_param(
                value, desc["paramtype"], desc.get("allownull", True), debuginfo, settings
            )
        except ExternalError as error:
            raise invalid_response(debuginfo) from error
    if kind == "single_structure":
        if not isinstance(value, dict):
            raise invalid_response(
                debuginfo=f"Only arrays/objects accepted. The bad value is: '{value}'"
            )
        result: dict[str, Any] = {}
        for key, sub in desc["keys"].items():
            if key not in value:
                if sub["required"] == "required":
                    raise invalid_response(
                        debuginfo=f"Error in response - Missing following required key in a single "
                        f"structure: {key}"
                    )
                if sub["type"] == "value" and sub["required"] == "default":
                    result[key] = clean_returnvalue(sub, sub.get("default"), settings)
            else:
                try:
                    result[key] = clean_returnvalue(sub, value[key], settings)
                except ExternalError as error:
                    raise invalid_response(debuginfo=f"{key} => {error.debuginfo}") from error
        return result
    if not isinstance(value, list | dict):
        raise invalid_response(debuginfo=f"Only arrays accepted. The bad value is: '{value}'")
    items = value.values() if isinstance(value, dict) else value
    return [clean_returnvalue(desc["content"], item, settings) for item in items]


# --- rendering ---------------------------------------------------------------------------------
def _whole_floats_as_ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_whole_floats_as_ints(v) for v in value]
    if isinstance(value, dict):
        return {k: _whole_floats_as_ints(v) for k, v in value.items()}
    return value


def to_json(value: Any) -> str:
    """``json_encode()`` as Moodle's REST server calls it.

    PHP escapes ``/`` and non-ASCII characters, and the recordings show whole floats
    (a course's ``progress`` of 100) written without a fraction.
    """
    text = json.dumps(_whole_floats_as_ints(value), ensure_ascii=True, separators=(",", ":"))
    return text.replace("/", "\\/")


def _s(value: Any) -> str:
    """Moodle's ``s()``: HTML-escape for XML output."""
    escaped = html.escape(php_string(value), quote=True).replace("&#x27;", "&#039;")
    return re.sub(r"&amp;#(\d+|x[0-9a-f]+);", r"&#\1;", escaped, flags=re.IGNORECASE)


def _xmlize(value: Any, desc: Desc | None) -> str:
    if desc is None:
        return ""
    kind = desc["type"]
    if kind == "value":
        if isinstance(value, bool):
            value = int(value)
        if value is None:
            return '<VALUE null="null"/>\n'
        return f"<VALUE>{_s(value)}</VALUE>\n"
    if kind == "multiple_structure":
        items = value or []
        return (
            "<MULTIPLE>\n" + "".join(_xmlize(v, desc["content"]) for v in items) + "</MULTIPLE>\n"
        )
    body = "".join(
        f'<KEY name="{key}">{_xmlize((value or {}).get(key), sub)}</KEY>\n'
        for key, sub in desc["keys"].items()
    )
    return f"<SINGLE>\n{body}</SINGLE>\n"


def to_xml(value: Any, desc: Desc | None) -> str:
    """The REST server's XML answer for a cleaned return value."""
    return (
        f'<?xml version="1.0" encoding="UTF-8" ?>\n<RESPONSE>\n{_xmlize(value, desc)}</RESPONSE>\n'
    )


def error_xml(error: ExternalError, debug: bool) -> str:
    """The REST server's XML answer for an exception."""
    debug_part = (
        f"<DEBUGINFO>{_s(error.debuginfo)}</DEBUGINFO>\n" if debug and error.debuginfo else ""
    )
    code = _s(error.errorcode) if error.errorcode is not None else ""
    return (
        '<?xml version="1.0" encoding="UTF-8" ?>\n'
        f'<EXCEPTION class="{error.exception}">\n'
        f"<ERRORCODE>{code}</ERRORCODE>\n"
        f"<MESSAGE>{_s(error.message)}</MESSAGE>\n"
        f"{debug_part}</EXCEPTION>\n"
    )


def error_body(error: ExternalError, debug: bool) -> dict[str, Any]:
    """The REST server's JSON answer for an exception."""
    body: dict[str, Any] = {"exception": error.exception}
    if error.errorcode is not None:
        body["errorcode"] = error.errorcode
    body["message"] = error.message
    if debug and error.debuginfo:
        body["debuginfo"] = error.debuginfo
    return body
