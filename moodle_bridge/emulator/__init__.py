"""An in-memory Moodle 4.5 that behaves like the recordings in the contract folder.

Importing this package registers every emulated function and test hook.
"""

from moodle_bridge.emulator import (  # noqa: F401  (imported to register handlers)
    cohorts,
    competency,
    completion,
    courses,
    enrol,
    reportbuilder,
    site,
    users,
)
from moodle_bridge.emulator.core import Call, Emulator, Reply, setup_action, ws_function
from moodle_bridge.emulator.world import World, default_seed, load_seed

__all__ = [
    "Call",
    "Emulator",
    "Reply",
    "World",
    "default_seed",
    "load_seed",
    "setup_action",
    "ws_function",
]
