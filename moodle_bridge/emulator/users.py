"""Emulated Moodle functions: users (being written)."""
