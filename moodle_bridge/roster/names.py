"""Names as HR writes them ─► Moodle's ``firstname`` and ``lastname``.

The rules, in order:

1. Whitespace is collapsed and the text NFC-normalised. Apostrophes (``Ma'ruf``, ``Nur'aini``,
   straight or curly) and non-ASCII letters are kept as written.
2. **Back titles.** Everything after the first comma is titles when it looks like degree
   abbreviations (``S.Ag.``, ``S.Pd.I``, ``M.Pd.I.``, ``Lc.``, ``MA``, ``Ph.D.``, ``SPd``...):
   dotted abbreviations of short letter groups, camel-case abbreviations, words of 1-4
   capitals (``SE``, ``MM``, ``IPU``, the ``I`` of ``S. Pd. I``) and a list of undotted ones.
   A word after the comma that does not look like a degree (``Fauzi, Ahmad``) stays part of
   the name, in the order written: the comma is then only a separator (so a surname-first
   ``FAUZI, ALI`` loses ``ALI`` as a degree: HR files do not use that order). Dotted degrees at
   the end of the name without a comma (``Ahmad Fauzi S.Ag M.Pd``) are titles too.
3. **Front titles** (``Dr.``, ``Drs.``, ``Dra.``, ``H.``, ``Hj.``, ``Ir.``, ``Prof.``, ``dr.``,
   ``drh.``, ``KH.``, ``Pdt.``...) are removed from the start, any case, with or without the dot,
   several in a row and glued together (``Prof.Dr.H.Ahmad``). Name abbreviations such as
   ``M.``, ``Moh.`` or ``Abd.`` are not titles and stay.
4. The last remaining word is the lastname, the others the firstname. Balinese names follow the
   same rule: the prefixes of caste and birth order (``I``, ``Ni``, ``Gusti``, ``Ngurah``,
   ``Luh``, ``Putu``, ``Made``...) stay in the firstname and the personal name, written last, is
   the lastname: ``I Gusti Ngurah Rai`` ─► ``I Gusti Ngurah`` / ``Rai``; ``Ni Luh Putu Ayu`` ─►
   ``Ni Luh Putu`` / ``Ayu``.
5. **Only titles.** A name with nothing left but titles is an :class:`InvalidName` ("only
   titles"), never a name: ``Dr. H.``, ``S.Pd.``, ``S. Pd.``, ``S.Ag., M.Pd.I``, ``SPd``.
   Words still count as titles here when they are degrees written with inner dots
   (``S.Pd.``, ``M.Pd.I``), a listed degree or front title with a dot (``Lc.``, ``Dr.``) or a
   camel-case degree (``SPd``); all-capital words (``BUDI``, ``MA``) and name abbreviations
   (``Abd.``, ``M.``) are names.
6. **Mononyms.** A single word left (``Sukarmiati``) is never given an invented surname: with
   ``mononym="repeat"`` (the default) it becomes both firstname and lastname
   (``Sukarmiati``/``Sukarmiati``); with ``mononym="marker"`` the lastname is the marker
   (default ``"."``: ``Sukarmiati``/``.``), so reports can tell it apart. A unit plugin chooses
   with its ``name_rule`` and ``name_marker`` settings.
7. Moodle keeps 100 characters per part: a longer part is an :class:`InvalidName`, never cut.
   ``<`` and ``>`` are refused too, because Moodle strips tags from names and the stored name
   would then never match the roster again.

The display name is the caller's business: it keeps the titles.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Literal

from moodle_bridge.i18n import _

__all__ = [
    "FRONT_TITLES",
    "MAX_NAME_PART",
    "InvalidName",
    "MononymRule",
    "clean_name",
    "sort_key",
    "split_name",
    "strip_titles",
]

MononymRule = Literal["repeat", "marker"]

#: Moodle's ``firstname`` and ``lastname`` columns hold 100 characters.
MAX_NAME_PART = 100

#: Front titles, lower case and without dots (``K.H.`` is ``kh``).
FRONT_TITLES: frozenset[str] = frozenset(
    {
        "dr", "drs", "dra", "drg", "drh", "ir", "prof",  # academic and professional
        "h", "hj", "kh", "kyai", "kiai", "ust", "ustadz", "ustadzah", "tgk",  # Islamic
        "pdt", "pnt",  # Protestant ministers and elders
        "ns", "apt",  # nurse, pharmacist (also written in front)
    }
)  # fmt: skip

#: Degree abbreviations written without dots, lower case.
_UNDOTTED_DEGREES: frozenset[str] = frozenset(
    {
        "ma", "mm", "mba", "msc", "bsc", "ba", "bs", "ms", "phd", "lc", "llm", "mpa", "mph",
        "se", "st", "sh", "ssi", "sag", "spd", "spdi", "sthi", "shi", "sei", "sos", "ssos",
        "sip", "skm", "skom", "skep", "sfarm", "ssy", "sth", "sak", "spsi", "ssn", "sst", "stp",
        "mpd", "mpdi", "msi", "mag", "mh", "mhi", "mth", "mkom", "mkes", "mhum", "mt", "mpsi",
        "msy", "mei", "mesy", "mars", "msn", "amd", "ak", "cpa", "ca", "ns", "apt", "hons",
        "spa", "spb", "spog", "sppd", "spkj", "sprad", "spm", "sptht",
    }
)  # fmt: skip

# After a comma: "S.Ag.", "M.Pd.I", "Ph.D.", "A.Md.Kep", "Lc.".
_DOTTED_DEGREE = re.compile(r"^\(?(?:[A-Za-z]{1,5}\.)+[A-Za-z]{0,5}\.?\)?$")
# Camel-case degrees: "SPd", "MPdI", "SKom", "PhD"; and short capitals: "SE", "MM", "IPU", "SKM",
# or the "I" of "S. Pd. I" typed with spaces.
_MIXED_CASE_DEGREE = r"^(?=.*[a-z])[A-Z][a-z]{0,3}(?:[A-Z][a-z]{0,3})+$"
_CAMEL_DEGREE = re.compile(rf"{_MIXED_CASE_DEGREE}|^[A-Z]{{1,4}}$")
_MIXED_CASE = re.compile(_MIXED_CASE_DEGREE)
# Without a comma only unmistakable ones: "S.Ag", "M.Pd.I", "Ph.D" (1-2 letters, a dot, more).
_TRAILING_DEGREE = re.compile(r"^[A-Za-z]{1,2}\.(?:[A-Za-z]{1,4}\.?)+$")
_LEADING_DOTTED = re.compile(r"^((?:[A-Za-z]+\.)+)(.*)$")
_LETTER = re.compile(r"[^\W\d_]")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})


class InvalidName(ValueError):
    """The name cannot become a Moodle firstname/lastname; ``reason`` says why, in plain words
    (in the language of the run: it is a row error people read)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def clean_name(full: str) -> str:
    """Collapse whitespace and NFC-normalise: the display form of the name, titles kept."""
    text = " ".join(full.split())
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return text


