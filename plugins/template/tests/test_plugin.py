"""Run moodle-bridge's unit-plugin test kit against this plugin: ``pytest tests``."""

from __future__ import annotations

from pathlib import Path

from moodle_bridge_unit_contoh import ContohMapper

from moodle_bridge.testing import UnitPluginContract

HERE = Path(__file__).resolve().parent


class TestContohPlugin(UnitPluginContract):
    mapper = ContohMapper()
    sample = HERE / "sample.csv"
    # The sample's dirty rows: an Excel-mangled NIP, an empty name, an invalid email.
    expected_errors = 3


def test_one_word_names_get_the_marker() -> None:
    people = ContohMapper().read_roster(HERE / "sample.csv").people
    mononyms = [p for p in people if " " not in p.display_name]
    assert mononyms
    assert all(p.lastname == "." for p in mononyms)
