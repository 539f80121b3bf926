"""Why a package cannot be made: one line for the user, and the exit status that goes with it."""

from __future__ import annotations

from scoring_runtime.errors import ScoringRuntimeError

# As argparse exits on a bad command line, and as the server exits when it cannot start (errors.py).
USAGE_EXIT = 2
FAILURE_EXIT = 3


class PackageError(ScoringRuntimeError):
    """An input cannot be packaged; the message says what is wrong and what to do. Nothing has been written."""

    exit_code = FAILURE_EXIT


class UsageError(PackageError):
    """The command line itself is wrong: a flag is missing, malformed, or conflicts with another."""

    exit_code = USAGE_EXIT
