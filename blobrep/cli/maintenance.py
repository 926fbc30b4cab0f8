"""``blobrep replicate``, ``blobrep gc`` and ``blobrep fsck``: the reconcile loop, garbage
collection, and the catalog checked against the stores, on demand.

``replicate`` is what the coming daemon will run in the background: it brings every version
in scope to its target regions and replica counts, copying only what is missing, so running it
again after a failure or an interruption finishes the job.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import TYPE_CHECKING, Any

from blobrep.cli import _types
from blobrep.cli._common import call, emit, gallery_option
from blobrep.cli.progress import RegionBars
from blobrep.cli.sig_versions import report_failures
from blobrep.core.units import format_size
from blobrep.errors import InvalidParameterError
from blobrep.service.views import version_view

if TYPE_CHECKING:
    from blobrep.service import GalleryService


def register(commands: Any) -> None:
    replicate = commands.add_parser(
        "replicate", help="bring versions to their target regions and replica counts"
    )
    gallery_option(replicate)
    replicate.add_argument("--gallery-image-definition", "-i", dest="definition", default=None)
    replicate.add_argument("--gallery-image-version", "-e", dest="version", default=None)
    replicate.add_argument(
        "--location", "-l", nargs="+", type=_types.region, default=None, help="only these regions"
    )
    replicate.add_argument("--retry-failed", action="store_true", help="also retry regions marked Failed")
    replicate.set_defaults(handler=_replicate)

    gc = commands.add_parser("gc", help="delete chunks that no manifest references")
    gallery_option(gc)
    gc.add_argument(
        "--location", "-l", nargs="+", type=_types.region, default=None, help="only these regions"
    )
    gc.add_argument(
        "--grace",
        type=_types.Duration(0.0, None),
        default=3600.0,
        help="keep chunks younger than this (default 1h; e.g. 0, 10m)",
    )
    gc.add_argument("--dry-run", action="store_true", help="report what would be deleted, delete nothing")
    gc.set_defaults(handler=_gc)

    fsck = commands.add_parser(
        "fsck", help="check every replica against the catalog; --repair fixes what it can"
    )
    fsck.add_argument("--gallery-name", "-r", dest="gallery", default=None, help="only this gallery")
    fsck.add_argument("--location", "-l", type=_types.region, default=None, help="only this region")
    fsck.add_argument(
        "--repair",
        action="store_true",
        help="repair from good copies (this or another region), delete manifests the catalog does not"
        " know, remove old temporaries, and mark what cannot be repaired Failed",
    )
    fsck.add_argument(
        "--grace",
        type=_types.Duration(0.0, None),
        default=3600.0,
        help="temporary files younger than this may belong to a running write (default 1h)",
    )
    fsck.set_defaults(handler=_fsck)


def _replicate(args: argparse.Namespace) -> int:
    if args.version is not None and args.definition is None:
        raise InvalidParameterError("--gallery-image-version needs --gallery-image-definition")
    with RegionBars("replicating") as bars:

        async def job(service: GalleryService, caller: str) -> list[Any]:
            if args.version is not None:
                return [
                    await service.replicate_version(
                        caller,
                        args.gallery,
                        args.definition,
                        args.version,
                        regions=args.location,
                        retry_failed=args.retry_failed,
                        progress=bars,
                    )
                ]
            return await service.replicate_all(
                caller,
                args.gallery,
                args.definition,
                regions=args.location,
                retry_failed=args.retry_failed,
                progress=bars,
            )

        versions = call(args, job)
    rows = [
        {
            "version": f"{version.image}/{version.version}",
            "region": status.region,
            "state": str(status.state),
            "replicas": f"{status.completed_replicas}/{status.target_replicas}",
            "details": status.details,
        }
        for version in versions
        for status in version.regions
    ]
    emit(args, [version_view(version, expand_replication=True) for version in versions], rows)
    return max((report_failures(version) for version in versions), default=0)


def _gc(args: argparse.Namespace) -> int:
    reports = call(
        args,
        lambda service, caller: service.collect_garbage(
            caller, args.gallery, regions=args.location, grace=args.grace, dry_run=args.dry_run
        ),
    )
    documents = [dataclasses.asdict(report) for report in reports]
    rows = [
        {
            "replica": report.replica,
            "referenced": report.referenced_chunks,
            "deleted": report.deleted_chunks,
            "freed": format_size(report.deleted_bytes),
            "keptYoung": report.kept_young,
            "error": report.error or "",
        }
        for report in reports
    ]
    emit(args, documents, rows)
    failed = [report for report in reports if report.error]
    if not failed:
        return 0
    # One line, every replica left as it was and why (a busy one names its holder and says
    # to retry later): the reports above hold the same, but stdout may be a pipe.
    reasons = "; ".join(f"{report.replica}: {report.error}" for report in failed)
    sys.stderr.write(
        f"blobrep: error: garbage collection skipped {len(failed)} of {len(reports)} replica(s),"
        f" which were left as they were: {reasons}\n"
    )
    return 1


def _fsck(args: argparse.Namespace) -> int:
    report = call(
        args,
        lambda service, caller: service.fsck(
            caller, gallery=args.gallery, location=args.location, repair=args.repair, grace=args.grace
        ),
    )
    rows = [
        {
            "kind": problem.kind,
            "gallery": problem.gallery,
            "replica": problem.replica or problem.region,
            "what": problem.what,
            "repaired": problem.repaired,
            "detail": problem.detail,
        }
        for problem in report.problems
    ]
    packs = f" ({report.packs_checked} pack copies read whole)" if report.packs_checked else ""
    checked = (
        f"{len(report.galleries)} galleries, {len(report.regions)} regions,"
        f" {report.versions_checked} versions, {report.chunks_checked} chunk copies checked{packs}"
    )
    emit(args, dataclasses.asdict(report) | {"ok": report.ok}, rows or [{"result": f"{checked}: no problem"}])
    for marked in report.marked_failed:
        sys.stderr.write(f"blobrep: {marked} is now Failed: no good copy of its data is left anywhere\n")
    left = [problem for problem in report.problems if not problem.repaired]
    if left:
        sys.stderr.write(f"blobrep: error: {len(left)} problem(s) left ({checked})\n")
        return 1
    if report.problems:
        sys.stderr.write(f"{len(report.problems)} problem(s) repaired ({checked})\n")
    return 0
