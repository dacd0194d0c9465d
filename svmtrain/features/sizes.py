"""What a feature cache will cost before it is built: its disk, the memory of its build, and
whether this machine has them.

A feature matrix grows with the settings (a HOG with 100,000 orientation bins is a 1.6 million
column matrix: 320 GB for CIFAR-10), so the figures are worked out from the settings and the
image counts alone, before any work, and a build this machine cannot hold is refused with
the size it would need.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from svmtrain.errors import ConfigError, DataError
from svmtrain.features.base import Extractor, worker_count

ITEMSIZE = 4  # bytes of a stored feature (float32)
MOMENT_BYTES = 64 * 2**20  # a block of rows summed at a time for the moments (float64)


@dataclass(frozen=True)
class Needs:
    """Bytes a build of ``rows`` images x ``dim`` features needs: ``disk`` for its files,
    ``memory`` at the peak of the build (fit, extraction, moments)."""

    rows: int
    dim: int
    disk: int
    memory: int

    def text(self) -> str:
        return (
            f"{self.rows:,} images x {self.dim:,} features: {human_bytes(self.disk)} on disk, "
            f"about {human_bytes(self.memory)} of memory to build"
        )


def build_needs(extractor: Extractor, fit_images: int, rows: int) -> Needs:
    """The needs of extracting ``rows`` images after fitting on ``fit_images`` of them."""
    dim = extractor.dim
    moments = min(rows, max(1, MOMENT_BYTES // (8 * dim))) * dim * 8 * 2
    memory = max(
        extractor.fit_bytes(fit_images),
        worker_count() * extractor.chunk_bytes(),
        moments,
    )
    return Needs(rows=rows, dim=dim, disk=rows * dim * ITEMSIZE, memory=memory)


def check_room(needs: Needs, where: Path, extractor: Extractor) -> None:
    """DataError naming the figures when the disk under ``where`` has less free space than
    ``needs.disk``; ConfigError when the machine has less available memory than
    ``needs.memory`` (the settings of ``extractor`` ask for more than it can hold)."""
    name = extractor.name
    free = shutil.disk_usage(_existing(where)).free
    if needs.disk > free:
        raise DataError(
            f"The {name} features of {needs.rows:,} images ({needs.dim:,} each) need "
            f"{needs.disk / 1e9:,.2f} GB in {where}, and {free / 1e9:,.2f} GB are free. Free "
            f"some space, choose another --data-dir, or change features.{name} for fewer "
            "features."
        )
    memory = available_memory()
    if memory is not None and needs.memory > memory:
        raise ConfigError(
            f"The {name} features ({needs.dim:,} each) need about "
            f"{human_bytes(needs.memory)} of memory to build, and this machine has "
            f"{human_bytes(memory)} available. Change features.{name} for fewer features."
        )


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's MemAvailable, else the
    physical memory); None when neither can be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def human_bytes(n: int) -> str:
    """1234567 -> '1.2 MB' (powers of 1000, as disks are sold)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n} bytes"


def _existing(path: Path) -> Path:
    """``path`` or its nearest parent that exists (the disk it would be written on)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
