"""The shapes every part of ``/openapi.json`` repeats, as small functions.

Schemas: a reference to a component, a field that may be null, a closed object (the daemon
refuses unknown fields), an enumeration read from the enum the daemon prints, ARM's resource
envelope and a page of a list. Responses and operations: an answer with its always-present
headers (the request id on every one), the error responses by status, an operation (bearer
token unless public, with the failures every authenticated route may give), a paged list.
"""

from __future__ import annotations

import copy
import enum
from typing import Any, Final

from blobrep.daemon import bodies

JSON = dict[str, Any]

STRING: Final[JSON] = {"type": "string"}
WHEN: Final[JSON] = {"type": ["string", "null"], "format": "date-time"}
COUNT: Final[JSON] = {"type": "integer", "minimum": 0}


def ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: JSON) -> JSON:
    """``schema`` or null: what the daemon reads as "not given"."""
    kind = schema.get("type")
    if isinstance(kind, str) and "enum" not in schema:
        return {**schema, "type": [kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def closed(properties: JSON, *required: str) -> JSON:
    """An object with exactly these fields (``required`` among them): the daemon refuses others."""
    schema: JSON = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


def choice(values: type[enum.StrEnum]) -> JSON:
    return {"type": "string", "enum": [member.value for member in values]}


def arm_resource(kind: str, properties: JSON, *, location: JSON | None = STRING) -> JSON:
    """ARM's envelope: identity (with ``location`` for the gallery resources) and ``properties``."""
    identity: JSON = {"id": STRING, "name": STRING, "type": {"const": kind}}
    if location is not None:
        identity["location"] = location
    return closed({**identity, "properties": properties}, *identity, "properties")


#: Every failure a route can answer, by status: its meaning, and the headers it always carries.
FAILURES: Final[dict[int, tuple[str, tuple[str, ...]]]] = {
    400: ("InvalidParameter: a malformed name, query parameter or body; the message names it.", ()),
    401: (
        "AuthenticationFailed: no `Authorization: Bearer` header, or a token that is malformed,"
        " unknown, expired or revoked.",
        ("WWW-Authenticate",),
    ),
    403: ("AuthorizationFailed: the principal lacks the role; the message is the one the CLI prints.", ()),
    404: ("ResourceNotFound: nothing of that name (or NotFound: no such route).", ()),
    409: (
        "ResourceAlreadyExists, Conflict (the state forbids the call as asked) or ResourceNotReady"
        " (the version cannot be served there yet).",
        (),
    ),
    413: (f"RequestEntityTooLarge: a JSON body longer than {bodies.MAX_BODY} bytes.", ()),
    412: (
        "PreconditionFailed: an If-Match that cannot hold (the resources here carry no entity tag;"
        " `If-Match: *` is taken on PATCH and DELETE).",
        (),
    ),
    415: (
        "UnsupportedMediaType: a disk sent in a content coding (`Content-Encoding: gzip`) or a"
        " transfer coding other than `chunked`; send the disk's own bytes.",
        (),
    ),
    500: ("InternalError or DataIntegrityError: a store or the catalog failed; the message says which.", ()),
    503: (
        "ServiceBusy: another operation holds what this one needs; or ServiceUnavailable: the"
        " daemon is stopping and cut the request short. Retry after `Retry-After`.",
        ("Retry-After",),
    ),
    507: ("InsufficientStorage: a store has no space left.", ()),
}
#: What every authenticated operation may answer besides its own outcomes.
AUTHENTICATED: Final = (401, 403, 500, 503)
#: What a write adds: a bounded JSON body, stores that may be full, an If-Match not honoured.
WRITES: Final = (400, 404, 412, 413, 507)
#: What a DELETE may answer besides the authenticated failures.
DELETES: Final = (400, 404, 409, 412, 507)


def answer(
    description: str, schema: JSON | None = None, *headers: str, media: str = "application/json"
) -> JSON:
    """A response: its body's schema (none for an empty body) and the headers it always carries;
    every answer carries the request id."""
    response: JSON = {
        "description": description,
        "headers": {name: {"$ref": f"#/components/headers/{name}"} for name in ("x-ms-request-id", *headers)},
    }
    if schema is not None:
        response["content"] = {media: {"schema": schema}}
    return response


def failures(*statuses: int, body: bool = True) -> JSON:
    """The error responses for ``statuses``, each ``{"error": {"code", "message"}}`` (no body
    for a ``HEAD``, which answers the same status without it)."""
    return {
        str(status): answer(FAILURES[status][0], ref("Error") if body else None, *FAILURES[status][1])
        for status in sorted(set(statuses))
    }


def page_of(item: str) -> JSON:
    """A page of a list, ARM's way: ``$top`` items after ``$skipToken``, ``nextLink`` to the rest."""
    next_link = {"type": ["string", "null"], "description": "The next page; null on the last."}
    items = {"type": "array", "items": ref(item)}
    return closed({"value": items, "nextLink": next_link}, "value", "nextLink")


def operation(
    identifier: str,
    summary: str,
    responses: JSON,
    *,
    tag: str,
    parameters: tuple[str, ...] = (),
    body: str | None = None,
    body_required: bool = False,
    description: str | None = None,
    public: bool = False,
) -> JSON:
    """One operation: authenticated (401, 403, 500, 503 added) unless ``public``; ``body`` names a
    JSON request body schema of :data:`BODIES`."""
    documented: JSON = {"operationId": identifier, "summary": summary, "tags": [tag]}
    if description is not None:
        documented["description"] = description
    if parameters:
        documented["parameters"] = [{"$ref": f"#/components/parameters/{name}"} for name in parameters]
    if body is not None:
        documented["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": ref(body)}},
        }
    if public:
        documented["security"] = []
        documented["responses"] = responses
    else:
        documented["responses"] = {**failures(*AUTHENTICATED), **responses}
    return documented


def listing(
    identifier: str, summary: str, item: str, tag: str, *parameters: str, extra: JSON | None = None
) -> JSON:
    """A GET of a list, paged with ``$top`` and ``$skipToken``."""
    responses = {
        "200": answer(f"A page of {summary.lower()}.", page_of(item)),
        **failures(400),
        **(extra or {}),
    }
    return operation(
        identifier,
        f"List {summary.lower()}",
        responses,
        tag=tag,
        parameters=(*parameters, "top", "skipToken"),
    )


def with_head(paths: JSON) -> JSON:
    """``paths`` with a ``HEAD`` beside every ``GET`` that has none of its own: the daemon answers
    it as the ``GET``, headers and status alike, without the body."""
    for item in paths.values():
        if "get" in item and "head" not in item:
            head = copy.deepcopy(item["get"])
            head["operationId"] += "_Head"
            head["summary"] += " (headers only)"
            for response in head["responses"].values():
                response.pop("content", None)
            item["head"] = head
    return paths


def created_or_updated(item: str, *headers: str) -> JSON:
    return {
        "200": answer(f"The {item} was updated.", ref(item), *headers),
        "201": answer(f"The {item} was created.", ref(item), *headers),
    }


def deleted(what: str) -> JSON:
    return {"204": answer(f"The {what} is gone.")}
