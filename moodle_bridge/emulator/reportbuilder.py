"""Emulated Moodle functions: reportbuilder (being written)."""
