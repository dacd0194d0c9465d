"""What a person watching sees: no tqdm warning in a notebook, notices as plain lines,
progress lines for a log file (svmtrain.progress)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from svmtrain.progress import PercentLines

# A Jupyter kernel without ipywidgets, as tqdm.autonotebook recognises one: ipykernel's shell
# module loaded and IPython's get_ipython() a ZMQInteractiveShell.
_KERNEL = """
import sys, types, warnings
warnings.simplefilter("always")
shell = type("ZMQInteractiveShell", (), {})()
sys.modules["ipykernel"] = types.ModuleType("ipykernel")
sys.modules["ipykernel.zmqshell"] = types.ModuleType("ipykernel.zmqshell")
ipython = types.ModuleType("IPython")
ipython.get_ipython = lambda: shell
sys.modules["IPython"] = ipython
"""


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )


def test_the_fake_kernel_is_one_tqdm_auto_warns_in():
    """The set-up reproduces the notebook's 'IProgress not found' (else the next test proves
    nothing)."""
    assert "IProgress not found" in _python(_KERNEL + "import tqdm.auto").stderr


@pytest.mark.parametrize("progress", [True, False])
def test_no_tqdm_warning_in_a_kernel_without_ipywidgets(progress):
    """Every part with a bar imported (the CLI imports them all), a bar made and disabled."""
    code = _KERNEL + (
        "import svmtrain.cli, svmtrain.experiments.search, svmtrain.experiments.fit\n"
        "from svmtrain.progress import tqdm\n"
        f"with tqdm(total=3, disable={not progress}) as bar: bar.update(3)\n"
    )
    stderr = _python(code).stderr
    assert "IProgress" not in stderr and "Warning" not in stderr, stderr


def test_a_notice_is_its_line_alone_on_stderr_without_logging_configured():
    """No 'WARNING:', no file name, no source line: what a notebook or a script shows."""
    result = _python("from svmtrain.progress import notify; notify('search: 4 trials')")
    assert result.stderr == "search: 4 trials\n"


def test_percent_lines_say_every_step_crossed_and_the_end_once():
    lines: list[str] = []
    with PercentLines("download", 1000, lines.append, every=25) as bar:
        for _ in range(10):
            bar.update(60)  # 6% a time: 24, 48, 60 ... crosses 25, 50 after a few
        bar.update(400)
    assert lines == [
        "download: 30% (300 of 1,000)",
        "download: 54% (540 of 1,000)",
        "download: 100% (1,000 of 1,000)",
    ]


def test_percent_lines_start_from_what_is_already_there():
    lines: list[str] = []
    bar = PercentLines("x", 100, lines.append, initial=50, every=10, format=lambda n: f"{n} B")
    bar.update(5)
    assert lines == []  # 55%: the 50% mark was passed before this run
    bar.update(5)
    assert lines == ["x: 60% (60 B of 100 B)"]
