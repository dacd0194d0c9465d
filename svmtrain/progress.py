"""What a person watching sees while svmtrain works: progress bars, progress lines, notices.

- ``tqdm`` (imported on first use) is the progress bar class every part uses: the notebook
  widget in a Jupyter kernel that has ipywidgets, else tqdm's plain text bar (``tqdm.auto``
  would warn "IProgress not found" in every kernel without ipywidgets, even for a disabled
  bar).
- :class:`PercentLines` reports progress as a line every few percent, for a log file, where
  a bar's carriage returns would be noise.
- :func:`notify` says news that is not a problem (a retried download, a locked data
  directory, how many trials a search runs) on the ``svmtrain`` logger, as one plain line:
  Python shows it on stderr as it stands, with no file or source line, unless the caller has
  configured logging; the CLI shows it as one line on stderr.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Callable


def __getattr__(name: str):
    """``tqdm``, imported on first use (PEP 562), so that the config layer's notices do not
    load tqdm."""
    if name != "tqdm":
        raise AttributeError(f"module 'svmtrain.progress' has no attribute {name!r}")
    if "ipykernel" in sys.modules and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.notebook import tqdm as bar
    else:
        from tqdm.std import tqdm as bar
    globals()["tqdm"] = bar
    return bar


LOGGER = logging.getLogger("svmtrain")


def notify(message: str) -> None:
    """Tell a person watching ``message`` (one line; see the module docstring)."""
    LOGGER.warning(message)


class PercentLines:
    """Calls ``say`` with ``"<what>: 25% (<done> of <total>)"`` each time ``update`` crosses
    another ``every`` percent of ``total``, and once at 100%. ``format`` turns a count into
    text (e.g. bytes into "42.0 MB"). Works as a context manager, like a tqdm bar."""

    def __init__(
        self,
        what: str,
        total: int,
        say: Callable[[str], None],
        *,
        initial: int = 0,
        every: int = 5,
        format: Callable[[int], str] = "{:,}".format,
    ) -> None:
        self.what, self.total, self.say, self.every, self.format = what, total, say, every, format
        self.done = initial
        self._shown = self._percent() // every

    def _percent(self) -> int:
        return 100 if self.total <= 0 else min(100, 100 * self.done // self.total)

    def update(self, count: int) -> None:
        self.done += count
        mark = self._percent() // self.every
        if mark > self._shown:
            self._shown = mark
            self.say(
                f"{self.what}: {self._percent()}% "
                f"({self.format(self.done)} of {self.format(self.total)})"
            )

    def __enter__(self) -> PercentLines:
        return self

    def __exit__(self, *exc) -> None:
        return None
