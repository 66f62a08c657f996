"""Replay the recorded contract against the emulator and compare every answer."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moodle_bridge.emulator import Emulator

RECORDINGS = Path(__file__).parent / "recordings"
VOLATILE = "<volatile>"
INVALID_TOKEN = "not-a-token-0000"


@dataclass
class Outcome:
    case_id: str
    expected: Any
    actual: Any
    kind: str  # "json", "xml", "keys" or "summary"


def case_files(folder: Path) -> list[Path]:
    order = json.loads((folder / "_order.json").read_text())["files"]
    return [folder / name for name in order]


def case_ids(folder: Path) -> list[str]:
    ids = []
    for path in case_files(folder):
        for case in json.loads(path.read_text())["cases"]:
            ids.append(f"{path.name}#{case['name']}")
    return ids


def _volatile_paths(folder: Path) -> dict[str, list[str]]:
    paths: dict[str, list[str]] = {}
    volatile = folder / "_volatile.json"
    if not volatile.exists():
        volatile = RECORDINGS / "_volatile.json"
    for item in json.loads(volatile.read_text())["volatile"]:
        where, _, path = item["path"].partition(":")
        paths.setdefault(where, []).append(path)
    return paths


def _mask(value: Any, steps: list[str]) -> Any:
    if not steps:
        return VOLATILE
    step, rest = steps[0], steps[1:]
    if step == "[*]":
        if isinstance(value, list):
            return [_mask(v, rest) for v in value]
        return value
    if isinstance(value, dict) and step in value:
        return {k: (_mask(v, rest) if k == step else v) for k, v in value.items()}
    return value


def mask(value: Any, path: str) -> Any:
    """Replace the values at a ``_volatile.json`` path (``response.a[*].b``) by a marker."""
    steps = re.findall(r"\[\*\]|[^.\[\]]+", path)
    if steps and steps[0] in ("response", "followup"):
        steps = steps[1:]
    return _mask(value, steps)


REDACTED_KEY = "userprivateaccesskey"
_XML_KEY = re.compile(
    r'(<KEY name="userprivateaccesskey"><VALUE>)[^<]*(?:<REDACTED[^>]*>)?(</VALUE>)'
)


def redact(value: Any) -> Any:
    """Blank what the capture redacted (``_volatile.json``, redacted_at_capture): the
    per-user private access key is random on every site."""
    if isinstance(value, str):
        return _XML_KEY.sub(r"\1<redacted>\2", value)
    if isinstance(value, dict):
        return {k: ("<redacted>" if k == REDACTED_KEY else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def _token(emulator: Emulator, user: str | None) -> str | None:
    if user is None:
        return None
    if user == "invalid":
        return INVALID_TOKEN
    return emulator.token_for(user)


def _send(
    emulator: Emulator, token_user: str | None, request: dict[str, Any], method: str
) -> tuple[str, Any]:
    token = _token(emulator, token_user)
    if "body_pairs_in_order" in request:
        pairs = [
            (k, token if v == "<TOKEN>" and k == "wstoken" else v)
            for k, v in request["body_pairs_in_order"]
        ]
    else:
        pairs = []
        if "wstoken" in request and token is not None:
            pairs.append(("wstoken", token))
        if "wsfunction" in request:
            pairs.append(("wsfunction", request["wsfunction"]))
        pairs.extend((k, str(v)) for k, v in request.get("params", {}).items())
        if "moodlewsrestformat" in request:
            pairs.append(("moodlewsrestformat", request["moodlewsrestformat"]))
    reply = emulator.handle([], pairs) if method == "GET" else emulator.handle(pairs)
    if reply.content_type.startswith("application/json"):
        return "json", json.loads(reply.body)
    return "xml", reply.body


def _compare_form(recorded: dict[str, Any], kind: str, actual: Any) -> tuple[str, Any, Any]:
    if "response_keys" in recorded:
        return (
            "keys",
            recorded["response_keys"],
            sorted(actual) if isinstance(actual, dict) else actual,
        )
    expected = recorded.get("response")
    if isinstance(expected, dict) and "_summary" in expected and isinstance(actual, list):
        summary = {
            "count": len(actual),
            "first": actual[: len(expected["first"])],
            "last": actual[len(actual) - len(expected["last"]) :],
        }
        return "summary", {k: expected[k] for k in ("count", "first", "last")}, summary
    return kind, expected, actual


def _replay_case(
    emulator: Emulator, case_id: str, case: dict[str, Any], volatile: dict[str, list[str]]
) -> Outcome:
    """Run one recorded case (its setup, request and followup) and pair each answer with the
    recorded one."""
    try:
        for action in case.get("setup", []):
            emulator.run_setup(action)
        kind, actual = _send(
            emulator, case["token_user"], case["request"], case.get("http_method", "POST")
        )
    except Exception as error:
        kind, actual = "crash", f"{type(error).__name__}: {error}"
    kind, expected, actual = _compare_form(case, kind, actual)
    for vpath in volatile.get(case_id, []):
        if vpath.startswith("response"):
            expected, actual = mask(expected, vpath), mask(actual, vpath)
    result_expected: dict[str, Any] = {"response": redact(expected)}
    result_actual: dict[str, Any] = {"response": redact(actual)}
    followup = case.get("followup")
    if followup:
        try:
            fkind, factual = _send(emulator, followup["token_user"], followup["request"], "POST")
        except Exception as error:
            fkind, factual = "crash", f"{type(error).__name__}: {error}"
        fkind, fexpected, factual = _compare_form(followup, fkind, factual)
        result_expected["followup"] = fexpected
        result_actual["followup"] = factual
    return Outcome(case_id, result_expected, result_actual, kind)


def replay_file(
    emulator: Emulator, path: Path, volatile: dict[str, list[str]] | None = None
) -> Iterator[Outcome]:
    """Replay the cases of one recording in order, yielding after each (the emulator's state
    is then the one the next case starts from)."""
    for case in json.loads(path.read_text())["cases"]:
        case_id = f"{path.name}#{case['name']}"
        yield _replay_case(emulator, case_id, case, volatile or {})


def replay(folder: Path = RECORDINGS) -> list[Outcome]:
    """Seed an emulator from ``folder`` and replay every case in order."""
    seed = json.loads((folder / "_seed.json").read_text())
    emulator = Emulator(seed)
    volatile = _volatile_paths(folder)
    return [
        outcome for path in case_files(folder) for outcome in replay_file(emulator, path, volatile)
    ]


# --- recordings made apart from the main sequence --------------------------------------------
@dataclass(frozen=True)
class Apart:
    """A recording captured on a fresh site of the seed world, after an administrator changed
    some of its settings (``_apart.json``)."""

    path: Path
    site_settings: dict[str, str]

    def emulator(self, **settings: str) -> Emulator:
        """An emulator of the seed world with this recording's settings (and ``settings``)."""
        seed = json.loads((self.path.parent / "_seed.json").read_text())
        seed["site_settings"].update(self.site_settings, **settings)
        return Emulator(seed)

    def case_ids(self) -> list[str]:
        cases = json.loads(self.path.read_text())["cases"]
        return [f"{self.path.name}#{case['name']}" for case in cases]


def apart(folder: Path = RECORDINGS) -> list[Apart]:
    """The recordings ``_apart.json`` declares, each to be replayed from its own start."""
    listed = json.loads((folder / "_apart.json").read_text())["recordings"]
    return [Apart(folder / item["file"], dict(item["site_settings"])) for item in listed]


def replay_apart(folder: Path = RECORDINGS) -> list[Outcome]:
    """Replay each recording made apart, on a fresh emulator with its site settings."""
    volatile = _volatile_paths(folder)
    return [
        outcome
        for recording in apart(folder)
        for outcome in replay_file(recording.emulator(), recording.path, volatile)
    ]
