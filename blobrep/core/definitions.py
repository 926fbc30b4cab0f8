"""Validation of galleries and image definitions: identifiers, dates, ranges and updates.

A definition's identity (publisher, offer, SKU), its OS type and state, Hyper-V generation and
architecture describe every version ever published under it; a VM built from version 1.0.0
must boot the same way as one built from 2.0.0. That is why those fields are fixed at creation
and an update may only touch the informational ones (recommended ranges, end of life,
description).

Dates have one spelling in output and storage, ``YYYY-MM-DDTHH:MM:SSZ``, in UTC and to the
second, so that two spellings of one moment never compare as different values.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

from blobrep.core.gallery import Gallery, ImageDefinition, ImageIdentifier, ResourceRange
from blobrep.errors import ImmutableFieldError, InvalidNameError, InvalidParameterError

MAX_PUBLISHER_LENGTH: Final = 128
MAX_OFFER_LENGTH: Final = 64
MAX_SKU_LENGTH: Final = 64
MAX_DESCRIPTION_LENGTH: Final = 2048

_IDENTIFIER_RE = re.compile(r"[A-Za-z0-9._-]+")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_FRACTION_RE = re.compile(r"\.[0-9]+")
_DATETIME_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:[0-9]{2})?",
    re.IGNORECASE,
)
_DATETIME_EXAMPLE = "for example 2027-12-31 or 2027-12-31T00:00:00Z (an offset such as +02:00 also works)"


def _identifier_part(part: str, value: str, limit: int, example: str) -> str:
    rule = f"use 1 to {limit} letters, digits, '.', '_' or '-', not ending with '.', for example {example}"
    if not value:
        raise InvalidNameError(f"the {part} of the image identifier is empty: {rule}")
    if len(value) > limit:
        raise InvalidNameError(
            f"the {part} {value[:20]!r}... of the image identifier is {len(value)} characters long;"
            f" the limit is {limit}"
        )
    if _IDENTIFIER_RE.fullmatch(value) is None or value.endswith("."):
        raise InvalidNameError(f"invalid {part} {value!r} in the image identifier: {rule}")
    return value


def validate_identifier(publisher: str, offer: str, sku: str) -> ImageIdentifier:
    """The identifier of an image definition, each part checked against its pattern and limit.

    Raises:
        InvalidNameError: a part is empty, too long or has a character outside
            ``[A-Za-z0-9._-]`` or ends with '.'; the message says which part.
    """
    return ImageIdentifier(
        _identifier_part("publisher", publisher, MAX_PUBLISHER_LENGTH, "Contoso"),
        _identifier_part("offer", offer, MAX_OFFER_LENGTH, "UbuntuServer"),
        _identifier_part("sku", sku, MAX_SKU_LENGTH, "22_04-lts-gen2"),
    )


def parse_datetime(text: str, what: str) -> datetime:
    """A date or date-time from the command line, as an aware UTC datetime to the second.

    ``YYYY-MM-DD`` means midnight UTC; a time without ``Z`` or an offset is taken as UTC.
    Fractions of a second are dropped because storage keeps whole seconds: the value parsed
    is the value that will be stored.

    Raises:
        InvalidParameterError: ``text`` is neither spelling, or names no real moment
            (``2027-02-30``, an offset beyond 24 hours).
    """
    stripped = text.strip()
    try:
        if _DATE_RE.fullmatch(stripped) is not None:
            value = datetime.fromisoformat(stripped).replace(tzinfo=UTC)
        elif _DATETIME_RE.fullmatch(stripped) is not None:
            # Up to nanoseconds are taken (as other tools write them) and dropped with the rest
            # of the fraction; Python reads at most microseconds.
            value = datetime.fromisoformat(
                _FRACTION_RE.sub(lambda found: found.group()[:7], stripped.upper())
            )
            value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        else:
            raise InvalidParameterError(f"invalid {what} {text!r}: {_DATETIME_EXAMPLE}")
    except (ValueError, OverflowError) as exc:
        reason = "its UTC offset is 24 hours or more" if "offset" in str(exc) else str(exc)
        raise InvalidParameterError(f"invalid {what} {text!r} ({reason}): {_DATETIME_EXAMPLE}") from exc
    return value.replace(microsecond=0)


def format_datetime(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC; a naive value is taken as UTC, as :func:`parse_datetime` does."""
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}Z"


def validate_resource_range(minimum: int | None, maximum: int | None, what: str) -> ResourceRange:
    """A recommended range such as vCPUs or memory; either end may be left open.

    Raises:
        InvalidParameterError: an end is below 1, or the minimum exceeds the maximum.
    """
    for end, value in (("minimum", minimum), ("maximum", maximum)):
        if value is not None and (isinstance(value, bool) or value < 1):
            raise InvalidParameterError(
                f"invalid {end} {what} {value!r}: use a whole number of at least 1, for example 2"
            )
    if minimum is not None and maximum is not None and minimum > maximum:
        raise InvalidParameterError(
            f"the minimum {what} {minimum} is larger than the maximum {maximum}: give a minimum"
            f" no larger than the maximum, for example {maximum} and {minimum}"
        )
    return ResourceRange(minimum, maximum)


def validate_description(text: str) -> str:
    """A description: plain text up to 2048 characters, on one line, tabs allowed.

    Control characters are refused because a description is printed in tables and logs,
    where a newline or an escape sequence would forge or garble the output.

    Raises:
        InvalidParameterError: too long, or holding a control character other than tab.
    """
    if len(text) > MAX_DESCRIPTION_LENGTH:
        raise InvalidParameterError(
            f"description {text[:20]!r}... is {len(text)} characters long; the limit is"
            f" {MAX_DESCRIPTION_LENGTH}: shorten it"
        )
    for position, char in enumerate(text):
        if char < " " and char != "\t":
            raise InvalidParameterError(
                f"description {text[:40]!r} holds the control character {char!r} at position"
                f" {position}: use printable text on one line (tabs are allowed)"
            )
    return text


def _format_identifier(identifier: ImageIdentifier) -> str:
    return f"{identifier.publisher}:{identifier.offer}:{identifier.sku}"


def check_definition_update(old: ImageDefinition, new: ImageDefinition) -> None:
    """Refuse an update that changes what every version of the definition is built on.

    Raises:
        ImmutableFieldError: the gallery, name, identifier, osType, osState, hyperVGeneration
            or architecture differ; the message names the field with its old and new value.
    """
    fixed: tuple[tuple[str, object, object], ...] = (
        ("gallery", old.gallery, new.gallery),
        ("name", old.name, new.name),
        ("identifier", _format_identifier(old.identifier), _format_identifier(new.identifier)),
        ("osType", old.os_type, new.os_type),
        ("osState", old.os_state, new.os_state),
        ("hyperVGeneration", old.hyper_v_generation, new.hyper_v_generation),
        ("architecture", old.architecture, new.architecture),
    )
    for field, before, after in fixed:
        if before != after:
            raise ImmutableFieldError(
                f"cannot change {field} of image definition {old.gallery}/{old.name} from {before} to"
                f" {after}: it is fixed at creation; create a new image definition instead (only"
                " the recommended ranges, end of life and description can be updated)"
            )


def check_gallery_update(old: Gallery, new: Gallery) -> None:
    """Refuse an update of a gallery that changes anything but its description.

    Raises:
        ImmutableFieldError: the name or location differ.
    """
    for field, before, after in (("name", old.name, new.name), ("location", old.location, new.location)):
        if before != after:
            raise ImmutableFieldError(
                f"cannot change {field} of gallery {old.name} from {before} to {after}: it is fixed"
                " at creation; only the description of a gallery can be updated"
            )
