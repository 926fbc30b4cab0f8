"""``blobrep sig image-version create|list|show|update|delete``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from blobrep.cli._common import add_bool, call, definition_option, emit, gallery_option, parse_bool
from blobrep.cli.progress import ProgressBar, RegionBars
from blobrep.core.gallery import AggregatedState, GalleryImageVersion, ReplicationState
from blobrep.core.regions import normalize_region
from blobrep.core.units import format_size
from blobrep.errors import ResourceNotFoundError
from blobrep.service import GalleryService, PublishResult, VersionOptions
from blobrep.service.views import version_view

EXPAND_CHOICES = ("ReplicationStatus",)


def register(actions: Any) -> None:
    parser = actions.add_parser("image-version", help="image versions of a definition")
    group = parser.add_subparsers(dest="version_action", required=True, metavar="ACTION")

    create = group.add_parser("create", help="publish a source file as a new version")
    _names(create)
    create.add_argument("--source", required=True, type=Path, help="the raw or VHD image file")
    create.add_argument("--location", "-l", default=None, help="source region (default: the gallery's)")
    _profile_options(create)
    _no_wait(create)
    create.set_defaults(handler=_create)

    listing = group.add_parser("list", help="the versions of a definition, oldest first")
    gallery_option(listing)
    definition_option(listing)
    listing.set_defaults(handler=_list)

    show = group.add_parser("show", help="one version, or 'latest' in a region")
    _names(show, latest=True)
    show.add_argument("--location", "-l", default=None, help="region that 'latest' resolves in")
    show.add_argument("--expand", choices=EXPAND_CHOICES, default=None, help="add ReplicationStatus")
    show.set_defaults(handler=_show)

    update = group.add_parser("update", help="change target regions, replica counts, flags")
    _names(update)
    _profile_options(update)
    _no_wait(update)
    update.set_defaults(handler=_update)

    wait = group.add_parser("wait", help="wait until the version is Completed (exit 1 if a region fails)")
    _names(wait)
    wait.add_argument("--location", "-l", default=None, help="wait for this region only")
    wait.add_argument("--timeout", type=float, default=None, help="give up after this many seconds (exit 1)")
    wait.add_argument("--interval", type=float, default=1.0, help="seconds between checks (default 1)")
    wait.set_defaults(handler=_wait)

    delete = group.add_parser("delete", help="delete a version from every region")
    _names(delete)
    delete.set_defaults(handler=_delete)


def _names(parser: argparse.ArgumentParser, *, latest: bool = False) -> None:
    gallery_option(parser)
    definition_option(parser)
    parser.add_argument(
        "--gallery-image-version",
        "-e",
        required=True,
        dest="version",
        help="MAJOR.MINOR.PATCH" + (" or latest" if latest else ""),
    )


def _no_wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="return once the source region is written; 'blobrep replicate' finishes the rest",
    )


def _regional_flag(text: str) -> tuple[str, bool]:
    region, separator, flag = text.partition("=")
    if not separator or not region:
        raise argparse.ArgumentTypeError(f"invalid {text!r}: use REGION=true or REGION=false")
    return region, parse_bool(flag)


def _profile_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target-regions",
        nargs="+",
        default=None,
        metavar="REGION[=COUNT][=STORAGE]",
        help="where replicas live, e.g. westcentralus eastus2=2 westeurope=1=Standard_ZRS",
    )
    parser.add_argument(
        "--replica-count", type=int, default=None, help="replicas per region without its own (1..100)"
    )
    parser.add_argument(
        "--storage-account-type", default=None, help="Standard_LRS (default), Standard_ZRS, Premium_LRS"
    )
    add_bool(parser, "--exclude-from-latest", "hide this version from 'latest' in every region")
    parser.add_argument(
        "--regional-exclude-from-latest",
        nargs="+",
        type=_regional_flag,
        default=None,
        metavar="REGION=BOOL",
        help="per-region exclude-from-latest; wins over the global flag",
    )
    parser.add_argument("--end-of-life-date", default=None, help="e.g. 2027-12-31 (informational)")
    add_bool(parser, "--allow-replicated-location-deletion", "allow removing target regions later")


def _options(args: argparse.Namespace) -> VersionOptions:
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
    }


def _status_rows(version: GalleryImageVersion) -> list[dict[str, Any]]:
    return [
        {
            "region": status.region,
            "state": str(status.state),
            "progress": f"{status.progress}%",
            "replicas": f"{status.completed_replicas}/{status.target_replicas}",
            "details": status.details,
        }
        for status in version.regions
    ]


def _create(args: argparse.Namespace) -> int:
    published: list[PublishResult] = []
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
            )
            if args.no_wait:
                return version
            return await service.replicate_version(
                caller, args.gallery, args.definition, args.version, progress=bars
            )

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
    versions = call(
        args, lambda service, caller: service.list_versions(caller, args.gallery, args.definition)
    )
    return emit(
        args, [version_view(version) for version in versions], [_row(version) for version in versions]
    )


def _show(args: argparse.Namespace) -> int:
    version = call(
        args,
        lambda service, caller: service.show_version(
            caller, args.gallery, args.definition, args.version, location=args.location
        ),
    )
    expand = args.expand == "ReplicationStatus"
    rows = _status_rows(version) if expand else [_row(version)]
    return emit(args, version_view(version, expand_replication=expand), rows)


def _update(args: argparse.Namespace) -> int:
    with RegionBars("replicating") as bars:

        async def job(service: GalleryService, caller: str) -> GalleryImageVersion:
            version = await service.update_version(
                caller, args.gallery, args.definition, args.version, _options(args)
            )
            if args.no_wait or version.aggregated_state is AggregatedState.COMPLETED:
                return version
            return await service.replicate_version(
                caller, args.gallery, args.definition, args.version, progress=bars
            )

        version = call(args, job)
    emit(args, version_view(version, expand_replication=True), _status_rows(version))
    return report_failures(version)


def _wait(args: argparse.Namespace) -> int:
    async def job(service: GalleryService, caller: str) -> GalleryImageVersion:
        with anyio.move_on_after(args.timeout):
            while True:
                version = await service.show_version(caller, args.gallery, args.definition, args.version)
                states = _watched(version, args.location)
                if all(state is ReplicationState.COMPLETED for state in states) or any(
                    state is ReplicationState.FAILED for state in states
                ):
                    return version
                await anyio.sleep(args.interval)
        raise TimeoutError

    try:
        version = call(args, job)
    except TimeoutError:
        sys.stderr.write(f"blobrep: error: not Completed after {args.timeout:g} s; still replicating\n")
        return 1
    emit(args, version_view(version, expand_replication=True), _status_rows(version))
    return report_failures(version, args.location)


def _watched(version: GalleryImageVersion, location: str | None) -> list[ReplicationState]:
    if location is None:
        return [status.state for status in version.regions]
    region = normalize_region(location)
    status = version.status(region)
    if status is None:
        raise ResourceNotFoundError(f"{region!r} is not a target region of version {version.version}")
    return [status.state]


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
    call(
        args,
        lambda service, caller: service.delete_version(caller, args.gallery, args.definition, args.version),
    )
    return 0
