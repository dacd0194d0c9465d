"""One exception hierarchy for every problem a user can fix.

Library code raises these with a message that names the thing at fault and how to fix it;
the CLI turns them into one line on stderr and a non-zero exit, with no traceback.
"""

import math
import re
import signal


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


class ImageError(SvmtrainError):
    """Images given to a model are not raw uint8 pixels of a known layout, or an image file
    cannot be read."""


class DivergenceError(SvmtrainError):
    """Training diverged (loss NaN, inf, or exploding)."""


class PlotUnavailable(SvmtrainError):
    """matplotlib (the optional ``plot`` extra) is not installed."""


class Interrupted(SvmtrainError):
    """The user pressed Ctrl-C; the message says what was kept and how to resume."""

    exit_code = 130


class ClusterError(SvmtrainError):
    """The Dask scheduler cannot be reached, has no workers, or a worker cannot run svmtrain."""


class SigTerm(KeyboardInterrupt):
    """SIGTERM or SIGHUP (``signum``), raised where the main thread was (see
    ``svmtrain.experiments.common.sigterm_as_interrupt``), so that every Ctrl-C path handles it;
    such a path raises :class:`Terminated` where it would raise :class:`Interrupted`, saying
    :attr:`name`."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        """The signal's name, e.g. ``SIGHUP``."""
        return _signal_name(self.signum) or f"signal {self.signum}"


class Terminated(Interrupted):
    """A signal (SIGTERM, SIGHUP) stopped the run; as :class:`Interrupted`, with the exit code
    a shell reports for a process that signal ended (128 + its number: 143, 129)."""

    exit_code = 128 + signal.SIGTERM

    def __init__(self, message: str, signum: int = signal.SIGTERM) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


class ArgumentError(SvmtrainError, ValueError):
    """A value passed to a library function cannot be used.

    ``arguments`` names the parameter(s) at fault, as the function calls them, so that the CLI
    can name its options (``num_examples`` -> ``--num-examples``) in a usage error (exit 2);
    none for a bad combination whose message names the options itself. ``reason`` is what is
    wrong, without the name ("must be at least 1. Got 0 instead."), for the CLI to put after
    the option; ``str(err)`` names the parameter for a Python caller ("num_examples must be at
    least 1. Got 0 instead.") unless ``reason`` starts with its name already ("h=1e-20 is ...").
    Also a ValueError, as a bad argument value is one to a Python caller.
    """

    exit_code = 2

    def __init__(self, arguments: str | tuple[str, ...], reason: str) -> None:
        self.arguments = (arguments,) if isinstance(arguments, str) else tuple(arguments)
        self.reason = reason
        super().__init__(_named(self.arguments, reason))

    @property
    def argument(self) -> str:
        """The (first) parameter at fault."""
        return self.arguments[0]


class ProblemSizeError(ArgumentError):
    """A count asked of an experiment (examples, weights to check) is more than there is, or
    below 1."""


def _named(arguments: tuple[str, ...], reason: str) -> str:
    """``reason`` with the parameters' names in front, unless it starts with the first one."""
    if not arguments or re.match(rf"{re.escape(arguments[0])}\b", reason):
        return reason
    names = " and ".join(arguments)
    return f"{names} {reason}" if reason.startswith("must ") else f"{names}: {reason}"


def require_count(argument: str, count: int | None) -> None:
    """Raises :class:`ProblemSizeError` naming ``argument`` unless ``count`` is None or >= 1."""
    if count is not None and count < 1:
        raise ProblemSizeError(argument, f"must be at least 1. Got {count} instead.")


def require_finite(
    argument: str, value: object, *, low: float = 0.0, inclusive: bool = False
) -> float:
    """``value`` (a number, or its text as typed on a command line) as a float; raises
    :class:`ArgumentError` naming ``argument`` unless it is finite and above ``low`` (or equal
    to it, when ``inclusive``). The message quotes ``value`` as given."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if math.isfinite(number) and (number > low or (inclusive and number == low)):
        return number
    op = ">=" if inclusive else ">"
    raise ArgumentError(argument, f"must be a finite number {op} {low:g}. Got {value!r} instead.")


class StepTooSmall(ArgumentError):
    """x + h rounds back to x: the finite-difference step h is below the resolution of x's
    dtype there. h, dtype (a name) and value (the first such x) say where."""

    def __init__(self, h: float, dtype: str, value: float) -> None:
        super().__init__(
            "h",
            f"h={h:g} is too small for {dtype} values near {value:.3g}: "
            f"x + h rounds back to x. Use a larger h.",
        )
        self.h, self.dtype, self.value = h, dtype, value


class StepTooLarge(ArgumentError):
    """The finite-difference step h is so large that the probed values or the loss at them
    overflow W's dtype, so the differences are not numbers. h and dtype (a name) say which."""

    def __init__(self, h: float, dtype: str) -> None:
        super().__init__(
            "h",
            f"h={h:g} is too large for {dtype}: the probed weights or the loss at them overflow, "
            "so the finite differences are not numbers. Use a smaller h.",
        )
        self.h, self.dtype = h, dtype


class Notice(UserWarning):
    """News for a person watching, not a problem: the data directory is locked by another
    process, a download is being retried. The library warns with it instead of printing; the
    CLI shows each as one plain line on stderr."""


class WorkerDied(SvmtrainError):
    """A worker process died while trials ran: killed by a signal or exited by itself."""

    def __init__(self, trial: int | None, exitcode: int | None) -> None:
        self.trial = trial  # the trial it was running, None if it was between trials
        self.exitcode = exitcode  # negative: the signal that killed it
        if exitcode is not None and exitcode < 0:
            name = _signal_name(-exitcode)
            how = f"killed by signal {-exitcode}" + (f", {name}" if name else "")
            if exitcode == -signal.SIGKILL:
                how += "; out of memory?"
        else:
            how = f"exit code {exitcode}"
        whose = f"the worker for trial {trial}" if trial is not None else "a worker"
        super().__init__(f"{whose} died ({how})")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return ""
