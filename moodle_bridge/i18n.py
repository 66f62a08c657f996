"""People-facing text in the operator's language: English, or Bahasa Indonesia.

Row errors, warnings, change reasons, plan and run summaries and the HR error file are people's
text: they are written through :func:`_` and :func:`ngettext` as whole sentences with named
placeholders, formatted *after* translation (``_("row {row} is empty").format(row=n)``). Logs
and exceptions are for developers and stay English.

The catalogues are standard gettext: ``locale/<lang>/LC_MESSAGES/moodle_bridge.po`` is what a
translator edits (``locale/README.md`` says how), and the compiled ``moodle_bridge.mo`` beside
it is what the standard :mod:`gettext` module loads, so reading them needs no dependency. The
``.mo`` is committed; a test fails when it is older than its ``.po``. English needs no
catalogue: the message ids are the English text.

The language is one for the whole process: the CLI chooses it first thing
(:func:`choose_language`: ``--lang``, else ``MOODLE_BRIDGE_LANG``, else the locale, else
English) and sets it with :func:`use_language`. Text is translated when it is made, far below
the CLI, so a message made before the language was set stays English.
"""

from __future__ import annotations

import gettext
from collections.abc import Mapping
from functools import cache
from pathlib import Path

__all__ = [
    "DOMAIN",
    "ENGLISH",
    "ENV_VAR",
    "LOCALE_DIR",
    "LOCALE_VARS",
    "N_",
    "_",
    "choose_language",
    "current_language",
    "languages",
    "ngettext",
    "use_language",
]

#: The gettext domain: the catalogues' file name.
DOMAIN = "moodle_bridge"
#: Where the catalogues live: ``<lang>/LC_MESSAGES/moodle_bridge.mo``.
LOCALE_DIR = Path(__file__).resolve().with_name("locale")
#: The language of the message ids.
ENGLISH = "en"
#: The environment variable that chooses the language (``--lang`` beats it).
ENV_VAR = "MOODLE_BRIDGE_LANG"
#: The locale variables, in the order POSIX reads them for messages: the first one set wins.
LOCALE_VARS = ("LC_ALL", "LC_MESSAGES", "LANG")

_catalogue: gettext.NullTranslations = gettext.NullTranslations()
_language = ENGLISH


@cache
def languages() -> tuple[str, ...]:
    """English and every language with a compiled catalogue, sorted: what ``--lang`` offers."""
    found = {path.parent.parent.name for path in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.mo")}
    return tuple(sorted(found | {ENGLISH}))


def choose_language(option: str | None, environ: Mapping[str, str]) -> str:
    """The language to speak: ``option`` (``--lang``), else :data:`ENV_VAR`, else the locale
    (the first of :data:`LOCALE_VARS` that is set, ``id_ID.UTF-8`` meaning ``id``), else
    English. A locale whose language has no catalogue (``C``, ``fr_FR``) means English."""
    if option:
        return option
    chosen = environ.get(ENV_VAR, "").strip()
    if chosen:
        return chosen
    for name in LOCALE_VARS:
        value = environ.get(name, "")
        if value:
            code = value.split(".")[0].split("@")[0].split("_")[0].lower()
            return code if code in languages() else ENGLISH
    return ENGLISH


def use_language(language: str) -> None:
    """Speak ``language`` from now on, in the whole process.

    Raises ValueError for a language without a catalogue, naming the ones there are.
    """
    global _catalogue, _language
    if language not in languages():
        msg = f"no messages in language {language!r}: choose one of {', '.join(languages())}"
        raise ValueError(msg)
    if language == ENGLISH:
        _catalogue = gettext.NullTranslations()
    else:
        _catalogue = gettext.translation(DOMAIN, LOCALE_DIR, languages=[language])
    _language = language


def current_language() -> str:
    """The language people's text is made in now."""
    return _language


def _(message: str) -> str:
    """``message`` in the current language (the message id itself in English)."""
    return _catalogue.gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    """The form of a message for ``count`` things, in the current language."""
    return _catalogue.ngettext(singular, plural, count)


def N_(message: str) -> str:
    """Mark ``message`` for translation without translating it: for texts kept in tables and
    translated with :func:`_` where they are used."""
    return message
