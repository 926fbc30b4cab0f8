"""ARM shapes: resources ``{id, name, type, location, properties}`` and error bodies.

The service's views (:mod:`blobrep.service.views`) are the flat documents ``az`` prints; ARM's
REST API nests everything but the identity under ``properties``. Errors are
``{"error": {"code", "message"}}`` with the message the CLI prints for the same failure, and
the status a client acts on: 4xx for what the caller can fix, 503 with ``Retry-After`` for
what will pass, 5xx for what the server could not do.
"""

from __future__ import annotations

from typing import Any, Final

from blobrep.daemon.bodies import BodyTooLargeError, PreconditionFailedError, UnsupportedCodingError
from blobrep.errors import (
    AccessDeniedError,
    AlreadyExistsError,
    BlobrepError,
    ConflictError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    StorageFullError,
    UnauthenticatedError,
    UnavailableError,
)

JSON = dict[str, Any]

#: The resource type of each kind of view, under blobrep's own namespace.
TYPES: Final = {
    "gallery": "blobrep/galleries",
    "imageDefinition": "blobrep/galleries/images",
    "imageVersion": "blobrep/galleries/images/versions",
}

#: Seconds a client should wait before retrying a retryable failure.
RETRY_AFTER_SECONDS: Final = 5


def resource(view: JSON) -> JSON:
    """``view`` (a gallery, definition or version view) as an ARM resource."""
    properties = dict(view)
    identity = {key: properties.pop(key, None) for key in ("id", "name", "type", "location")}
    identity["type"] = TYPES.get(str(identity["type"]), identity["type"])
    if properties.get("replicationStatus") is None:
        properties.pop("replicationStatus", None)
    return {**identity, "properties": properties}


def listing(items: list[JSON], next_link: str | None) -> JSON:
    """A page of a list: ``{"value": [...], "nextLink": ...}`` (``nextLink`` null on the last)."""
    return {"value": items, "nextLink": next_link}


def error_status(exc: BlobrepError) -> tuple[int, str]:
    """The HTTP status and ARM error code for ``exc``."""
    if isinstance(exc, UnauthenticatedError):
        return 401, "AuthenticationFailed"
    if isinstance(exc, AccessDeniedError):
        return 403, "AuthorizationFailed"
    if isinstance(exc, BodyTooLargeError):
        return 413, "RequestEntityTooLarge"
    if isinstance(exc, UnsupportedCodingError):
        return 415, "UnsupportedMediaType"
    if isinstance(exc, PreconditionFailedError):
        return 412, "PreconditionFailed"
    if isinstance(exc, InvalidInputError):
        return 400, "InvalidParameter"
    if isinstance(exc, NotFoundError):
        return 404, "ResourceNotFound"
    if isinstance(exc, AlreadyExistsError):
        return 409, "ResourceAlreadyExists"
    if isinstance(exc, ConflictError):
        return 409, "Conflict"
    if exc.retryable:
        return 503, "ServiceBusy"
    if isinstance(exc, UnavailableError):
        return 409, "ResourceNotReady"
    if isinstance(exc, StorageFullError):
        return 507, "InsufficientStorage"
    if isinstance(exc, IntegrityError):
        return 500, "DataIntegrityError"
    return 500, "InternalError"


def error_body(code: str, message: str) -> JSON:
    return {"error": {"code": code, "message": message}}
