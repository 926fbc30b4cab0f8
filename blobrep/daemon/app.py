"""The ASGI application: routes, the caller of each request, ARM bodies and errors.

Every route but ``/livez`` and ``/readyz`` needs ``Authorization: Bearer <token>`` (tokens are
made with ``blobrep token create``); the principal the token belongs to is the caller of the
service call, so the same roles decide over HTTP as on the command line. A request without a
valid token gets 401 with ``WWW-Authenticate``; one whose principal lacks the role, 403 with
the message the CLI prints.

Lists page ARM's way: ``$top`` items (default 100, at most 1000) and a ``nextLink`` carrying
``$skipToken`` while more remain.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from blobrep.core.regions import normalize_region
from blobrep.daemon import arm, bodies
from blobrep.errors import (
    BlobrepError,
    ImmutableFieldError,
    InvalidParameterError,
    ResourceNotFoundError,
    UnauthenticatedError,
)
from blobrep.service import DefinitionFields, GalleryService
from blobrep.service.views import definition_view, gallery_view, version_view

if TYPE_CHECKING:
    from pathlib import Path

    from starlette.requests import Request

    from blobrep.service import StoreWrapper

#: Items in a page when ``$top`` is not given, and the most a page may hold.
DEFAULT_TOP: Final = 100
MAX_TOP: Final = 1000

Handler = Callable[["Request", GalleryService, str], Awaitable[Response]]


def create_app(home: Path, *, wrap_store: StoreWrapper | None = None) -> Starlette:
    """The daemon's application over the home ``home``; the service opens in its lifespan."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with await GalleryService.open(home, wrap_store=wrap_store) as service:
            app.state.service = service
            yield

    routes = [
        Route("/livez", _livez),
        Route("/readyz", _readyz),
        Route("/galleries", _authenticated(_list_galleries)),
        _resource(
            "/galleries/{gallery}",
            get=_show_gallery,
            put=_put_gallery,
            patch=_patch_gallery,
            delete=_delete_gallery,
        ),
        Route("/galleries/{gallery}/images", _authenticated(_list_definitions)),
        _resource(
            "/galleries/{gallery}/images/{image}",
            get=_show_definition,
            put=_put_definition,
            patch=_patch_definition,
            delete=_delete_definition,
        ),
        Route("/galleries/{gallery}/images/{image}/versions", _authenticated(_list_versions)),
        Route("/galleries/{gallery}/images/{image}/versions/{version}", _authenticated(_show_version)),
    ]
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: _http_error})


# --- plumbing -----------------------------------------------------------------------------------


