"""The ``svmtrain`` command line: a thin layer over the library.

Each subcommand lives in a module of this package and only parses options, calls library
functions and prints. Library errors (:class:`svmtrain.errors.SvmtrainError`) become one
clear line on stderr and a non-zero exit here, at the edge, and nowhere else; so does a
standard output that cannot be written (:func:`run`).
"""

import errno
import io
import logging
import os
import signal
import sys
from contextlib import contextmanager

import click

from svmtrain import __version__
from svmtrain.cli.configs import configs
from svmtrain.cli.data import data
from svmtrain.cli.evaluate import evaluate_cmd
from svmtrain.cli.features import features
from svmtrain.cli.fit import fit
from svmtrain.cli.gradcheck import gradcheck
from svmtrain.cli.landscape import landscape
from svmtrain.cli.plot import plot
from svmtrain.cli.predict import predict_cmd
from svmtrain.cli.runs import runs_group
from svmtrain.cli.search import search
from svmtrain.cli.sweep_step import sweep_step
from svmtrain.core.losses import LOSSES
from svmtrain.errors import ArgumentError, Interrupted, SigTerm, SvmtrainError
from svmtrain.experiments.common import sigterm_as_interrupt
from svmtrain.fileio import os_error_message
from svmtrain.progress import LOGGER


class _UserError(click.ClickException):
    """A ClickException that keeps the exit code of the library error it wraps."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _Group(click.Group):
    """Turns library errors and Ctrl-C into a message and an exit code, never a traceback, and
    shows library notices.

    An :class:`ArgumentError` is a usage error (exit 2) of the option named like its argument
    (num_examples: --num-examples), or of the command if it names no argument.
    """

    def invoke(self, ctx: click.Context):
        try:
            with _notices_as_lines(), sigterm_as_interrupt():
                return super().invoke(ctx)
        except ArgumentError as err:
            # A bad value of a library argument is a usage error of the option of that name;
            # one naming no argument is a bad combination, and its message names the options.
            command = self.get_command(ctx, ctx.invoked_subcommand)
            sub = click.Context(command, info_name=ctx.invoked_subcommand, parent=ctx)
            if not err.arguments:
                raise click.UsageError(err.reason, ctx=sub) from None
            raise click.BadParameter(
                err.reason,
                ctx=sub,
                param_hint=["--" + name.replace("_", "-") for name in err.arguments],
            ) from None
        except SvmtrainError as err:
            raise _UserError(str(err), err.exit_code) from None
        except Interrupted as err:  # Ctrl-C or a signal, with what was kept and how to go on
            _stopping()
            raise _UserError(err.text(command_line=True), err.exit_code) from None
        except SigTerm as stop:
            _stopping()
            raise _UserError(f"Stopped by {stop.name}.", 128 + stop.signum) from None
        except KeyboardInterrupt:
            _stopping()
            raise _UserError("Interrupted.", 130) from None
        except OSError as err:  # a file system's refusal no caller named: still one line
            raise _UserError(os_error_message(err), 1) from None
        except MemoryError as err:
            raise _UserError(_out_of_memory(err), 1) from None


def _out_of_memory(err: MemoryError) -> str:
    """What did not fit (numpy says which array: its size, shape and type) and the way on."""
    what = str(err).rstrip(".")
    what = f" ({what[0].lower()}{what[1:]})" if what else ""
    return (
        f"Out of memory{what}: the data or the arrays asked for do not fit. Use smaller "
        "settings (fewer examples, e.g. data.num_train or --num-examples; smaller features) "
        "or a machine with more memory."
    )


class _EchoHandler(logging.Handler):
    """Shows each record of the ``svmtrain`` logger as its message alone, one line on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(record.getMessage(), err=True)


