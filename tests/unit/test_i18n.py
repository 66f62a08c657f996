"""The message catalogues: complete, current, compiled; and how the language is chosen.

The code is scanned with ``ast`` for ``_()``, ``N_()`` and ``ngettext()`` calls: every message
id it uses must be in the template and in each language's ``.po``, translated, with the same
placeholders, and nothing else may be there. The committed ``.mo`` must be what its ``.po``
compiles to.
"""

from __future__ import annotations

import ast
import gettext
import io
import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

import moodle_bridge
from moodle_bridge import i18n
from moodle_bridge.i18n import DOMAIN, ENGLISH, LOCALE_DIR, choose_language, use_language
from moodle_bridge.roster.generic import parse_generic_row
from moodle_bridge.roster.person import RowError
from moodle_bridge.roster.sources import SourceRow
from moodle_bridge.sync.plan import Reason

PACKAGE = Path(moodle_bridge.__file__).resolve().parent
TEMPLATE = LOCALE_DIR / f"{DOMAIN}.pot"
TRANSLATED = [lang for lang in i18n.languages() if lang != ENGLISH]
MARKERS = {"_": 1, "N_": 1, "ngettext": 2}

MessageId = str | tuple[str, str]


def _scan() -> tuple[dict[MessageId, list[str]], list[str]]:
    """Message ids in the package -> where they are used; and calls whose id is not a literal.

    ``_(name)`` and ``_(table[key])`` translate an id marked with ``N_`` where it is defined,
    so they are allowed; anything else (an f-string, a concatenation, a call) is not.
    """
    found: dict[MessageId, list[str]] = {}
    bad: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in MARKERS
            ):
                continue
            where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
            literals = node.args[: MARKERS[node.func.id]]
            texts = [a.value for a in literals if isinstance(a, ast.Constant)]
            if len(texts) == MARKERS[node.func.id] and all(isinstance(t, str) for t in texts):
                key: MessageId = texts[0] if len(texts) == 1 else (texts[0], texts[1])
                found.setdefault(key, []).append(where)
            elif node.func.id != "_" or not isinstance(literals[0], ast.Name | ast.Subscript):
                bad.append(where)
    return found, bad


def _read(path: Path) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle)


def _ids(catalog: Catalog) -> set[MessageId]:
    return {m.id for m in catalog if m.id}


def _fields(text: str) -> set[tuple[str, str | None, str]]:
    """The placeholders of a ``str.format`` template: name, conversion, format spec."""
    return {
        (name, conversion, spec or "")
        for _literal, name, spec, conversion in string.Formatter().parse(text)
        if name is not None
    }


CODE, NOT_LITERAL = _scan()


def test_the_scan_finds_the_messages():
    # A scan that found nothing would pass every check below.
    assert "The NIP is empty" in CODE
    assert ("row {rows} has its own error", "rows {rows} have their own errors") in CODE
    assert len(CODE) > 100


def test_every_message_id_is_a_literal():
    assert NOT_LITERAL == [], "message ids must be string literals (format after translating)"


def test_the_template_holds_exactly_the_code_messages():
    ids = _ids(_read(TEMPLATE))
    assert sorted(map(str, set(CODE) - ids)) == [], "run: tox -e messages"
    assert sorted(map(str, ids - set(CODE))) == [], "run: tox -e messages"


