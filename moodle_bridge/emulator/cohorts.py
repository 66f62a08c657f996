"""Emulated Moodle functions: cohorts (being written)."""
