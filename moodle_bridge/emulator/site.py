"""Emulated Moodle functions: site (being written)."""
