"""moodle_bridge: run Moodle as the training platform of a whole civil service."""

__version__ = "0.1.0"
