"""Emulated Moodle functions: courses (being written)."""
