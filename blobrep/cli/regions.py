"""``blobrep region list|show|add``: the places that hold replicas."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from blobrep.cli import _types
from blobrep.cli._common import call, emit
from blobrep.service.views import region_view

if TYPE_CHECKING:
    from blobrep.service import RegionInfo


def register(commands: Any) -> None:
    parser = commands.add_parser("region", help="list, show and add regions")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="every region of the home").set_defaults(handler=_list)
    show = actions.add_parser("show", help="one region")
    show.add_argument(
        "--name", "-n", type=_types.region, required=True, help="short or display name (westus2, 'West US 2')"
    )
    show.set_defaults(handler=_show)
    add = actions.add_parser(
        "add", help="add a region: a local directory (--path), or an S3 or Azure Blob prefix (--url)"
    )
    add.add_argument(
        "--name", "-n", type=_types.region, required=True, help="short or display name, e.g. 'North Europe'"
    )
    add.add_argument(
        "--path",
        type=_types.directory,
        default=None,
        help="a directory of its own for its replicas, apart from every other region's and the home's"
        " (default: in the home)",
    )
    add.add_argument(
        "--url",
        default=None,
        help="s3://BUCKET/PREFIX or az://CONTAINER/PREFIX: the region's replicas live there, reached with"
        " the AWS_* or AZURE_STORAGE_* environment variables (or --profile); the bucket must exist",
    )
    add.add_argument(
        "--profile",
        default=None,
        help="a [profiles.NAME] table of the home's blobrep.toml with the endpoint and credentials to use"
        " instead of the environment's (with --url)",
    )
    add.set_defaults(handler=_add)


def _row(region: RegionInfo) -> dict[str, Any]:
    view = region_view(region)
    row = {key: view[key] for key in ("name", "displayName", "kind", "replicas")}
    row["location"] = region.url if region.url is not None else view["path"]
    row["reachable"] = {True: "yes", False: f"no: {region.problem}", None: "-"}[region.reachable]
    return row


def _list(args: argparse.Namespace) -> int:
    regions = call(args, lambda service, caller: service.list_regions(caller))
    return emit(args, [region_view(region) for region in regions], [_row(region) for region in regions])


def _show(args: argparse.Namespace) -> int:
    region = call(args, lambda service, caller: service.show_region(caller, args.name))
    return emit(args, region_view(region), [_row(region)])


def _add(args: argparse.Namespace) -> int:
    region = call(
        args,
        lambda service, caller: service.add_region(
            caller, args.name, path=args.path, url=args.url, profile=args.profile
        ),
    )
    return emit(args, region_view(region), [_row(region)])