@lru_cache(maxsize=4096)
def _is_back_degree(word: str) -> bool:
    if _DOTTED_DEGREE.match(word) or _CAMEL_DEGREE.match(word):
        return True
    return word.strip("().").replace(".", "").lower() in _UNDOTTED_DEGREES


@lru_cache(maxsize=4096)
def _is_title(word: str) -> bool:
    """Whether a word left after the titles were removed is a title all the same (rule 5)."""
    letters = word.strip("().").replace(".", "").lower()
    if "." in word and (letters in FRONT_TITLES or letters in _UNDOTTED_DEGREES):
        return True
    if "." in word.strip("().") and _DOTTED_DEGREE.match(word):
        return True
    return letters in _UNDOTTED_DEGREES and _MIXED_CASE.match(word) is not None


def _only_titles(words: list[str]) -> bool:
    """Whether the words left are titles all the same: each one (``S.Pd.``), or together when
    typed with spaces (``S. Pd. I``)."""
    if all(map(_is_title, words)):
        return True
    spaced = all(w.endswith(".") or (len(w) == 1 and w.isupper()) for w in words)
    return len(words) > 1 and spaced and _is_title("".join(words))


def _strip_front(words: list[str]) -> list[str]:
    """Remove front titles; return the remaining words."""
    i = 0
    while i < len(words):
        word = words[i]
        if word.replace(".", "").lower() in FRONT_TITLES:
            i += 1
            continue
        match = _LEADING_DOTTED.match(word) if "." in word else None
        if match is None:
            break
        # Glued titles: "Prof.Dr.H.Ahmad" or "K.H.Ahmad". Consume title segments greedily.
        segments = match.group(1).split(".")[:-1]
        taken = _take_titles(segments)
        if taken == 0:
            break
        rest_segments = segments[taken:]
        rest = ".".join(rest_segments) + ("." if rest_segments else "") + match.group(2)
        if rest:
            return [rest, *words[i + 1 :]]
        i += 1
    return words[i:]


