"""Emulated Moodle functions: completion (being written)."""
