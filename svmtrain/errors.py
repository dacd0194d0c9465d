"""One exception hierarchy for every problem a user can fix.

Library code raises these with a message that names the thing at fault and how to fix it;
the CLI turns them into one line on stderr and a non-zero exit, with no traceback.
"""


class SvmtrainError(Exception):
    """Base class. ``str(err)`` is the whole message shown to the user."""

    exit_code = 1


class ConfigError(SvmtrainError):
    """A config file, key, value or command-line override is invalid."""


class DataError(SvmtrainError):
    """The dataset cannot be downloaded, verified, parsed or cached."""


class DownloadError(DataError):
    """The archive could not be fetched (unreachable host, HTTP error, timeout)."""


class ChecksumError(DataError):
    """The downloaded archive does not match the expected digest."""


class ArchiveError(DataError):
    """The archive is corrupt, truncated, or lacks an expected member."""


class WeightsError(SvmtrainError):
    """A weights file is missing, unreadable, or of the wrong shape."""


class DivergenceError(SvmtrainError):
    """Training diverged (loss NaN, inf, or exploding)."""


class PlotUnavailable(SvmtrainError):
    """matplotlib (the optional ``plot`` extra) is not installed."""


class Interrupted(SvmtrainError):
    """The user pressed Ctrl-C; the message says what was kept and how to resume."""

    exit_code = 130


class Terminated(Interrupted):
    """SIGTERM stopped the run; as :class:`Interrupted`, with the exit code of a SIGTERM."""

    exit_code = 143  # 128 + SIGTERM, what a shell reports for a process SIGTERM ended


class ProblemSizeError(ValueError):
    """A count asked of an experiment (examples, weights to check) is more than there is.

    ``argument`` names the parameter, so the CLI can name its option in a usage error.
    """

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument
