"""Checking the fields of a JSON document read from a replica: types, ranges, known names.

Every check raises :class:`~blobrep.errors.ManifestError` naming the field and what was
wrong with it, so a damaged or hostile document is refused with a message a user can act on.
"""

from __future__ import annotations

import json
from typing import Any

from blobrep.core.keys import is_digest
from blobrep.errors import ManifestError


def fail(where: str, problem: str) -> ManifestError:
    return ManifestError(f"invalid manifest: {where} {problem}")


def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise fail(f"field {key!r}", "appears twice")
        result[key] = value
    return result


def object_fields(
    value: Any, where: str, required: set[str], optional: frozenset[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(where, f"must be an object, not {type(value).__name__}")
    missing = required - value.keys()
    if missing:
        raise fail(where, f"lacks field(s) {', '.join(sorted(missing))}")
    unknown = value.keys() - required - optional
    if unknown:
        raise fail(where, f"has unknown field(s) {', '.join(sorted(unknown))}")
    return value


def integer(value: Any, where: str, low: int, high: int) -> int:
    # bool is an int in Python; a manifest saying "length": true is wrong, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(where, f"must be an integer, not {json.dumps(value)[:40]}")
    if not low <= value <= high:
        raise fail(where, f"is {value}, outside {low}..{high}")
    return value


def digest_field(value: Any, where: str) -> str:
    if not isinstance(value, str) or not is_digest(value):
        raise fail(where, f"must be 32 lower-case hex characters, not {json.dumps(value)[:60]}")
    return value
