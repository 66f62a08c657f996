"""Name splitting: titles, mononyms, Balinese names, apostrophes, Moodle's 100 characters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moodle_bridge.roster.names import (
    FRONT_TITLES,
    MAX_NAME_PART,
    InvalidName,
    MononymRule,
    clean_name,
    sort_key,
    split_name,
    strip_titles,
)


@pytest.mark.parametrize(
    ("full", "expected"),
    [
        # front titles, any case, several in a row, glued together
        ("Dr. Ahmad Fauzan", ("Ahmad", "Fauzan")),
        ("Drs. Ahmad Fauzan", ("Ahmad", "Fauzan")),
        ("Dra. Siti Rahmah", ("Siti", "Rahmah")),
        ("H. Ahmad Fauzan", ("Ahmad", "Fauzan")),
        ("Hj. Siti Rahmah", ("Siti", "Rahmah")),
        ("Ir. Bambang Sutejo", ("Bambang", "Sutejo")),
        ("Prof. Dr. H. Ahmad Fauzan", ("Ahmad", "Fauzan")),
        ("Prof.Dr.H.Ahmad Fauzan", ("Ahmad", "Fauzan")),
        ("dr. Siti Rahmah", ("Siti", "Rahmah")),
        ("drh. Bambang Sutejo", ("Bambang", "Sutejo")),
        ("KH. Ahmad Fauzan", ("Ahmad", "Fauzan")),
        ("K.H. Ahmad Fauzan", ("Ahmad", "Fauzan")),
        ("DRS. H. AHMAD FAUZAN", ("AHMAD", "FAUZAN")),
        ("Dr H Ahmad Fauzan", ("Ahmad", "Fauzan")),
        ("Pdt. Yohanes Situmeang", ("Yohanes", "Situmeang")),
        # back titles after the first comma
        ("Ahmad Fauzan, S.Ag.", ("Ahmad", "Fauzan")),
        ("Siti Rahmah, S.Pd.I", ("Siti", "Rahmah")),
        ("Ahmad Fauzan, S.Ag., M.Pd.I.", ("Ahmad", "Fauzan")),
        ("Ahmad Fauzan, M.Si.", ("Ahmad", "Fauzan")),
        ("Ahmad Fauzan, Lc., MA", ("Ahmad", "Fauzan")),
        ("Ahmad Fauzan, Ph.D.", ("Ahmad", "Fauzan")),
        ("Yohanes Situmeang, S.Th., M.Th.", ("Yohanes", "Situmeang")),
        ("Bambang Sutejo, S.Kom.", ("Bambang", "Sutejo")),
        ("Bambang Sutejo, SE, MM", ("Bambang", "Sutejo")),
        ("Bambang Sutejo, SPd, MSi", ("Bambang", "Sutejo")),
        ("Siti Rahmah, A.Md.Kep", ("Siti", "Rahmah")),
        ("Siti Rahmah , S. Pd. I", ("Siti", "Rahmah")),
        ("Dr. H. Ahmad Fauzan, S.Ag., M.Pd.I.", ("Ahmad", "Fauzan")),
        # dotted degrees without the comma
        ("Ahmad Fauzan S.Ag M.Pd", ("Ahmad", "Fauzan")),
        # abbreviations of names are not titles
        ("Drs. Abd. Rahman", ("Abd.", "Rahman")),
        ("H.M. Yusran Kalim", ("M. Yusran", "Kalim")),
        ("Moh. Sholeh", ("Moh.", "Sholeh")),
        # a comma followed by something that is not a degree only separates
        ("Fauzan, Ahmad Rizki", ("Fauzan Ahmad", "Rizki")),
    ],
)
def test_titles_stay_out_of_first_and_last_name(full: str, expected: tuple[str, str]) -> None:
    assert split_name(full) == expected


@pytest.mark.parametrize(
    ("full", "expected"),
    [
        ("I Gusti Ngurah Bagus Wirata", ("I Gusti Ngurah Bagus", "Wirata")),
        ("Ni Luh Putu Ayu Sekarini", ("Ni Luh Putu Ayu", "Sekarini")),
        ("Ni Luh Putu Ayu", ("Ni Luh Putu", "Ayu")),
        ("I Made Suastika, S.Ag", ("I Made", "Suastika")),
        ("I Wayan", ("I", "Wayan")),
        ("Ida Bagus Oka", ("Ida Bagus", "Oka")),
    ],
)
def test_balinese_names_keep_their_prefixes_in_the_firstname(
    full: str, expected: tuple[str, str]
) -> None:
    assert split_name(full) == expected


def test_mononym_repeat_is_the_default() -> None:
    assert split_name("Sukarmiati") == ("Sukarmiati", "Sukarmiati")
    assert split_name("H. Sukarmiati, S.Pd.") == ("Sukarmiati", "Sukarmiati")


def test_mononym_marker() -> None:
    assert split_name("Sukarmiati", mononym="marker") == ("Sukarmiati", ".")
    assert split_name("Sukarmiati", mononym="marker", marker="-") == ("Sukarmiati", "-")
    # Two words are never affected by the mononym rule.
    assert split_name("Siti Rahmah", mononym="marker") == ("Siti", "Rahmah")


def test_bad_settings_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="mononym"):
        split_name("Siti", mononym="invent")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="marker"):
        split_name("Siti", mononym="marker", marker=" ")


def test_apostrophes_and_non_ascii_letters_are_kept() -> None:
    assert split_name("Yusran Ma'ruf") == ("Yusran", "Ma'ruf")
    assert split_name("Sitti Nur\u2019aini, S.Pd.I") == ("Sitti", "Nur\u2019aini")
    assert split_name("René Pattiwael") == ("René", "Pattiwael")
    # NFD input (e + combining accent) comes out composed.
    assert split_name("Rene\u0301 Pattiwael") == ("René", "Pattiwael")


def test_whitespace_is_collapsed() -> None:
    assert split_name("  Siti \t  Rahmah\u00a0 Putri ") == ("Siti Rahmah", "Putri")
    assert clean_name("  Dr.  Siti \t Rahmah ,  S.Ag. ") == "Dr. Siti Rahmah , S.Ag."


def test_hundred_characters_is_the_limit_and_nothing_is_cut() -> None:
    words = ["Abcdefghi"] * 10  # 10 words of 9 letters: 99 characters with spaces
    assert len(" ".join(words)) == 99
    first, last = split_name(" ".join([*words, "Zulkarnain"]))
    assert len(first) == 99
    assert last == "Zulkarnain"

    exactly = "A" * MAX_NAME_PART
    assert split_name(f"Siti {exactly}") == ("Siti", exactly)
    with pytest.raises(InvalidName, match="101 characters"):
        split_name(f"Siti {exactly}A")
    with pytest.raises(InvalidName, match="first name is 101 characters"):
        split_name(" ".join(["Abcdefghi"] * 10 + ["A", "Zulkarnain"]))


@pytest.mark.parametrize(
    ("full", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("Dr. H.", "only titles"),
        ("Prof. Dr., S.Ag.", "only titles"),
        ("S.Pd.", "only titles"),
        ("S.Ag., M.Pd.I", "only titles"),
        ("S. Pd. I", "only titles"),
        ("SPd", "only titles"),
        ("Lc.", "only titles"),
        ("Hj. S.Pd.I., M.Pd.", "only titles"),
        ("S.Pd. M.Pd.", "only titles"),
        ("-", "no letters"),
        ("123", "no letters"),
        ("Siti <b>Rahmah</b>", "'<' or '>'"),
    ],
)
def test_invalid_names(full: str, fragment: str) -> None:
    with pytest.raises(InvalidName, match=fragment) as caught:
        split_name(full)
    assert caught.value.reason == str(caught.value)


@pytest.mark.parametrize(
    ("full", "expected"),
    [
        ("BUDI", ("BUDI", "BUDI")),  # capitals are a name, though "SE" is a degree after a comma
        ("MA", ("MA", "MA")),
        ("Abd.", ("Abd.", "Abd.")),  # a name abbreviation, not a title
        ("M. Ali", ("M.", "Ali")),
        ("Ahmad, S.Pd.", ("Ahmad", "Ahmad")),
    ],
)
def test_words_that_only_look_like_titles_stay_names(full: str, expected: tuple[str, str]) -> None:
    assert split_name(full) == expected


def test_invalid_name_is_a_value_error_for_callers_that_do_not_know_it() -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the point is the base class
        split_name("")


def test_sort_key_ignores_titles_case_and_apostrophe_style() -> None:
    assert sort_key("Dr. H. Ahmad Fauzan, S.Ag., M.Pd.I.") == "ahmad fauzan"
    assert sort_key("AHMAD FAUZAN") == sort_key("Prof. Ahmad Fauzan")
    assert sort_key("Nur\u2019aini") == sort_key("Nur'aini") == "nur'aini"
    assert strip_titles("Hj. Sitti Nur\u2019aini, S.Pd.I") == "Sitti Nur\u2019aini"


def test_front_titles_are_lower_case_without_dots() -> None:
    assert all(t == t.lower() and "." not in t for t in FRONT_TITLES)


# --- properties -------------------------------------------------------------------------------
name_words = st.from_regex(r"[A-Z][a-z]{2,11}", fullmatch=True).filter(
    lambda w: w.lower() not in FRONT_TITLES
)


@given(st.lists(name_words, min_size=2, max_size=6))
def test_plain_names_split_at_the_last_word(words: list[str]) -> None:
    assert split_name(" ".join(words)) == (" ".join(words[:-1]), words[-1])


@given(
    st.lists(st.sampled_from(["Dr.", "H.", "Hj.", "Prof.", "drh.", "KH.", "Drs."]), max_size=3),
    st.lists(name_words, min_size=1, max_size=4),
    st.lists(
        st.sampled_from(["S.Ag.", "M.Pd.I.", "Lc.", "MA", "Ph.D.", "S.Kom.", "SE"]), max_size=3
    ),
    st.sampled_from(["repeat", "marker"]),
)
def test_titles_never_reach_moodle_and_no_surname_is_invented(
    front: list[str], words: list[str], back: list[str], rule: MononymRule
) -> None:
    full = " ".join([*front, *words])
    if back:
        full += ", " + ", ".join(back)
    first, last = split_name(full, mononym=rule)
    if len(words) == 1:
        assert first == words[0]
        assert last == (words[0] if rule == "repeat" else ".")
    else:
        assert (first, last) == (" ".join(words[:-1]), words[-1])


titles = st.sampled_from(["Dr.", "H.", "Hj.", "Drs.", "S.Ag.", "M.Pd.I.", "S.Pd.", "Ph.D.", "Lc."])


@given(st.lists(titles, min_size=1, max_size=4), st.sampled_from([" ", ", "]))
def test_titles_alone_are_never_a_name(words: list[str], separator: str) -> None:
    for rule in ("repeat", "marker"):
        with pytest.raises(InvalidName, match="only titles"):
            split_name(separator.join(words), mononym=rule)  # type: ignore[arg-type]


@given(st.text(max_size=120))
def test_any_text_splits_or_says_why(full: str) -> None:
    problem: str | None = None
    try:
        first, last = split_name(full)
    except InvalidName as exc:
        problem = exc.reason
    if problem is not None:
        assert problem
    else:
        assert first
        assert last
        assert first == first.strip()
        assert last == last.strip()
        assert len(first) <= MAX_NAME_PART
        assert len(last) <= MAX_NAME_PART