def _take_titles(segments: list[str]) -> int:
    """How many leading dotted segments form titles (``["K", "H", "Ahmad"]`` -> 2)."""
    taken = 0
    while taken < len(segments):
        for end in range(len(segments), taken, -1):
            if "".join(segments[taken:end]).lower() in FRONT_TITLES:
                taken = end
                break
        else:
            return taken
    return taken


def _name_words(full: str) -> list[str]:
    """The words of the name without titles (empty when nothing is left)."""
    if not full.isascii():
        full = unicodedata.normalize("NFC", full)
    head, comma, tail = full.partition(",")
    words = head.split()
    if comma:
        words += [w for w in tail.replace(",", " ").split() if not _is_back_degree(w)]
    else:
        while len(words) > 1 and _TRAILING_DEGREE.match(words[-1]):
            words.pop()
    return _strip_front(words)


def strip_titles(full: str) -> str:
    """The name without front and back titles, whitespace collapsed (may be empty)."""
    return " ".join(_name_words(full))


def split_name(full: str, *, mononym: MononymRule = "repeat", marker: str = ".") -> tuple[str, str]:
    """Split a name as HR writes it into Moodle's ``(firstname, lastname)``.

    Titles are left out; the rules are in the module docstring.
    Raises :class:`InvalidName` for an empty name, a name without letters or with only titles,
    a name with ``<``/``>``, or a part longer than :data:`MAX_NAME_PART` characters.
    Raises :class:`ValueError` for a bad ``mononym``/``marker`` setting.
    """
    if mononym != "repeat" and (mononym != "marker" or not marker.strip()):
        if mononym != "marker":
            msg = f"mononym must be 'repeat' or 'marker', not {mononym!r}"
        else:
            msg = "the mononym marker must not be empty"
        raise ValueError(msg)
    if "<" in full or ">" in full:
        msg = _("The name contains '<' or '>', which Moodle does not keep in names")
        raise InvalidName(msg)
    words = _name_words(full)
    if not words or _LETTER.search(full) is None or _only_titles(words):
        if not full.strip():
            msg = _("The name is empty")
        elif _LETTER.search(full) is None:
            msg = _("The name has no letters")
        else:
            msg = _("The name has only titles (such as Dr. or S.Pd.) and no name")
        raise InvalidName(msg)
    lastname = words.pop()
    if words:
        firstname = " ".join(words)
    else:
        firstname = lastname
        if mononym == "marker":
            lastname = marker.strip()
    if len(firstname) > MAX_NAME_PART or len(lastname) > MAX_NAME_PART:
        template, part = (
            (_("The first name is {length} characters long; Moodle allows {most}. "
               "Shorten it in the HR data"), firstname)
            if len(firstname) > MAX_NAME_PART
            else (_("The last name is {length} characters long; Moodle allows {most}. "
                    "Shorten it in the HR data"), lastname)
        )  # fmt: skip
        raise InvalidName(template.format(length=len(part), most=MAX_NAME_PART))
    return firstname, lastname


def sort_key(full: str) -> str:
    """A key for sorting and matching names: titles removed, case-folded, apostrophes unified."""
    return strip_titles(full).translate(_APOSTROPHES).casefold()
