"""``GET /openapi.json``: the daemon's API as an OpenAPI 3.1 document, written by hand.

The document is the contract clients are written against, so it is written, not derived from
the routes: a route that drifts from it is a bug the tests catch (every route of the application
is in the document with the same methods and every documented operation is a route; a
schema-driven fuzz test checks that each answer's status, headers and body match it). Like
``/livez``, it is served without a token.

* :mod:`~blobrep.daemon.openapi.shapes`: the shapes every operation repeats (ARM's resource
  envelope, a page of a list, the error responses, an authenticated operation);
* :mod:`~blobrep.daemon.openapi.schemas`: the resources the daemon answers, the bodies it reads;
* :mod:`~blobrep.daemon.openapi.parameters`: path, query and header parameters, response headers;
* :mod:`~blobrep.daemon.openapi.galleries`, :mod:`~blobrep.daemon.openapi.versions`,
  :mod:`~blobrep.daemon.openapi.sharing`: the paths, a module per face of the API.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from starlette.responses import Response
from starlette.routing import Route

from blobrep import __version__
from blobrep.daemon.openapi.galleries import galleries, operability
from blobrep.daemon.openapi.parameters import HEADERS, PARAMETERS
from blobrep.daemon.openapi.schemas import BODIES, RESOURCES
from blobrep.daemon.openapi.shapes import with_head
from blobrep.daemon.openapi.sharing import sharing
from blobrep.daemon.openapi.versions import UPLOAD_FLOW, operations, versions

if TYPE_CHECKING:
    from starlette.requests import Request

    from blobrep.daemon.openapi.shapes import JSON

__all__ = ["document", "routes"]


def routes() -> list[Route]:
    served = json.dumps(document(), separators=(",", ":")).encode()

    async def openapi(request: Request) -> Response:
        return Response(served, media_type="application/json")

    return [Route("/openapi.json", openapi, methods=["GET"])]


def document() -> JSON:
    """The whole OpenAPI 3.1 document (a new dict on every call)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "blobrep",
            "version": __version__,
            "description": (
                "VM-image galleries (galleries, image definitions, image versions) in the shape of"
                " Azure Resource Manager's Compute Gallery API, under blobrep's own resource ids."
                " Every route but `/livez`, `/readyz`, `/metrics` and `/openapi.json` needs"
                " `Authorization: Bearer <token>` (`blobrep token create --principal P`). Lists"
                ' are `{"value": [...], "nextLink"}`; errors are `{"error": {"code",'
                ' "message"}}` with the message the CLI prints for the same failure; `latest`'
                " works wherever a version name does.\n\n" + UPLOAD_FLOW
            ),
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "security": [{"bearer": []}],
        "paths": with_head({**operability(), **galleries(), **versions(), **operations(), **sharing()}),
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token of `blobrep token create` (`brp_tok_...`), naming the caller.",
                }
            },
            "schemas": {**RESOURCES, **BODIES},
            "parameters": PARAMETERS,
            "headers": HEADERS,
        },
    }
