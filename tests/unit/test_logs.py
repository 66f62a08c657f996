"""Personal data stays out of logs: NIPs and emails are masked."""

from __future__ import annotations

import logging

import pytest

from moodle_bridge.logs import MaskingFilter, mask


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nip 197501012000031001 failed", "nip 1975************01 failed"),
        ("19750101 200003 1 001", "1975************01"),
        ("mail rina.wulandari@kemenag.example", "mail r***@kemenag.example"),
        ("id 12345 and 1234567890123456789", "id 12345 and 1234567890123456789"),
    ],
)
def test_mask(text: str, expected: str):
    assert mask(text) == expected


def test_masking_filter_rewrites_formatted_records():
    record = logging.LogRecord("moodle_bridge", logging.INFO, __file__, 1,
                               "created %s <%s>", ("198203152006042002", "siti@kemenag.example"),
                               None)
    assert MaskingFilter().filter(record)
    assert record.getMessage() == "created 1982************02 <s***@kemenag.example>"
