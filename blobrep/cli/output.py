"""Printing results: JSON for scripts (the default, like ``az``), tables for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO


def print_json(value: Any, stream: TextIO | None = None) -> None:
    """``value`` as indented JSON on stdout."""
    out = stream or sys.stdout
    out.write(json.dumps(value, indent=2, sort_keys=False) + "\n")


def print_table(rows: Sequence[Mapping[str, Any]], stream: TextIO | None = None) -> None:
    """Rows of the same keys as an aligned text table."""
    out = stream or sys.stdout
    if not rows:
        out.write("(nothing)\n")
        return
    headers = list(rows[0].keys())
    cells = [[_cell(row.get(header)) for header in headers] for row in rows]
    widths = [max(len(header), *(len(line[i]) for line in cells)) for i, header in enumerate(headers)]
    out.write("  ".join(header.ljust(widths[i]) for i, header in enumerate(headers)).rstrip() + "\n")
    out.write("  ".join("-" * width for width in widths) + "\n")
    for line in cells:
        out.write("  ".join(_align(value, widths[i]) for i, value in enumerate(line)).rstrip() + "\n")


def print_result(value: Mapping[str, Any], output: str) -> None:
    """One result object, as JSON or as a two-column table."""
    if output == "table":
        print_table([{"field": key, "value": item} for key, item in value.items()])
    else:
        print_json(value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _align(value: str, width: int) -> str:
    numeric = value.replace(".", "", 1).replace("-", "", 1).isdigit()
    return value.rjust(width) if numeric else value.ljust(width)
