"""Conversions between model values and column values, shared by the catalog's tables."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import TypeVar

from blobrep.errors import InvalidParameterError, StorageError

_Choice = TypeVar("_Choice", bound=enum.StrEnum)


def now() -> str:
    """The current time as the catalog writes it."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def time_to_text(value: datetime | None, what: str) -> str | None:
    """``value`` in UTC as fixed-width ISO 8601 text (so text order is time order).

    Raises:
        InvalidParameterError: ``value`` has no time zone. The catalog stores instants; a
            naive datetime would silently mean a different moment on each machine.
    """
    if value is None:
        return None
    if value.utcoffset() is None:
        raise InvalidParameterError(
            f"{what} {value.isoformat()} has no time zone; the catalog stores times in UTC,"
            " so give an aware datetime (for example with tzinfo=datetime.UTC)"
        )
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def text_to_time(text: str | None) -> datetime | None:
    """The datetime (in UTC) that :func:`time_to_text` wrote."""
    return None if text is None else datetime.fromisoformat(text)


def stored_time(text: str | None, what: str) -> datetime:
    """The aware datetime a column holds; ``what`` names it in the error.

    Raises:
        StorageError: the column holds no time, or one without a time zone (a row edited by
            hand, or written by something else).
    """
    try:
        value = text_to_time(text)
    except ValueError:
        value = None
    if value is None or value.utcoffset() is None:
        raise StorageError(f"the catalog holds {what} {text!r}, which is not a time in UTC")
    return value


def bool_to_int(value: bool | None) -> int | None:
    return None if value is None else int(value)


def int_to_bool(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def to_choice(choices: type[_Choice], value: str, column: str) -> _Choice:
    """The member of ``choices`` stored as ``value``.

    Raises:
        StorageError: the catalog holds a value this blobrep does not know, which happens when
            a newer blobrep wrote it (or someone edited the file by hand).
    """
    try:
        return choices(value)
    except ValueError:
        raise StorageError(
            f"the catalog holds {column} {value!r}, which this blobrep does not know;"
            " was it written by a newer blobrep?"
        ) from None


def optional_choice(choices: type[_Choice], value: str | None, column: str) -> _Choice | None:
    return None if value is None else to_choice(choices, value, column)
