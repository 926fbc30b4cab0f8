"""Printing results as ``az`` does: JSON for scripts (the default), tables for people, TSV for
shell loops, YAML for config files, each after an optional JMESPath ``--query``.

Every command hands :func:`render` its whole result (the document) and, for tables, the rows
it chose to show. A query selects from the document, as ``az --query`` does; a table then
shows what the query selected rather than the command's own rows.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TextIO

if TYPE_CHECKING:
    from jmespath.parser import ParsedResult

#: The ``-o`` formats.
FORMATS: Final = ("json", "table", "tsv", "yaml")


def compile_query(text: str) -> ParsedResult:
    """``text`` as a compiled JMESPath expression.

    Raises:
        ValueError: naming what is wrong with it (jmespath's own message).
    """
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        parsed = jmespath.compile(text)
    except JMESPathError as exc:
        raise ValueError(" ".join(str(exc).split())) from None
    _check_functions(parsed.parsed)
    return parsed


def _check_functions(node: Mapping[str, Any]) -> None:
    """Refuse a call of a function JMESPath lacks, or with the wrong number of arguments,
    before the command runs: jmespath itself only finds out while it searches a result, which
    is after the command has done its work.

    Raises:
        ValueError: naming the function and what would be right.
    """
    from jmespath.functions import Functions

    if node.get("type") == "function_expression":
        name, given = node["value"], len(node["children"])
        table = Functions().FUNCTION_TABLE
        if name not in table:
            known = ", ".join(sorted(table))
            raise ValueError(f"unknown function {name}(): JMESPath's functions are {known}")
        signature = table[name]["signature"]
        variadic = bool(signature) and bool(signature[-1].get("variadic"))
        if given < len(signature) or (given > len(signature) and not variadic):
            wanted = f"at least {len(signature)}" if variadic else str(len(signature))
            raise ValueError(f"{name}() takes {wanted} argument(s), not {given}")
    for child in node.get("children", ()):
        if isinstance(child, Mapping):
            _check_functions(child)


def render(
    document: Any,
    rows: Sequence[Mapping[str, Any]],
    output: str,
    query: ParsedResult | None = None,
    stream: TextIO | None = None,
) -> None:
    """Print ``document`` (or what ``query`` selects from it) in the format ``output``; a
    table shows ``rows`` when there is no query."""
    out = stream or sys.stdout
    document = plain(document)
    if query is not None:
        document = _select(query, document)
        rows = _rows_of(document)
    if output == "table":
        print_table(rows, out)
    elif output == "tsv":
        out.write(to_tsv(document))
    elif output == "yaml":
        import yaml

        out.write(yaml.safe_dump(document, sort_keys=False, default_flow_style=False))
    else:
        print_json(document, out)


def plain(document: Any) -> Any:
    """``document`` in JSON's own shapes: every mapping a dict, every tuple a list, so that a
    query, a TSV line or a YAML document sees a list where JSON shows one (results built from
    frozen dataclasses hold tuples)."""
    if isinstance(document, Mapping):
        return {key: plain(value) for key, value in document.items()}
    if isinstance(document, list | tuple):
        return [plain(item) for item in document]
    return document


def _select(query: ParsedResult, document: Any) -> Any:
    """What ``query`` selects from ``document``.

    Raises:
        InvalidParameterError: the query fails on this result (a function given the wrong type).
    """
    from jmespath.exceptions import JMESPathError

    from blobrep.errors import InvalidParameterError

    try:
        return query.search(document)
    except JMESPathError as exc:
        message = " ".join(str(exc).split())
        raise InvalidParameterError(
            f"the command itself succeeded, but --query {query.expression!r} fails on this result:"
            f" {message}; correct the query (or leave it out) to see the result"
        ) from None


def to_tsv(document: Any) -> str:
    """``document`` as ``az -o tsv`` prints it: a line per item of a list (or one line), its
    values tab-separated in key order, no keys. A nested object is an empty cell, a nested list
    its length; null is empty, booleans are ``true``/``false``."""
    items = document if isinstance(document, list) else [document]
    lines = []
    for item in items:
        if isinstance(item, Mapping):
            values: Sequence[Any] = list(item.values())
        elif isinstance(item, list):
            values = item
        else:
            values = [item]
        lines.append("\t".join(_tsv_cell(value) for value in values) + "\n")
    return "".join(lines)


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


def field_rows(value: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One result object as the rows of a two-column table."""
    return [{"field": key, "value": item} for key, item in value.items()]


def _rows_of(selected: Any) -> list[Mapping[str, Any]]:
    """The table rows of what a query selected: its objects, or one ``Result`` cell each."""
    items = selected if isinstance(selected, list) else [selected]
    if items and all(isinstance(item, Mapping) for item in items):
        return list(items)
    if items and all(isinstance(item, list) for item in items):
        # A multiselect list per item (``[].[name, location]``): its values as columns, as az shows them.
        return [{f"Column{number}": value for number, value in enumerate(item, 1)} for item in items]
    return [{"Result": item} for item in items]


def _tsv_cell(value: Any) -> str:
    if value is None or isinstance(value, Mapping):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return str(len(value))
    return str(value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(plain(value), separators=(", ", ": "))
    return str(value)


def _align(value: str, width: int) -> str:
    numeric = value.replace(".", "", 1).replace("-", "", 1).isdigit()
    return value.rjust(width) if numeric else value.ljust(width)


def end_of_life_cell(end_of_life: datetime | None, now: datetime | None = None) -> str:
    """An end-of-life date for a table: empty if unset, marked ``(past)`` once it has passed,
    so a listing shows at a glance which versions are out of support."""
    from blobrep.core.definitions import format_datetime
    from blobrep.core.lifecycle import past_end_of_life

    if end_of_life is None:
        return ""
    passed = past_end_of_life(end_of_life, now if now is not None else datetime.now(UTC))
    return format_datetime(end_of_life) + (" (past)" if passed else "")
