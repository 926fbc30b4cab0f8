"""Galleries and image definitions: list, show, create or update (PUT), PATCH, DELETE.

PUT creates (201) or updates (200) as ARM does; a gallery's location never changes. Bodies are
read bounded and checked field by field (:mod:`blobrep.daemon.bodies`) before any service call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from starlette.responses import Response

from blobrep.core.regions import normalize_region
from blobrep.core.retention import MAX_KEEP_GLOBAL
from blobrep.daemon import arm, bodies
from blobrep.daemon.http import Ask, Reading, create_only, json, page, resource
from blobrep.daemon.operations import wake_reconciler
from blobrep.errors import ImmutableFieldError, ResourceNotFoundError
from blobrep.service import DefinitionFields, queries
from blobrep.service.views import definition_view, gallery_view

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.routing import Route

    from blobrep.service import GalleryService


def routes() -> list[Route]:
    return [
        resource("/galleries", get=Reading(_list_galleries)),
        resource(
            "/galleries/{gallery}",
            get=Reading(_show_gallery),
            put=_put_gallery,
            patch=_patch_gallery,
            delete=_delete_gallery,
        ),
        resource("/galleries/{gallery}/images", get=Reading(_list_definitions)),
        resource(
            "/galleries/{gallery}/images/{image}",
            get=Reading(_show_definition),
            put=_put_definition,
            patch=_patch_definition,
            delete=_delete_definition,
        ),
    ]


async def _list_galleries(request: Request, ask: Ask) -> Response:
    galleries = await ask(queries.list_galleries)
    return page(request, [arm.resource(gallery_view(gallery)) for gallery in galleries])


async def _show_gallery(request: Request, ask: Ask) -> Response:
    name = request.path_params["gallery"]
    gallery = await ask(lambda reads, home, caller: queries.show_gallery(reads, home, caller, name))
    return json(arm.resource(gallery_view(gallery)))


async def _list_definitions(request: Request, ask: Ask) -> Response:
    gallery = request.path_params["gallery"]
    definitions = await ask(
        lambda reads, home, caller: queries.list_definitions(reads, home, caller, gallery)
    )
    return page(request, [arm.resource(definition_view(item)) for item in definitions])


async def _show_definition(request: Request, ask: Ask) -> Response:
    gallery, image = request.path_params["gallery"], request.path_params["image"]
    definition = await ask(
        lambda reads, home, caller: queries.show_definition(reads, home, caller, gallery, image)
    )
    return json(arm.resource(definition_view(definition)))


async def _put_gallery(request: Request, service: GalleryService, caller: str) -> Response:
    """Create the gallery (201), or update the existing one (200); its location never changes."""
    name = request.path_params["gallery"]
    body = await bodies.json_object(request)
    bodies.only(body, {"location", "properties"}, "the body")
    properties = bodies.section(body, "properties")
    bodies.only(properties, {"description"}, "properties")
    location = bodies.text(body, "location", "the body")
    description = bodies.text(properties, "description")
    if create_only(request):
        created = await service.create_gallery(caller, name, location=location, description=description or "")
        return json(arm.resource(gallery_view(created)), 201)
    try:
        existing = await service.show_gallery(caller, name)
    except ResourceNotFoundError:
        created = await service.create_gallery(caller, name, location=location, description=description or "")
        return json(arm.resource(gallery_view(created)), 201)
    if location is not None and normalize_region(location) != existing.location:
        raise ImmutableFieldError(
            f"gallery {name!r} is in {existing.location}; its location cannot change to {location!r}"
        )
    updated = await service.update_gallery(caller, name, description=description)
    return json(arm.resource(gallery_view(updated)))


async def _patch_gallery(request: Request, service: GalleryService, caller: str) -> Response:
    body = await bodies.json_object(request)
    bodies.only(body, {"properties"}, "the body")
    properties = bodies.section(body, "properties")
    bodies.only(properties, {"description"}, "properties")
    updated = await service.update_gallery(
        caller, request.path_params["gallery"], description=bodies.text(properties, "description")
    )
    return json(arm.resource(gallery_view(updated)))


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
    "excludeEndOfLifeFromLatest",
    "retentionPolicy",
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
    retention = _retention(properties)
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
        keep_global=retention[0],
        home_region=retention[1],
        exclude_end_of_life_from_latest=bodies.flag(properties, "excludeEndOfLifeFromLatest", "properties"),
    )


def _retention(properties: dict[str, Any]) -> tuple[int | None, str | None]:
    """``retentionPolicy``'s keep-global count and home region; ``null`` removes the policy
    (as keep-global 0 does), a missing one leaves it as it is."""
    if "retentionPolicy" in properties and properties["retentionPolicy"] is None:
        return 0, None
    policy = bodies.section(properties, "retentionPolicy", "properties")
    bodies.only(policy, {"keepGlobal", "homeRegion"}, "properties.retentionPolicy")
    return (
        bodies.whole(
            policy,
            "keepGlobal",
            "properties.retentionPolicy",
            maximum=MAX_KEEP_GLOBAL,
            meaning="how many of the newest versions stay global; 0 removes the policy",
        ),
        bodies.text(policy, "homeRegion", "properties.retentionPolicy"),
    )


async def _put_definition(request: Request, service: GalleryService, caller: str) -> Response:
    """Create the definition (201), or update the existing one (200)."""
    gallery, name = request.path_params["gallery"], request.path_params["image"]
    fields = _definition_fields(await bodies.json_object(request))
    if create_only(request):
        created = await service.create_definition(caller, gallery, name, fields)
        return json(arm.resource(definition_view(created)), 201)
    try:
        await service.show_definition(caller, gallery, name)
    except ResourceNotFoundError:
        created = await service.create_definition(caller, gallery, name, fields)
        return json(arm.resource(definition_view(created)), 201)
    updated = await service.update_definition(caller, gallery, name, fields)
    wake_reconciler(request)  # a changed retention policy may have grown versions back
    return json(arm.resource(definition_view(updated)))


async def _patch_definition(request: Request, service: GalleryService, caller: str) -> Response:
    fields = _definition_fields(await bodies.json_object(request))
    updated = await service.update_definition(
        caller, request.path_params["gallery"], request.path_params["image"], fields
    )
    wake_reconciler(request)  # a changed retention policy may have grown versions back
    return json(arm.resource(definition_view(updated)))


async def _delete_definition(request: Request, service: GalleryService, caller: str) -> Response:
    await service.delete_definition(caller, request.path_params["gallery"], request.path_params["image"])
    return Response(status_code=204)
