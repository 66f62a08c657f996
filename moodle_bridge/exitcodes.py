"""The documented exit codes (README, "Exit codes"): one definition for the run reports that
decide a sync's code and the CLI that ends every command with one."""

from __future__ import annotations

import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    """The documented exit codes of every command."""

    OK = 0
    #: Done, but some records were refused (rows of the roster, or by Moodle).
    RECORD_ERRORS = 1
    #: The command line or the settings are wrong: nothing was done.
    USAGE = 2
    #: A safety guard stopped the run before it wrote anything.
    GUARD = 3
    #: A fatal Moodle error, or a state database that cannot be used.
    FATAL = 4
    #: Stopped by Ctrl-C (128 + SIGINT, as shells report it).
    INTERRUPTED = 130
    #: Stopped by SIGTERM (128 + SIGTERM).
    TERMINATED = 143
