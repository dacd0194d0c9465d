"""The command line without a checkout: ``python -m svmtrain``, the shipped configs by name,
``svmtrain configs list`` and ``svmtrain configs show``."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from svmtrain import __version__
from svmtrain.cli import main


def _module(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """``python -m svmtrain ARGS`` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "svmtrain", *args], capture_output=True, text=True, timeout=timeout
    )


def test_python_m_svmtrain_is_the_cli():
    done = _module("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == CliRunner().invoke(main, ["--version"]).output
    assert __version__ in done.stdout


def test_python_m_svmtrain_keeps_exit_codes_and_names_itself():
    done = _module("fit", "--no-such-option")
    assert done.returncode == 2
    assert done.stderr.startswith("Usage: svmtrain fit ")