@contextmanager
def _notices_as_lines():
    """Shows each library notice (:func:`svmtrain.progress.notify`: a retried download, a
    locked data directory) as its message alone, one line on stderr, and nowhere else."""
    handler, propagate = _EchoHandler(), LOGGER.propagate
    LOGGER.addHandler(handler)
    LOGGER.propagate = False
    try:
        yield
    finally:
        LOGGER.removeHandler(handler)
        LOGGER.propagate = propagate


@click.group(
    cls=_Group,
    commands=[
        data,
        features,
        fit,
        evaluate_cmd,
        predict_cmd,
        gradcheck,
        sweep_step,
        landscape,
        search,
        runs_group,
        plot,
        configs,
    ],
    context_settings={"help_option_names": ["-h", "--help"]},
    help=f"""Train, sweep and gradient-check linear classifiers ({", ".join(LOSSES)} losses)
    on CIFAR-10 with numpy.

    \b
    Start here:
      svmtrain data download          fetch and cache CIFAR-10
      svmtrain fit -c default         train the shipped default config
                                      (svmtrain configs list shows them all)
      svmtrain gradcheck --synthetic  check the analytic gradient
    """,
)
@click.version_option(__version__, "-V", "--version", prog_name="svmtrain")
def main() -> None:
    """The svmtrain command group; its help names the losses of the registry."""


class _OutputFailed(Exception):
    """Writing standard output failed with ``oserror``: not an OSError, so that neither click
    (which handles EPIPE its own way) nor a library's handler of file errors takes it."""

    def __init__(self, oserror: OSError) -> None:
        super().__init__(oserror)
        self.oserror = oserror


class _GuardedWriter(io.BufferedWriter):
    """Standard output's bytes, whose failures are :class:`_OutputFailed`."""

    def write(self, data) -> int:
        try:
            return super().write(data)
        except OSError as err:
            raise _OutputFailed(err) from None

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as err:
            raise _OutputFailed(err) from None


def _guard_stdout() -> None:
    """Route sys.stdout through a :class:`_GuardedWriter` on the same file descriptor."""
    stdout = sys.stdout
    buffer = getattr(stdout, "buffer", None)
    raw = getattr(buffer, "raw", buffer)  # unbuffered (python -u): the buffer is the raw file
    if not isinstance(raw, io.FileIO):
        return  # not a real file (an embedding, a test's capture): nothing to guard
    stdout.flush()
    sys.stdout = io.TextIOWrapper(
        _GuardedWriter(raw),
        encoding=stdout.encoding,
        errors=stdout.errors,
        line_buffering=stdout.line_buffering,
        write_through=raw is buffer,
    )


_PROGRAM = False  # run() sets it: svmtrain is the process, not a caller's CliRunner


def _stopping() -> None:
    """As the program stops on Ctrl-C or a signal, ignore another one: it would kill the
    process before its message is out (in a caller's process, e.g. tests, nothing changes)."""
    if _PROGRAM:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)


def run() -> None:
    """The ``svmtrain`` command line, as the console script runs it.

    A standard output that is closed or cannot be written (``>&-``, a full disk,
    ``> /dev/full``) is one line on stderr and exit 1 (before any work when it is closed); a
    closed pipe (``svmtrain ... | head -1``) ends quietly with exit 141 (128 + SIGPIPE), as
    Unix tools do. Either way nothing more is written to it.
    """
    if sys.stdout is None:  # started with standard output closed (``>&-``)
        sys.stderr.write(
            "Cannot write to standard output: it is closed. Send it somewhere (a file, a pipe, "
            "or > /dev/null to discard it).\n"
        )
        sys.exit(1)
    _guard_stdout()
    global _PROGRAM
    _PROGRAM = True
    try:
        main(prog_name="svmtrain")
    except _OutputFailed as failed:
        # Point the descriptor at /dev/null so the flush at exit has nowhere to fail.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        if failed.oserror.errno == errno.EPIPE:
            sys.exit(128 + 13)
        reason = failed.oserror.strerror or str(failed.oserror)
        sys.stderr.write(f"Cannot write to standard output: {reason}.\n")
        sys.exit(1)
