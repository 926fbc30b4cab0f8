"""``blobrep sig image-version create|list|show|update|delete``."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from blobrep.cli import _ids, _types, sig_version_wait
from blobrep.cli._common import add_bool, call, definition_option, emit, gallery_option, read
from blobrep.cli.data_disks import add_data_disk_option, data_disk_sources
from blobrep.cli.output import end_of_life_cell
from blobrep.cli.progress import ProgressBar, RegionBars
from blobrep.core.gallery import AggregatedState, GalleryImageVersion, ReplicationState
from blobrep.core.regions import normalize_region
from blobrep.core.units import format_size
from blobrep.service import queries
from blobrep.service.views import version_view

if TYPE_CHECKING:
    from blobrep.engine.publish import PublishFigures
    from blobrep.service import GalleryService, VersionOptions

EXPAND_CHOICES = ("ReplicationStatus",)


def register(actions: Any) -> None:
    parser = actions.add_parser("image-version", help="image versions of a definition")
    group = parser.add_subparsers(dest="version_action", required=True, metavar="ACTION")

    create = group.add_parser("create", help="publish a file, or another version's disk, as a version")
    _names(create)
    # One of the two is needed; the command says so (argparse would refuse a required group
    # before it looked at any other option).
    disk = create.add_mutually_exclusive_group()
    disk.add_argument(
        "--source",
        type=_types.source_file,
        help="the raw or VHD image file, or - to read it from standard input (a pipe)",
    )
    disk.add_argument(
        "--image-version",
        default=None,
        metavar="ID",
        help="the id of a version whose disk to copy, /galleries/G/images/I/versions/X.Y.Z",
    )
    add_data_disk_option(create)
    create.add_argument(
        "--location", "-l", type=_types.region, default=None, help="source region (default: the gallery's)"
    )
    _profile_options(create)
    _no_wait(create)
    create.set_defaults(handler=_create)

    listing = group.add_parser("list", help="the versions of a definition, oldest first")
    gallery_option(listing)
    definition_option(listing)
    listing.set_defaults(handler=_list)

    show = group.add_parser("show", help="one version, or 'latest' in a region (or several, with --ids)")
    _names(show, latest=True, ids=True)
    show.add_argument(
        "--location", "-l", type=_types.region, default=None, help="region that 'latest' resolves in"
    )
    show.add_argument("--expand", choices=EXPAND_CHOICES, default=None, help="add ReplicationStatus")
    show.set_defaults(handler=_show)

    update = group.add_parser("update", help="change target regions, replica counts, flags")
    _names(update, ids=True)
    _profile_options(update)
    _no_wait(update)
    update.set_defaults(handler=_update)

    sig_version_wait.register(group)

    delete = group.add_parser("delete", help="delete a version from every region")
    _names(delete, ids=True)
    delete.set_defaults(handler=_delete)


def _names(parser: argparse.ArgumentParser, *, latest: bool = False, ids: bool = False) -> None:
    """-r, -i and -e; with ``ids``, not required, and ``--ids`` in their stead."""
    gallery_option(parser, required=not ids)
    definition_option(parser, required=not ids)
    parser.add_argument(
        "--gallery-image-version",
        "-e",
        required=not ids,
        dest="version",
        help="MAJOR.MINOR.PATCH" + (" or latest" if latest else "") + (" (or --ids)" if ids else ""),
    )
    if ids:
        _ids.add_ids(parser, _ids.VERSION, latest=latest)


def _no_wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="return once the source region is written; 'blobrep replicate' finishes the rest",
    )


def _profile_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target-regions",
        nargs="+",
        type=_types.target_region,
        default=None,
        metavar="REGION[=COUNT][=STORAGE]",
        help="where replicas live, e.g. westcentralus eastus2=2 westeurope=1=Standard_ZRS",
    )
    parser.add_argument(
        "--replica-count",
        type=_types.replica_count,
        default=None,
        help="replicas per region without its own (1..100)",
    )
    parser.add_argument(
        "--storage-account-type", default=None, help="Standard_LRS (default), Standard_ZRS, Premium_LRS"
    )
    add_bool(parser, "--exclude-from-latest", "hide this version from 'latest' in every region")
    parser.add_argument(
        "--regional-exclude-from-latest",
        nargs="+",
        type=_types.regional_flag,
        default=None,
        metavar="REGION=BOOL",
        help="per-region exclude-from-latest; wins over the global flag",
    )
    parser.add_argument(
        "--end-of-life-date",
        default=None,
        help=(
            "e.g. 2027-12-31: shown in listings, marked (past) once passed; it guards deletion with"
            " --block-deletion-before-end-of-life and hides the version from latest where the"
            " definition has --exclude-end-of-life-from-latest"
        ),
    )
    add_bool(parser, "--allow-replicated-location-deletion", "allow removing target regions later")
    add_bool(
        parser,
        "--block-deletion-before-end-of-life",
        "refuse deleting this version before its end-of-life date (which it then needs)",
    )


def _options(args: argparse.Namespace) -> VersionOptions:
    from blobrep.service import VersionOptions

    return VersionOptions(
        target_regions=args.target_regions,
        replica_count=args.replica_count,
        storage_type=args.storage_account_type,
        exclude_from_latest=args.exclude_from_latest,
        regional_exclude_from_latest=dict(args.regional_exclude_from_latest)
        if args.regional_exclude_from_latest
        else None,
        end_of_life=args.end_of_life_date,
        allow_replicated_location_deletion=args.allow_replicated_location_deletion,
        block_deletion_before_end_of_life=args.block_deletion_before_end_of_life,
    )


def _row(version: GalleryImageVersion) -> dict[str, Any]:
    regions = ", ".join(
        f"{status.region} {status.state} {status.completed_replicas}/{status.target_replicas}"
        for status in version.regions
    )
    return {
        "name": str(version.version),
        "location": version.location,
        "provisioningState": str(version.provisioning_state),
        "replication": str(version.aggregated_state),
        "regions": regions,
        "size": format_size(version.blob.size) if version.blob else "",
        "excludeFromLatest": version.publishing_profile.exclude_from_latest,
        "endOfLife": end_of_life_cell(version.publishing_profile.end_of_life),
        "retention": "" if version.retention is None else version.retention.details,
    }


def _status_rows(version: GalleryImageVersion) -> list[dict[str, Any]]:
    """A row per region of the version, named by its number so that rows of several versions
    (``--ids``) in one table stay told apart."""
    return [
        {
            "version": str(version.version),
            "region": status.region,
            "state": str(status.state),
            "progress": f"{status.progress}%",
            "replicas": f"{status.completed_replicas}/{status.target_replicas}",
            "details": status.details,
        }
        for status in version.regions
    ]


def _create(args: argparse.Namespace) -> int:
    data_disks = data_disk_sources(args)
    if args.image_version is not None or args.source is None:
        from blobrep.cli.sig_version_copies import create_from_version

        return create_from_version(args)
    published: list[PublishFigures] = []
    started = time.perf_counter()
    with ProgressBar("publishing") as bar, RegionBars("replicating") as bars:

        async def job(service: GalleryService, caller: str) -> GalleryImageVersion:
            version = await service.create_version(
                caller,
                args.gallery,
                args.definition,
                args.version,
                source=args.source,
                location=args.location,
                options=_options(args),
                progress=bar,
                on_published=published.append,
                data_disks=data_disks or None,
            )
            return await replicated(service, caller, args, version, bars)

        version = call(args, job)
    seconds = time.perf_counter() - started
    document = version_view(version, expand_replication=True)
    if published:
        result = published[0]
        document["publish"] = {
            "newChunks": result.new_chunks,
            "writtenBytes": result.written_bytes,
            "seconds": round(seconds, 3),
            "mbPerS": round(result.size / max(seconds, 1e-9) / 1e6, 1),
        }
    emit(args, document, _status_rows(version))
    return report_failures(version)


def _list(args: argparse.Namespace) -> int:
    versions = read(
        args,
        lambda reads, home, caller: queries.list_versions(reads, home, caller, args.gallery, args.definition),
        lambda service, caller: service.list_versions(caller, args.gallery, args.definition),
    )
    return emit(
        args, [version_view(version) for version in versions], [_row(version) for version in versions]
    )


def _show(args: argparse.Namespace) -> int:
    def show(target: _ids.Target) -> GalleryImageVersion:
        return read(
            args,
            lambda reads, home, caller: queries.show_version(
                reads, home, caller, target.gallery, target.definition, target.version, args.location
            ),
            lambda service, caller: service.show_version(
                caller, target.gallery, target.definition, target.version, location=args.location
            ),
        )

    expand = args.expand == "ReplicationStatus"
    _ids.each(args, _ids.VERSION, show).emit(
        args,
        lambda version: version_view(version, expand_replication=expand),
        lambda version: _status_rows(version) if expand else [_row(version)],
    )
    return 0


def _update(args: argparse.Namespace) -> int:
    """Update each version named, replicating what it added; stop at the first error, or at
    the first version whose replication failed (exit 1, naming its failed regions)."""

    def update(target: _ids.Target) -> GalleryImageVersion:
        names = (target.gallery, target.definition, target.version)
        with RegionBars("replicating") as bars:

            async def job(service: GalleryService, caller: str) -> GalleryImageVersion:
                version = await service.update_version(caller, *names, _options(args))
                if args.no_wait or version.aggregated_state is AggregatedState.COMPLETED:
                    return version
                return await service.replicate_version(caller, *names, progress=bars)

            return call(args, job)

    done = _ids.each(args, _ids.VERSION, update, stop=_failed)
    done.emit(args, lambda version: version_view(version, expand_replication=True), _status_rows)
    return report_failures(done.items[-1])


def _failed(version: GalleryImageVersion) -> bool:
    """A region of the version is Failed: an update of several versions stops there."""
    return any(status.state is ReplicationState.FAILED for status in version.regions)


async def replicated(
    service: GalleryService,
    caller: str,
    args: argparse.Namespace,
    version: GalleryImageVersion,
    bars: RegionBars,
) -> GalleryImageVersion:
    """``version``, just created, replicated to its other target regions (with region bars),
    or as it is with ``--no-wait``."""
    if args.no_wait:
        return version
    return await service.replicate_version(caller, args.gallery, args.definition, args.version, progress=bars)


async def replicate_grown_back(
    args: argparse.Namespace, service: GalleryService, caller: str, gallery: str, image: str
) -> None:
    """Replicate the versions of ``gallery``/``image`` that its retention policy has just grown
    back to their earlier regions (a newer version deleted, the policy widened), as a command
    that adds regions replicates them; a daemon replicates them by itself."""
    from blobrep.core.retention import GROWN_BACK

    if getattr(args, "endpoint", None) is not None:
        return
    for version in await service.list_versions(caller, gallery, image):
        mark = version.retention
        grown = mark is not None and not mark.shrunk and mark.details.startswith(GROWN_BACK)
        if grown and version.aggregated_state is not AggregatedState.COMPLETED:
            with RegionBars(f"replicating {version.version}") as bars:
                await service.replicate_version(caller, gallery, image, str(version.version), progress=bars)


def report_failures(version: GalleryImageVersion, location: str | None = None) -> int:
    """One error line naming each Failed region and why; exit 1 if there is any."""
    region = None if location is None else normalize_region(location)
    failed = [
        status
        for status in version.regions
        if status.state is ReplicationState.FAILED and (region is None or status.region == region)
    ]
    if not failed:
        return 0
    reasons = "; ".join(f"{status.region}: {status.details}" for status in failed)
    sys.stderr.write(f"blobrep: error: replication failed in {reasons}\n")
    return 1


def _delete(args: argparse.Namespace) -> int:
    def delete(target: _ids.Target) -> None:
        async def job(service: GalleryService, caller: str) -> None:
            await service.delete_version(caller, target.gallery, target.definition, target.version)
            await replicate_grown_back(args, service, caller, target.gallery, target.definition)

        call(args, job)

    _ids.each(args, _ids.VERSION, delete).check()
    return 0