def _json(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(document, status_code=status, headers=headers)


def _failure(exc: BlobrepError) -> Response:
    status, code = arm.error_status(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, UnauthenticatedError):
        headers["WWW-Authenticate"] = 'Bearer realm="blobrep"'
    if exc.retryable:
        headers["Retry-After"] = str(arm.RETRY_AFTER_SECONDS)
    return _json(arm.error_body(code, " ".join(str(exc).split())), status, headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405 in ARM's error shape."""
    assert isinstance(exc, HTTPException)
    codes = {404: "NotFound", 405: "MethodNotAllowed"}
    message = (
        f"no route {request.url.path}"
        if exc.status_code == 404
        else f"{request.method} is not allowed on {request.url.path}"
    )
    return _json(arm.error_body(codes.get(exc.status_code, "BadRequest"), message), exc.status_code)


def _authenticated(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """``handler`` called with the service and the principal the bearer token names; every
    blobrep error becomes its ARM error response."""

    async def endpoint(request: Request) -> Response:
        service: GalleryService = request.app.state.service
        try:
            caller = await service.authenticate(_bearer(request))
            return await handler(request, service, caller)
        except BlobrepError as exc:
            return _failure(exc)

    return endpoint


def _resource(path: str, **methods: Handler) -> Route:
    """One route for a resource's methods (``get``, ``put``, ``patch``, ``delete``)."""
    endpoints = {method.upper(): _authenticated(handler) for method, handler in methods.items()}

    async def dispatch(request: Request) -> Response:
        return await endpoints[request.method](request)

    return Route(path, dispatch, methods=list(endpoints))


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization")
    if header is None:
        raise UnauthenticatedError("no Authorization header: send 'Authorization: Bearer <token>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthenticatedError("the Authorization header is not 'Bearer <token>'")
    return token.strip()


def _page(request: Request, items: Sequence[arm.JSON]) -> Response:
    """One page of ``items`` after ``$skipToken``, ``$top`` long, with the next page's link."""
    top = _whole(request, "$top", DEFAULT_TOP, 1, MAX_TOP)
    start = _whole(request, "$skipToken", 0, 0, len(items))
    end = start + top
    next_link = None
    if end < len(items):
        query = {key: value for key, value in request.query_params.items() if key != "$skipToken"}
        query["$skipToken"] = str(end)
        next_link = str(request.url.replace_query_params(**query))
    return _json(arm.listing(list(items[start:end]), next_link))


def _whole(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise InvalidParameterError(f"{name}={text!r} is not a whole number from {low} to {high}")
    return int(text)


def _expanded(request: Request) -> bool:
    expand = request.query_params.get("$expand")
    if expand is None:
        return False
    if expand.lower() != "replicationstatus":
        raise InvalidParameterError(
            f"$expand={expand!r} is not known: the one expansion is ReplicationStatus"
        )
    return True


# --- health ---------------------------------------------------------------------------------


async def _livez(request: Request) -> Response:
    return _json({"status": "ok"})


async def _readyz(request: Request) -> Response:
    """Ready: the catalog is open and every region's storage can be reached."""
    service: GalleryService = request.app.state.service
    try:
        problems = await service.unready_regions()
    except BlobrepError as exc:
        return _json({"status": "unavailable", "error": " ".join(str(exc).split())}, 503)
    if problems:
        return _json({"status": "unavailable", "regions": problems}, 503)
    return _json({"status": "ok"})


# --- galleries, definitions, versions ------------------------------------------------------


async def _list_galleries(request: Request, service: GalleryService, caller: str) -> Response:
    galleries = await service.list_galleries(caller)
    return _page(request, [arm.resource(gallery_view(gallery)) for gallery in galleries])


async def _show_gallery(request: Request, service: GalleryService, caller: str) -> Response:
    gallery = await service.show_gallery(caller, request.path_params["gallery"])
    return _json(arm.resource(gallery_view(gallery)))


async def _list_definitions(request: Request, service: GalleryService, caller: str) -> Response:
    definitions = await service.list_definitions(caller, request.path_params["gallery"])
    return _page(request, [arm.resource(definition_view(item)) for item in definitions])


async def _show_definition(request: Request, service: GalleryService, caller: str) -> Response:
    params = request.path_params
    definition = await service.show_definition(caller, params["gallery"], params["image"])
    return _json(arm.resource(definition_view(definition)))


async def _list_versions(request: Request, service: GalleryService, caller: str) -> Response:
    params = request.path_params
    expand = _expanded(request)
    versions = await service.list_versions(caller, params["gallery"], params["image"])
    return _page(request, [arm.resource(version_view(v, expand_replication=expand)) for v in versions])


async def _show_version(request: Request, service: GalleryService, caller: str) -> Response:
    params = request.path_params
    expand = _expanded(request)
    version = await service.show_version(
        caller,
        params["gallery"],
        params["image"],
        params["version"],
        location=request.query_params.get("location"),
    )
    return _json(arm.resource(version_view(version, expand_replication=expand)))


# --- writes: galleries and definitions ----------------------------------------------------------


async def _put_gallery(request: Request, service: GalleryService, caller: str) -> Response:
    """Create the gallery (201), or update the existing one (200); its location never changes."""
    name = request.path_params["gallery"]
    body = await bodies.json_object(request)
    bodies.only(body, {"location", "properties"}, "the body")
    properties = bodies.section(body, "properties")
    bodies.only(properties, {"description"}, "properties")
    location = bodies.text(body, "location", "the body")
    description = bodies.text(properties, "description")
    try:
        existing = await service.show_gallery(caller, name)
    except ResourceNotFoundError:
        created = await service.create_gallery(caller, name, location=location, description=description or "")
        return _json(arm.resource(gallery_view(created)), 201)
    if location is not None and normalize_region(location) != existing.location:
        raise ImmutableFieldError(
            f"gallery {name!r} is in {existing.location}; its location cannot change to {location!r}"
        )
    updated = await service.update_gallery(caller, name, description=description)
    return _json(arm.resource(gallery_view(updated)))


async def _patch_gallery(request: Request, service: GalleryService, caller: str) -> Response:
    body = await bodies.json_object(request)
    bodies.only(body, {"properties"}, "the body")
    properties = bodies.section(body, "properties")
    bodies.only(properties, {"description"}, "properties")
    updated = await service.update_gallery(
        caller, request.path_params["gallery"], description=bodies.text(properties, "description")
    )
    return _json(arm.resource(gallery_view(updated)))


async def _delete_gallery(request: Request, service: GalleryService, caller: str) -> Response:
    await service.delete_gallery(caller, request.path_params["gallery"])
    return Response(status_code=204)


_DEFINITION_PROPERTIES: Final = {
    "identifier",
    "osType",
    "osState",
    "hyperVGeneration",
    "architecture",
    "recommended",
    "endOfLifeDate",
    "description",
}


def _definition_fields(body: dict[str, Any]) -> DefinitionFields:
    """The fields an image definition's body gives, checked for their JSON types."""
    bodies.only(body, {"location", "properties"}, "the body")
    properties = bodies.section(body, "properties")
    bodies.only(properties, _DEFINITION_PROPERTIES, "properties")
    identifier = bodies.section(properties, "identifier", "properties")
    bodies.only(identifier, {"publisher", "offer", "sku"}, "properties.identifier")
    recommended = bodies.section(properties, "recommended", "properties")
    bodies.only(recommended, {"vCPUs", "memory"}, "properties.recommended")
    vcpus = bodies.section(recommended, "vCPUs", "properties.recommended")
    memory = bodies.section(recommended, "memory", "properties.recommended")
    for name, limits in (("vCPUs", vcpus), ("memory", memory)):
        bodies.only(limits, {"min", "max"}, f"properties.recommended.{name}")
    return DefinitionFields(
        publisher=bodies.text(identifier, "publisher", "properties.identifier"),
        offer=bodies.text(identifier, "offer", "properties.identifier"),
        sku=bodies.text(identifier, "sku", "properties.identifier"),
        os_type=bodies.text(properties, "osType"),
        os_state=bodies.text(properties, "osState"),
        hyper_v_generation=bodies.text(properties, "hyperVGeneration"),
        architecture=bodies.text(properties, "architecture"),
        min_vcpus=bodies.whole(vcpus, "min", "properties.recommended.vCPUs"),
        max_vcpus=bodies.whole(vcpus, "max", "properties.recommended.vCPUs"),
        min_memory_gib=bodies.whole(memory, "min", "properties.recommended.memory"),
        max_memory_gib=bodies.whole(memory, "max", "properties.recommended.memory"),
        end_of_life=bodies.text(properties, "endOfLifeDate"),
        description=bodies.text(properties, "description"),
    )


async def _put_definition(request: Request, service: GalleryService, caller: str) -> Response:
    """Create the definition (201), or update the existing one (200)."""
    gallery, name = request.path_params["gallery"], request.path_params["image"]
    fields = _definition_fields(await bodies.json_object(request))
    try:
        await service.show_definition(caller, gallery, name)
    except ResourceNotFoundError:
        created = await service.create_definition(caller, gallery, name, fields)
        return _json(arm.resource(definition_view(created)), 201)
    updated = await service.update_definition(caller, gallery, name, fields)
    return _json(arm.resource(definition_view(updated)))


async def _patch_definition(request: Request, service: GalleryService, caller: str) -> Response:
    fields = _definition_fields(await bodies.json_object(request))
    updated = await service.update_definition(
        caller, request.path_params["gallery"], request.path_params["image"], fields
    )
    return _json(arm.resource(definition_view(updated)))


async def _delete_definition(request: Request, service: GalleryService, caller: str) -> Response:
    await service.delete_definition(caller, request.path_params["gallery"], request.path_params["image"])
    return Response(status_code=204)
