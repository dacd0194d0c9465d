"""The phases of a long job said as they happen: a bar while each runs, a line when it ends.

On a terminal (``bar``) each phase shows a tqdm bar with its count and an ETA from the mean
rate since the phase began (chunks finish in bursts on several threads, so a smoothed rate
jumps); ``log`` receives one line per finished phase (what, how many, how long), so a log file
or a notebook gets one line per phase and a terminal keeps a record once the bar is gone.
With neither, nothing is shown.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from svmtrain.progress import tqdm


class Phases:
    """Say the phases of a job named ``prefix`` (e.g. "features kmeans")."""

    def __init__(
        self, prefix: str, *, bar: bool = False, log: Callable[[str], None] | None = None
    ) -> None:
        self.prefix, self.bar, self.log = prefix, bar, log

    def say(self, line: str) -> None:
        """One line of the job (e.g. what it will need), to ``log`` if any."""
        if self.log is not None:
            self.log(f"{self.prefix}: {line}")

    @contextmanager
    def phase(
        self, what: str, total: int | None = None, unit: str = "", *, rate: bool = False
    ) -> Iterator[tqdm]:
        """A phase: yields a tqdm (disabled off a terminal; call ``update(n)``), then says
        "what total unit in s" (the count left out when ``total`` is None), and with ``rate``
        how many units a second."""
        started = time.perf_counter()
        with tqdm(
            total=total,
            desc=f"{self.prefix}: {what}",
            unit=f" {unit}" if unit else "it",
            disable=not self.bar,
            leave=False,
            dynamic_ncols=True,
            smoothing=0,
        ) as bar:
            yield bar
        seconds = time.perf_counter() - started
        count = f" {total:,} {unit}" if total is not None and unit else ""
        speed = f", {total / seconds:,.0f} {unit}/s" if rate and count and seconds > 0 else ""
        self.say(f"{what}{count} in {seconds:.1f} s{speed}")


SILENT = Phases("")
