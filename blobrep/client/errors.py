"""A daemon's answers turned back into the errors the service would have raised.

The daemon answers a failure with ``{"error": {"code", "message"}}``, the message being the
one the CLI prints for the same failure on a local home, and a status chosen by the error's
class (:func:`blobrep.daemon.arm.error_status`). The client reverses that choice, so that
the CLI prints the same line and exits with the same status whichever way a command ran:

======  ===============================  ===========================================
status  code                             raised here (exit status of the CLI)
======  ===============================  ===========================================
400     any                              :class:`InvalidParameterError` (2)
413     any                              :class:`InvalidParameterError` (2)
401     any                              :class:`UnauthenticatedError` (1)
403     any                              :class:`AccessDeniedError` (1)
404     ``ResourceNotFound``             :class:`ResourceNotFoundError` (1)
409     ``ResourceAlreadyExists``        :class:`AlreadyExistsError` (1)
409     ``ResourceNotReady``             :class:`UnavailableError` (1)
409     ``Conflict`` and others          :class:`PreconditionError` (1)
412     any                              :class:`AlreadyExistsError` (1)
503     any                              :class:`BusyError` (75: retry later)
507     any                              :class:`StorageFullError` (1)
500     ``DataIntegrityError``           :class:`IntegrityError` (1)
5xx     others                           :class:`StorageError` (1)
======  ===============================  ===========================================

What the API never answers for a well-formed call (no route, a method not allowed, a body
that is not an error document) means the endpoint is not a blobrep daemon, or one older than
this client: that, and a daemon that cannot be reached at all, is an :class:`EndpointError`.
"""

from __future__ import annotations

import json
from typing import Final

from blobrep.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    BlobrepError,
    BusyError,
    IntegrityError,
    InvalidParameterError,
    PreconditionError,
    ResourceNotFoundError,
    StorageError,
    StorageFullError,
    UnauthenticatedError,
    UnavailableError,
)

#: The longest piece of a body that is not an error document that a message quotes.
_QUOTED: Final = 200


class EndpointError(BlobrepError):
    """The daemon named by ``--endpoint`` could not be reached (nothing listens there, the
    connection broke, it did not answer in time), or answered outside the API (no such route,
    a body that is not the document the API promises): not a blobrep daemon, or an older one.

    The message names the endpoint and what went wrong; never the token.
    """


def error_for(status: int, code: str, message: str) -> BlobrepError:
    """The error a failure answered with ``status`` and ``{"code": code, "message": message}``
    stands for (see the module's table)."""
    if status in (400, 413):
        return InvalidParameterError(message)
    if status == 401:
        return UnauthenticatedError(message)
    if status == 403:
        return AccessDeniedError(message)
    if status == 404:
        return ResourceNotFoundError(message)
    if status == 409:
        if code == "ResourceAlreadyExists":
            return AlreadyExistsError(message)
        if code == "ResourceNotReady":
            return UnavailableError(message)
        return PreconditionError(message)
    if status == 412:
        return AlreadyExistsError(message)
    if status == 503:
        return BusyError(message)
    if status == 507:
        return StorageFullError(message)
    if status >= 500:
        return IntegrityError(message) if code == "DataIntegrityError" else StorageError(message)
    return EndpointError(message)


def error_from_body(status: int, body: bytes, request: str) -> BlobrepError:
    """The error an answer of ``status`` with ``body`` to ``request`` (``"GET <url>"``) stands for.

    A body that is no ARM error document is the endpoint's own failure, not the call's: the
    message says what came back, cut short.
    """
    found = _error_document(body)
    if found is not None and not _outside_api(status, found[0]):
        return error_for(status, *found)
    said = found[1] if found is not None else _quote(body)
    return EndpointError(f"{request} answered {status}{': ' + said if said else ''}{_hint(status)}")


def _error_document(body: bytes) -> tuple[str, str] | None:
    """``(code, message)`` of an ARM error body, or None if ``body`` is not one."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        return None
    code, message = error.get("code"), error.get("message")
    if not isinstance(code, str) or not isinstance(message, str) or not message:
        return None
    return code, message


def _outside_api(status: int, code: str) -> bool:
    """True for what the API answers only to a request it has no route for."""
    return (status == 404 and code == "NotFound") or status == 405


def _hint(status: int) -> str:
    if status in (404, 405):
        return (
            "; the endpoint does not serve this API: check --endpoint, or upgrade the daemon to this"
            " client's version"
        )
    return ""


def _quote(body: bytes) -> str:
    text = " ".join(body[:_QUOTED].decode("utf-8", "replace").split())
    return text + ("..." if len(body) > _QUOTED else "")
