"""Emulated Moodle functions: competency (being written)."""
