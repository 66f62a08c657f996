"""NIP rules: what is cleaned, what is refused, what is only a warning (synthetic NIPs)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moodle_bridge.roster.nip import NipResult, mask_nip, normalise_nip

TODAY = date(2025, 6, 1)
ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + i) for i in range(10)))
PERSIAN = str.maketrans("0123456789", "".join(chr(0x06F0 + i) for i in range(10)))
FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + i) for i in range(10)))
EXCEL_REASON = "Excel turned the NIP into a number; the digits are lost: export the column as text"


def check(raw: str) -> NipResult:
    return normalise_nip(raw, today=TODAY)


# --- accepted PNS numbers ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        "197501012000031001",
        "19750101 200003 1 001",
        "  19750101  200003  1  001  ",
        "19750101.200003.1.001",
        "19750101-200003-1-001",
        "19750101\u00a0200003\u00a01\u00a0001",  # non-breaking spaces from a web page
        "19750101 \u2013 200003 \u2013 1 \u2013 001",  # en dashes
        "NIP. 19750101 200003 1 001",
        "nip: 197501012000031001",
        "'197501012000031001",  # Excel's text prefix
    ],
)
def test_pns_nip_is_cleaned(raw: str) -> None:
    result = check(raw)
    assert result.ok
    assert result.nip == "197501012000031001"
    assert result.error is None
    assert result.warnings == ()
    assert result.kind == "PNS"
    assert result.birth_date == date(1975, 1, 1)
    assert result.appointment == (2000, 3)
    assert result.sex == "M"


def test_female_digit() -> None:
    assert check("198203152006042002").sex == "F"


def test_appointment_exactly_at_17th_birthday_month_is_accepted() -> None:
    result = check("199005102007051001")
    assert result.kind == "PNS"
    assert result.appointment == (2007, 5)


# --- PPPK-shaped: accepted with a warning -----------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "hint"),
    [
        ("198507072021211001", "2021-21"),  # year + sex + sequence: month 21 does not exist
        ("198507072021001001", "2021-00"),  # month 00
        ("198507072021013001", "digit 15 is 3"),  # a real month, but no 1/2 sex digit
        ("198507079999121001", "too far in the future"),
    ],
)
def test_pppk_shape_is_a_warning_not_an_error(raw: str, hint: str) -> None:
    result = check(raw)
    assert result.ok
    assert result.nip == raw
    assert result.error is None
    assert result.kind == "PPPK"
    assert result.birth_date == date(1985, 7, 7)
    assert result.appointment is None
    assert len(result.warnings) == 1
    assert "PPPK" in result.warnings[0]
    assert hint in result.warnings[0]


def test_appointment_next_month_is_still_pns() -> None:
    # NIPs are issued before the appointment (TMT) date.
    assert check("199001012025071001").kind == "PNS"


# --- refused ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        "1.97501E+17",
        "1,97501E+17",
        "1.97501e+17",
        "1.97501012000031E+17",
        "1.97501E17",
        " 1.97501E+17 ",
        "197501012000031000.0",
        "197501012000031000,00",
    ],
)
def test_excel_numbers_are_refused_with_a_clear_reason(raw: str) -> None:
    result = check(raw)
    assert not result.ok
    assert result.nip is None
    assert result.error == EXCEL_REASON


@pytest.mark.parametrize(
    "raw",
    [
        "197501012000031001".translate(ARABIC_INDIC),
        "197501012000031001".translate(PERSIAN),
        "197501012000031001".translate(FULL_WIDTH),
        "19750101200003100" + "1".translate(ARABIC_INDIC),  # one stray digit is enough
    ],
)
def test_non_ascii_digits_are_refused(raw: str) -> None:
    result = check(raw)
    assert result.nip is None
    assert result.error is not None
    assert "0-9" in result.error


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("19750101200003100", "exactly 18 digits; this one has 17"),
        ("1975010120000310011", "exactly 18 digits; this one has 19"),
        ("19750101200003100O", "contains 'O'"),
        ("19750101/200003/1/001", "contains '/'"),
        ("197513012000031001", "1975-13-01 is not a real date"),
        ("197502302000031001", "1975-02-30 is not a real date"),
        ("190002292000031001", "1900-02-29 is not a real date"),
        ("189912312000031001", "before 1900"),
        ("203001012047031001", "in the future"),
        ("197501011985031001", "less than 17 years after the birth date"),
        ("197506151992051001", "less than 17 years after the birth date"),  # 16 years 11 months
    ],
)
def test_refusals_say_why(raw: str, fragment: str) -> None:
    result = check(raw)
    assert result.nip is None
    assert result.error is not None
    assert fragment in result.error


def test_reasons_never_repeat_the_nip() -> None:
    for raw in ("197513012000031001", "203001012047031001", "197501011985031001"):
        error = check(raw).error
        assert error is not None
        assert raw not in error


def test_today_defaults_to_the_current_date() -> None:
    assert normalise_nip("197501012000031001").ok


def test_mask() -> None:
    assert mask_nip("197501012000031001") == "1975************01"
    assert mask_nip("123") == "***"


# --- properties -------------------------------------------------------------------------------
@given(st.text(max_size=40))
def test_any_text_gives_a_result_never_an_exception(raw: str) -> None:
    result = check(raw)
    assert (result.nip is None) != (result.error is None)
    if result.nip is not None:
        assert len(result.nip) == 18
        assert result.nip.isascii()
        assert result.nip.isdigit()


@st.composite
def pns_numbers(draw: st.DrawFn) -> tuple[date, int, int, str, str]:
    born = draw(st.dates(min_value=date(1950, 1, 1), max_value=date(2005, 12, 31)))
    year = draw(st.integers(born.year + 18, 2025))
    month = draw(st.integers(1, 5 if year == 2025 else 12))
    sex = draw(st.sampled_from("12"))
    sequence = draw(st.integers(0, 999))
    return born, year, month, sex, f"{born:%Y%m%d}{year:04d}{month:02d}{sex}{sequence:03d}"


@given(pns_numbers(), st.lists(st.sampled_from([" ", ".", "-", "  "]), min_size=3, max_size=3))
def test_generated_pns_numbers_round_trip_with_separators(
    number: tuple[date, int, int, str, str], separators: list[str]
) -> None:
    born, year, month, sex, nip = number
    spaced = nip[:8] + separators[0] + nip[8:14] + separators[1] + nip[14] + separators[2]
    spaced += nip[15:]
    result = check(spaced)
    assert result.nip == nip
    assert result.kind == "PNS"
    assert result.birth_date == born
    assert result.appointment == (year, month)
    assert result.sex == ("M" if sex == "1" else "F")


@given(st.integers(10**17, 10**18 - 1))
def test_excel_scientific_form_of_any_nip_is_refused(number: int) -> None:
    assert check(f"{float(number):.5E}").error == EXCEL_REASON
    assert check(f"{float(number):E}".replace(".", ",")).error == EXCEL_REASON
