"""Logging that keeps personal data out: NIPs and emails are masked in every record."""

from __future__ import annotations

import logging
import re

_NIP = re.compile(r"(?<!\d)(\d{4})\d{12}(\d{2})(?!\d)")
_NIP_SPACED = re.compile(r"(?<!\d)(\d{4})\d{4} \d{6} \d \d(\d{2})(?!\d)")
_EMAIL = re.compile(r"([A-Za-z0-9._%+'-])[A-Za-z0-9._%+'-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


def mask_nips(text: str) -> str:
    """Mask NIPs (``1975************01``) in ``text``, and nothing else."""
    text = _NIP_SPACED.sub(r"\1************\2", text)
    return _NIP.sub(r"\1************\2", text)


def mask(text: str) -> str:
    """Mask NIPs (``1975************01``) and emails (``a***@kemenag.go.id``) in ``text``."""
    return _EMAIL.sub(r"\1***@\2", mask_nips(text))


class MaskingFilter(logging.Filter):
    """Rewrites each record's message with :func:`mask` before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the formatted message in place; never drops a record."""
        record.msg = mask(record.getMessage())
        record.args = None
        return True


def configure(verbosity: int) -> None:
    """Send moodle_bridge's logs to stderr, masked; ``verbosity`` 0 warnings, 1 info, 2 debug."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskingFilter())
    root = logging.getLogger("moodle_bridge")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
