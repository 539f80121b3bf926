"""How the reference writes the values of its request telemetry: times, durations, the response body."""

from __future__ import annotations

import json
import time

# Application Insights keeps the first 8192 characters of a property; a longer response body is cut there.
RESPONSE_VALUE_CHARS = 8192
# The bytes of a body kept for that (UTF-8 takes at most 4 bytes a character).
RESPONSE_VALUE_BYTES = 4 * RESPONSE_VALUE_CHARS
# The reference's value for a body that is not UTF-8, JSON-quoted as there.
NOT_TEXT = json.dumps("Scoring request response payload is a non serializable object or raw binary")


def utc_text(time_ns: int) -> str:
    """`2026-12-03T11:11:57.026206Z`: the reference's start_time, and Application Insights' envelope time."""
    seconds, nanoseconds = divmod(time_ns, 1_000_000_000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{nanoseconds // 1000:06d}Z"


def _parts(milliseconds: int) -> tuple[int, str]:
    if milliseconds < 60_000:  # nearly every request: one division instead of four
        return 0, f"00:00:{milliseconds // 1000:02d}.{milliseconds % 1000:03d}"
    seconds, millis = divmod(milliseconds, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return days, f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def duration_text(milliseconds: int) -> str:
    """The reference's duration: `HH:MM:SS.mmm`, with `D.` in front from a day on."""
    days, text = _parts(milliseconds)
    return f"{days}.{text}" if days else text


def timespan_text(milliseconds: int) -> str:
    """Application Insights' duration: `D.HH:MM:SS.mmm`, the day always there (as Azure Monitor's exporter writes)."""
    days, text = _parts(milliseconds)
    return f"{days}.{text}"


def response_value(body: bytes) -> str:
    """The body as text, cut at RESPONSE_VALUE_CHARS; the reference's notice when it is not UTF-8."""
    try:
        text = body.decode()
    except UnicodeDecodeError as error:
        # A body captured up to RESPONSE_VALUE_BYTES may end inside a character: only that is forgiven.
        if len(body) < RESPONSE_VALUE_BYTES or error.start < len(body) - 3 or error.reason != "unexpected end of data":
            return NOT_TEXT
        text = body[: error.start].decode()
    return text[:RESPONSE_VALUE_CHARS]
