"""Everything that speaks Moodle's web-service API: wire encoding, transport and client."""

from moodle_bridge.moodle.client import MoodleClient, RetryPolicy
from moodle_bridge.moodle.encoding import encode_params, field_count
from moodle_bridge.moodle.transport import RawResponse, Transport

__all__ = [
    "MoodleClient",
    "RawResponse",
    "RetryPolicy",
    "Transport",
    "encode_params",
    "field_count",
]
