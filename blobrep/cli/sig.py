"""``blobrep sig ...``: galleries, and the ``image-definition`` and ``image-version`` groups.

The option names follow ``az sig`` (``--gallery-name/-r``, ``--gallery-image-definition/-i``,
``--gallery-image-version/-e``), so scripts written for it read naturally here.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from blobrep.cli import _ids, _types, sig_versions
from blobrep.cli._common import add_bool, call, definition_option, emit, gallery_option, read
from blobrep.cli.output import end_of_life_cell
from blobrep.core.retention import MAX_KEEP_GLOBAL
from blobrep.service import queries
from blobrep.service.views import definition_view, gallery_view

if TYPE_CHECKING:
    from blobrep.core.gallery import Gallery, ImageDefinition
    from blobrep.service import DefinitionFields, GalleryService


def register(commands: Any) -> None:
    parser = commands.add_parser("sig", help="galleries, image definitions and image versions")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    create = actions.add_parser("create", help="create a gallery (you become its Owner)")
    gallery_option(create)
    create.add_argument(
        "--location", "-l", type=_types.region, default=None, help="home region (default: the first region)"
    )
    create.add_argument("--description", default="", help="free text")
    create.set_defaults(handler=_create)
    actions.add_parser("list", help="galleries you can see").set_defaults(handler=_list)
    show = actions.add_parser("show", help="one gallery (or several, with --ids)")
    _gallery_names(show)
    show.set_defaults(handler=_show)
    update = actions.add_parser("update", help="change a gallery's description")
    _gallery_names(update)
    update.add_argument("--description", default=None)
    update.set_defaults(handler=_update)
    delete = actions.add_parser("delete", help="delete an empty gallery")
    _gallery_names(delete)
    delete.set_defaults(handler=_delete)

    _register_definitions(actions)
    sig_versions.register(actions)


def _gallery_names(parser: argparse.ArgumentParser) -> None:
    gallery_option(parser, required=False)
    _ids.add_ids(parser, _ids.GALLERY)


def _definition_names(parser: argparse.ArgumentParser) -> None:
    gallery_option(parser, required=False)
    definition_option(parser, required=False)
    _ids.add_ids(parser, _ids.DEFINITION)


def _gallery_row(gallery: Gallery) -> dict[str, Any]:
    view = gallery_view(gallery)
    return {key: view[key] for key in ("name", "location", "provisioningState", "description")}


def _create(args: argparse.Namespace) -> int:
    gallery = call(
        args,
        lambda service, caller: service.create_gallery(
            caller, args.gallery, location=args.location, description=args.description
        ),
    )
    return emit(args, gallery_view(gallery), [_gallery_row(gallery)])


def _list(args: argparse.Namespace) -> int:
    galleries = read(args, queries.list_galleries, lambda service, caller: service.list_galleries(caller))
    return emit(args, [gallery_view(gallery) for gallery in galleries], [_gallery_row(g) for g in galleries])


def _show(args: argparse.Namespace) -> int:
    def show(target: _ids.Target) -> Gallery:
        return read(
            args,
            lambda reads, home, caller: queries.show_gallery(reads, home, caller, target.gallery),
            lambda service, caller: service.show_gallery(caller, target.gallery),
        )

    _ids.each(args, _ids.GALLERY, show).emit(args, gallery_view, lambda gallery: [_gallery_row(gallery)])
    return 0


def _update(args: argparse.Namespace) -> int:
    def update(target: _ids.Target) -> Gallery:
        return call(
            args,
            lambda service, caller: service.update_gallery(
                caller, target.gallery, description=args.description
            ),
        )

    _ids.each(args, _ids.GALLERY, update).emit(args, gallery_view, lambda gallery: [_gallery_row(gallery)])
    return 0


def _delete(args: argparse.Namespace) -> int:
    def delete(target: _ids.Target) -> None:
        call(args, lambda service, caller: service.delete_gallery(caller, target.gallery))

    _ids.each(args, _ids.GALLERY, delete).check()
    return 0


# --- image definitions ----------------------------------------------------------------------


def _definition_fields(parser: argparse.ArgumentParser, *, creating: bool) -> None:
    resource = _types.Integer(1, _types.MAX_RESOURCE)
    # On update these are accepted too, so that trying to change one gets the clear
    # "fixed at creation" error instead of an unknown option.
    fixed = "" if creating else " (fixed at creation)"
    parser.add_argument("--publisher", required=creating, help=f"identifier part{fixed}")
    parser.add_argument("--offer", required=creating, help=f"identifier part{fixed}")
    parser.add_argument("--sku", required=creating, help=f"identifier part{fixed}")
    parser.add_argument("--os-type", required=creating, help=f"Linux or Windows{fixed}")
    parser.add_argument("--os-state", default=None, help=f"Generalized (default) or Specialized{fixed}")
    parser.add_argument("--hyper-v-generation", default=None, help=f"V1 (default) or V2{fixed}")
    parser.add_argument("--architecture", default=None, help=f"x64 (default) or Arm64{fixed}")
    parser.add_argument(
        "--minimum-cpu-core", type=resource, default=None, help="recommended vCPUs, lower end"
    )
    parser.add_argument(
        "--maximum-cpu-core", type=resource, default=None, help="recommended vCPUs, upper end"
    )
    parser.add_argument(
        "--minimum-memory", type=resource, default=None, help="recommended memory in GiB, lower end"
    )
    parser.add_argument(
        "--maximum-memory", type=resource, default=None, help="recommended memory in GiB, upper end"
    )
    parser.add_argument("--end-of-life-date", default=None, help="e.g. 2027-12-31 (informational)")
    parser.add_argument("--description", default=None)
    add_bool(
        parser,
        "--exclude-end-of-life-from-latest",
        "'latest' skips versions whose end-of-life date has passed",
    )
    parser.add_argument(
        "--keep-global",
        type=_types.Integer(0, MAX_KEEP_GLOBAL),
        default=None,
        metavar="N",
        help="retention: the N newest complete versions keep every target region; older ones shrink"
        " to the home region with one replica (0 removes the policy)",
    )
    parser.add_argument(
        "--home-region",
        type=_types.region,
        default=None,
        help="retention: where older versions shrink to (default: the gallery's location)",
    )


def _fields(args: argparse.Namespace) -> DefinitionFields:
    from blobrep.service import DefinitionFields

    return DefinitionFields(
        publisher=args.publisher,
        offer=args.offer,
        sku=args.sku,
        os_type=args.os_type,
        os_state=args.os_state,
        hyper_v_generation=args.hyper_v_generation,
        architecture=args.architecture,
        min_vcpus=args.minimum_cpu_core,
        max_vcpus=args.maximum_cpu_core,
        min_memory_gib=args.minimum_memory,
        max_memory_gib=args.maximum_memory,
        end_of_life=args.end_of_life_date,
        description=args.description,
        keep_global=args.keep_global,
        home_region=args.home_region,
        exclude_end_of_life_from_latest=args.exclude_end_of_life_from_latest,
    )


def _register_definitions(actions: Any) -> None:
    parser = actions.add_parser("image-definition", help="image definitions of a gallery")
    group = parser.add_subparsers(dest="definition_action", required=True, metavar="ACTION")
    create = group.add_parser("create", help="create an image definition")
    gallery_option(create)
    definition_option(create)
    _definition_fields(create, creating=True)
    create.set_defaults(handler=_definition_create)
    listing = group.add_parser("list", help="the definitions of a gallery you can see")
    gallery_option(listing)
    listing.set_defaults(handler=_definition_list)
    for action, handler, text in (
        ("show", _definition_show, "one image definition (or several, with --ids)"),
        ("delete", _definition_delete, "delete a definition without versions"),
    ):
        sub = group.add_parser(action, help=text)
        _definition_names(sub)
        sub.set_defaults(handler=handler)
    update = group.add_parser("update", help="change recommended sizes, end of life or description")
    _definition_names(update)
    _definition_fields(update, creating=False)
    update.set_defaults(handler=_definition_update)


def _definition_row(definition: ImageDefinition) -> dict[str, Any]:
    view = definition_view(definition)
    identifier = view["identifier"]
    return {
        "name": view["name"],
        "publisher": identifier["publisher"],
        "offer": identifier["offer"],
        "sku": identifier["sku"],
        "osType": view["osType"],
        "osState": view["osState"],
        "hyperVGeneration": view["hyperVGeneration"],
        "architecture": view["architecture"],
        "endOfLife": end_of_life_cell(definition.end_of_life),
        "retention": ""
        if (policy := definition.retention_policy) is None
        else f"keep {policy.keep_global} global, then {policy.home_region}",
    }


def _show_definition(args: argparse.Namespace, definition: ImageDefinition) -> int:
    return emit(args, definition_view(definition), [_definition_row(definition)])


def _definition_rows(definition: ImageDefinition) -> list[dict[str, Any]]:
    return [_definition_row(definition)]


def _definition_create(args: argparse.Namespace) -> int:
    definition = call(
        args,
        lambda service, caller: service.create_definition(
            caller, args.gallery, args.definition, _fields(args)
        ),
    )
    return _show_definition(args, definition)


def _definition_list(args: argparse.Namespace) -> int:
    definitions = read(
        args,
        lambda reads, home, caller: queries.list_definitions(reads, home, caller, args.gallery),
        lambda service, caller: service.list_definitions(caller, args.gallery),
    )
    return emit(
        args, [definition_view(item) for item in definitions], [_definition_row(item) for item in definitions]
    )


def _definition_show(args: argparse.Namespace) -> int:
    def show(target: _ids.Target) -> ImageDefinition:
        return read(
            args,
            lambda reads, home, caller: queries.show_definition(
                reads, home, caller, target.gallery, target.definition
            ),
            lambda service, caller: service.show_definition(caller, target.gallery, target.definition),
        )

    _ids.each(args, _ids.DEFINITION, show).emit(args, definition_view, _definition_rows)
    return 0


def _definition_update(args: argparse.Namespace) -> int:
    def update(target: _ids.Target) -> ImageDefinition:
        async def job(service: GalleryService, caller: str) -> ImageDefinition:
            updated = await service.update_definition(
                caller, target.gallery, target.definition, _fields(args)
            )
            await sig_versions.replicate_grown_back(args, service, caller, target.gallery, target.definition)
            return updated

        return call(args, job)

    _ids.each(args, _ids.DEFINITION, update).emit(args, definition_view, _definition_rows)
    return 0


def _definition_delete(args: argparse.Namespace) -> int:
    def delete(target: _ids.Target) -> None:
        call(
            args, lambda service, caller: service.delete_definition(caller, target.gallery, target.definition)
        )

    _ids.each(args, _ids.DEFINITION, delete).check()
    return 0