def test_there_is_a_translated_language():
    assert "id" in TRANSLATED


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_is_translated_and_nothing_else_is_there(language: str):
    catalog = _read(LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po")
    ids = _ids(catalog)
    missing = {str(key): CODE[key] for key in set(CODE) - ids}
    assert missing == {}, "not in the catalogue (run: tox -e messages, then translate)"
    assert sorted(map(str, ids - set(CODE))) == [], "no longer used: remove them"
    assert list(catalog.obsolete) == [], "obsolete entries: remove them"
    untranslated = [
        str(m.id)
        for m in catalog
        if m.id and (m.fuzzy or not all(m.string if isinstance(m.string, tuple) else (m.string,)))
    ]
    assert untranslated == []


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_the_placeholders(language: str):
    catalog = _read(LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po")
    wrong = []
    for message in catalog:
        if not message.id:
            continue
        wanted = _fields(message.id[-1] if isinstance(message.id, tuple) else message.id)
        forms = message.string if isinstance(message.string, tuple) else (message.string,)
        wrong += [(message.id, form) for form in forms if _fields(form) != wanted]
    assert wrong == []


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_compiled_catalogue_is_current(language: str):
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    compiled = io.BytesIO()
    write_mo(compiled, _read(folder / f"{DOMAIN}.po"))
    compiled.seek(0)
    with (folder / f"{DOMAIN}.mo").open("rb") as handle:
        committed = gettext.GNUTranslations(handle)
    fresh = gettext.GNUTranslations(compiled)
    # The header (msgid "") differs between compilers; the messages may not.
    assert {k: v for k, v in committed._catalog.items() if k != ""} == {  # type: ignore[attr-defined]
        k: v
        for k, v in fresh._catalog.items()  # type: ignore[attr-defined]
        if k != ""
    }, "the .mo is older than its .po: run pybabel compile (see moodle_bridge/locale/README.md)"


# --- choosing the language -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "environ", "expected"),
    [
        (None, {}, "en"),
        ("id", {}, "id"),
        ("en", {"MOODLE_BRIDGE_LANG": "id", "LC_ALL": "id_ID.UTF-8"}, "en"),
        (None, {"MOODLE_BRIDGE_LANG": "id", "LANG": "en_US.UTF-8"}, "id"),
        (None, {"MOODLE_BRIDGE_LANG": "en", "LC_ALL": "id_ID.UTF-8"}, "en"),
        (None, {"LANG": "id_ID.UTF-8"}, "id"),
        (None, {"LC_MESSAGES": "id_ID", "LANG": "en_US.UTF-8"}, "id"),
        (None, {"LC_ALL": "C.UTF-8", "LANG": "id_ID.UTF-8"}, "en"),
        (None, {"LC_ALL": "", "LANG": "id"}, "id"),
        (None, {"LANG": "fr_FR.UTF-8"}, "en"),
        (None, {"MOODLE_BRIDGE_LANG": " ", "LANG": "id_ID@euro"}, "id"),
    ],
)
def test_option_beats_environment_beats_locale(
    option: str | None, environ: dict[str, str], expected: str
):
    assert choose_language(option, environ) == expected


def test_an_unknown_language_is_refused_by_name():
    with pytest.raises(ValueError, match="choose one of en, id"):
        use_language("fr")


def _row(**values: str) -> SourceRow:
    cells = {"nip": "198001012005011001", "nama": "Ahmad Fauzi", "unit": "PENDIS", **values}
    return SourceRow(2, cells, ())


def test_messages_are_made_in_the_language_of_the_moment():
    use_language("id")
    assert i18n.current_language() == "id"
    refused = parse_generic_row("r.csv", _row(nip=""))
    assert isinstance(refused, RowError)
    assert refused.reason == "NIP kosong"
    assert refused.fix == "Isi NIP pegawai (18 digit)."
    assert Reason.of("moved", old="PENDIS", new="SETJEN").text() == "pindah dari PENDIS ke SETJEN"
    use_language("en")
    refused = parse_generic_row("r.csv", _row(nip=""))
    assert isinstance(refused, RowError)
    assert refused.reason == "The NIP is empty"
    assert Reason.of("moved", old="PENDIS", new="SETJEN").text() == "moved from PENDIS to SETJEN"


def test_cached_readers_do_not_keep_the_old_language():
    # The row parser and the NIP's birth-date cache are reused across calls: a switch of
    # language must still show in the next row's errors.
    bad_unit = _row(nip="197002302000031001")
    assert "not a real date" in str(parse_generic_row("r.csv", bad_unit))
    use_language("id")
    assert "bukan tanggal yang valid" in str(parse_generic_row("r.csv", bad_unit))
    no_unit = _row(unit="")
    assert isinstance(parse_generic_row("same.csv", no_unit), RowError)
    use_language("en")
    error = parse_generic_row("same.csv", no_unit)
    assert isinstance(error, RowError)
    assert error.reason == "The unit is empty (an Eselon I code such as PENDIS)"


def test_a_reason_without_a_text_is_shown_as_its_code():
    use_language("id")
    assert Reason("someday").text() == "someday"
