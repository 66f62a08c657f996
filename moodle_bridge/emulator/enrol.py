"""Emulated Moodle functions: enrol (being written)."""
