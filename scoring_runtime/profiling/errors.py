"""Why a profile cannot be made: one line for the user, and the exit status that goes with it."""

from __future__ import annotations

from scoring_runtime.errors import ScoringRuntimeError

# As `scoring-runtime package` exits: argparse's status for a bad command line, the server's for a failed start.
USAGE_EXIT = 2
FAILURE_EXIT = 3
# The shell's status for a process ended by SIGINT (128 + 2).
INTERRUPTED_EXIT = 130


class ProfileError(ScoringRuntimeError):
    """The profile cannot be made or finished; the message says what went wrong and what to do."""

    exit_code = FAILURE_EXIT


class UsageError(ProfileError):
    """The command line itself is wrong: a flag is missing, malformed, or conflicts with another."""

    exit_code = USAGE_EXIT
