"""Tables and documents of results: CSV and strict JSON (no NaN) written atomically, and text."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from typing import Any

from svmtrain.fileio import atomic_write


def write_csv(path: str | os.PathLike, columns: Sequence[str], rows: Sequence[dict]) -> None:
    """``rows`` (dicts with at least ``columns``) as CSV with a header, atomically.

    None is an empty cell, booleans are true/false, floats are written in full precision
    (inf and nan as such).
    """
    with atomic_write(path, "w") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_csv_cell(row[c]) for c in columns])


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return value


def write_json(path: str | os.PathLike, document: Any) -> None:
    """``document`` as indented JSON, atomically; non-finite floats become null."""
    with atomic_write(path, "w") as f:
        f.write(to_json(document) + "\n")


def to_json(document: Any) -> str:
    """Indented JSON text of ``document``, with inf and NaN as null (JSON has neither)."""
    return json.dumps(_finite_or_null(document), indent=2, allow_nan=False)


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_null(v) for v in value]
    return value


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table: columns right-aligned except the first, one header rule."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def cell(value: object, spec: str) -> str:
    """``value`` formatted with ``spec`` for a table, or "-" when it is None (not known)."""
    return "-" if value is None else format(value, spec)


def plural(number: int, noun: str) -> str:
    """``number`` and ``noun``, plural unless it is one: "1 epoch", "3 epochs"."""
    return f"{number} {noun}" + ("" if number == 1 else "s")


def duration(seconds: float) -> str:
    """``seconds`` rounded for a person: "42 s", "7 min" or "1.5 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
