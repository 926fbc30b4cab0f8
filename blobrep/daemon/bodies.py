"""Request bodies: bounded, parsed and checked field by field before any service call.

A body is input like any other (hostile or mistaken): it is read up to :data:`MAX_BODY` bytes
and no further, must be one JSON object, and each field is checked for its type here, so that
what reaches the service is what its signature promises and every mistake is a 400 naming the
field.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from blobrep.errors import InvalidParameterError

if TYPE_CHECKING:
    from starlette.requests import Request

#: The largest metadata body accepted; a resource description is a few hundred bytes.
MAX_BODY: Final = 64 * 1024

#: The largest whole number a body may give (counts, sizes in GiB): far above any real one,
#: and below what the catalog can store, so that no number reaches it that it would refuse.
MAX_WHOLE: Final = 2**31 - 1


class BodyTooLargeError(InvalidParameterError):
    """A request body longer than :data:`MAX_BODY`; answered with 413."""


class PreconditionFailedError(InvalidParameterError):
    """A conditional header (``If-Match``) the request cannot meet; answered with 412."""


class UnsupportedCodingError(InvalidParameterError):
    """A disk's body sent in a content or transfer coding (gzip, ...); answered with 415."""


async def json_object(request: Request) -> dict[str, Any]:
    """The request's body as a JSON object, read no further than :data:`MAX_BODY` bytes.

    Raises:
        BodyTooLargeError: the body is longer.
        InvalidParameterError: it is not UTF-8 JSON, or not an object.
    """
    received = bytearray()
    async for piece in request.stream():
        received += piece
        if len(received) > MAX_BODY:
            raise BodyTooLargeError(f"the request body is longer than {MAX_BODY} bytes")
    if not received:
        return {}
    try:
        document = json.loads(received.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidParameterError(f"the request body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidParameterError(f"the request body is a JSON {type(document).__name__}, not an object")
    return document


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise InvalidParameterError(f"the request body names {key!r} twice")
        found[key] = value
    return found


def section(document: dict[str, Any], key: str, where: str = "the body") -> dict[str, Any]:
    """The object at ``key`` (empty if absent)."""
    value = document.get(key, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParameterError(f"{key!r} in {where} must be an object")
    return value


def text(document: dict[str, Any], key: str, where: str = "properties") -> str | None:
    """The string at ``key``, or None if absent or null."""
    value = document.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidParameterError(f"{key!r} in {where} must be a string, not {json.dumps(value)[:40]}")
    return value


def whole(
    document: dict[str, Any], key: str, where: str, *, maximum: int = MAX_WHOLE, meaning: str = ""
) -> int | None:
    """The whole number at ``key`` from 0 to ``maximum``, or None if absent or null (``true`` is
    not a number); ``meaning`` says what the range means, in the error."""
    value = document.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameterError(
            f"{key!r} in {where} must be a whole number, not {json.dumps(value)[:40]}"
        )
    if not 0 <= value <= maximum:
        said = f" ({meaning})" if meaning else ""
        raise InvalidParameterError(
            f"{key!r} in {where} must be from 0 to {maximum}{said}, not {value}"[:300]
        )
    return value


def only(document: dict[str, Any], allowed: set[str], where: str) -> None:
    """Refuse any key of ``document`` outside ``allowed`` (a typo must not pass silently)."""
    unknown = sorted(set(document) - allowed)
    if unknown:
        raise InvalidParameterError(
            f"unknown field(s) {', '.join(map(repr, unknown))} in {where};"
            f" known: {', '.join(sorted(allowed))}"
        )


def flag(document: dict[str, Any], key: str, where: str) -> bool | None:
    """The boolean at ``key``, or None if absent or null (``1`` is not a boolean)."""
    value = document.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise InvalidParameterError(f"{key!r} in {where} must be true or false, not {json.dumps(value)[:40]}")
    return value
