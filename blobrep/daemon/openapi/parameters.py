"""The parameters and response headers of ``/openapi.json``.

Path parameters carry the patterns the service checks names against (a name outside them is a
400) and an example; the examples name the resources of one small home (the fuzz test makes it),
so that they read as one story: gallery1/ubuntu 1.0.0 published, 1.1.0 waiting for its disk,
alice, and bob in the group operators with Reader on gallery1.
"""

from __future__ import annotations

from typing import Final

from blobrep.core.access import Role, RoleAssignment
from blobrep.core.ids import ResourceId
from blobrep.core.principals import MAX_PRINCIPAL_NAME_LENGTH
from blobrep.daemon import sharing
from blobrep.daemon.http import MAX_TOP
from blobrep.daemon.openapi.shapes import COUNT, JSON, STRING


def _path(name: str, pattern: str, example: str, description: str | None = None) -> JSON:
    parameter: JSON = {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": pattern},
        "example": example,
    }
    if description is not None:
        parameter["description"] = description
    return parameter


def _query(name: str, schema: JSON, description: str, example: object = None) -> JSON:
    parameter = {"name": name, "in": "query", "required": False, "schema": schema, "description": description}
    if example is not None:
        parameter["example"] = example
    return parameter


def _header(name: str, description: str, **examples: str) -> JSON:
    """A request header, with named examples (``examples`` keyed by what each shows)."""
    return {
        "name": name,
        "in": "header",
        "required": False,
        "schema": STRING,
        "description": description,
        "examples": {summary: {"value": value} for summary, value in examples.items()},
    }


_NUMBER: Final = r"[0-9]{1,10}\.[0-9]{1,10}\.[0-9]{1,10}"
_PRINCIPAL: Final = f"^[A-Za-z0-9][A-Za-z0-9._@-]{{0,{MAX_PRINCIPAL_NAME_LENGTH - 1}}}$"

PARAMETERS: Final[JSON] = {
    "gallery": _path("gallery", "^[A-Za-z0-9][A-Za-z0-9._]{0,79}$", "gallery1"),
    "image": _path("image", "^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$", "ubuntu"),
    "version": _path("version", f"^(latest|{_NUMBER})$", "1.0.0", "MAJOR.MINOR.PATCH, or `latest`."),
    "versionNumber": _path("version", f"^{_NUMBER}$", "1.1.0", "MAJOR.MINOR.PATCH."),
    "lun": _path("lun", "^[0-9]{1,2}$", "0", "The data disk's logical unit number, 0 to 63."),
    "operation": _path(
        "operation", "^[^/]+$", "3f1c2d4e-0000-4000-8000-000000000000", "From `Azure-AsyncOperation`."
    ),
    "principal": _path("name", _PRINCIPAL, "alice"),
    "group": _path("group", _PRINCIPAL, "operators"),
    "member": _path("member", _PRINCIPAL, "bob"),
    "assignment": _path(
        "name",
        "^[^/]+$",
        sharing.assignment_name(RoleAssignment("bob", Role.READER, ResourceId.parse("/galleries/gallery1"))),
        "A uuid5 of its principal, role and scope (the example: bob, Reader, /galleries/gallery1).",
    ),
    "top": _query(
        "$top", {"type": "integer", "minimum": 1, "maximum": MAX_TOP}, "Items in a page (100 by default).", 2
    ),
    "skipToken": _query(
        "$skipToken",
        {"type": "string", "pattern": "^[0-9]+$"},
        "Where a page starts: copy it from `nextLink`.",
    ),
    "expand": _query(
        "$expand", {"type": "string", "enum": ["ReplicationStatus"]}, "Add `properties.replicationStatus`."
    ),
    "location": _query(
        "location", STRING, "The region to read in (the gallery's by default).", "westcentralus"
    ),
    "scope": _query("scope", STRING, "Only the assignments at exactly this scope."),
    "assignee": _query("assignee", STRING, "Only the assignments of this principal."),
    "range": _header(
        "Range",
        "One byte range; several ranges or a malformed header read the whole disk.",
        firstKiB="bytes=0-1023",
        lastBytes="bytes=-512",
        pastTheEnd="bytes=1099511627776-",
    ),
    "ifNoneMatch": _header("If-None-Match", "`304` when it names the disk's `ETag` (or is `*`).", anyTag="*"),
    "createOnly": _header(
        "If-None-Match",
        "`*`: create only; a resource that exists is a `409` ResourceAlreadyExists and stays as it is.",
        createOnly="*",
    ),
    "ifRange": _header(
        "If-Range", "Honour `Range` only while the disk's `ETag` is this one.", anotherTag='"0000"'
    ),
    "contentDigest": _header(
        "Content-Digest",
        "RFC 9530: the body's `sha-256` or `sha-512`, as `sha-256=:<base64>:`. The body is checked"
        " against it as it arrives; a body that does not match fails with `400` and nothing of it"
        " is kept. A header naming neither algorithm, or malformed, is a `400` before the body is read.",
        empty="sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:",
    ),
}

#: Response headers, each always present where documented.
HEADERS: Final[JSON] = {
    name: {"required": True, "schema": schema, "description": description}
    for name, schema, description in (
        (
            "x-ms-request-id",
            STRING,
            "The request's id in the daemon's log (the client's own if it sent one).",
        ),
        ("WWW-Authenticate", STRING, 'Bearer realm="blobrep".'),
        ("Retry-After", COUNT, "Seconds to wait before asking again."),
        (
            "Azure-AsyncOperation",
            {"type": "string", "format": "uri"},
            "The operation to poll (`GET /operations/{id}`).",
        ),
        ("Location", {"type": "string", "format": "uri"}, "Where the result is, or the new resource."),
        ("ETag", STRING, "The quoted whole-disk digest."),
        ("Accept-Ranges", {"const": "bytes"}, "Single byte ranges are served."),
        ("Content-Length", COUNT, "Bytes in the body."),
        ("Content-Range", STRING, "`bytes first-last/size`, or `bytes */size` on a 416."),
        ("x-blobrep-new-chunks", COUNT, "Chunks the upload wrote that no replica had."),
        ("x-blobrep-written-bytes", COUNT, "Chunk bytes the upload wrote, over every replica."),
    )
}
