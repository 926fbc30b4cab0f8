"""``blobrep sig image-version wait``: until versions are Completed, or a region fails.

The versions are named as for ``show`` (``-r``/``-i``/``-e``, or ``--ids`` with one or more
version ids, waited for in order under one ``--timeout``). What each watched region is doing
is looked at once before the deadline counts, so ``--timeout 0`` checks once and succeeds if
every version is already there; a timeout says what each watched region of the version still
waited for is doing, instead of guessing.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from typing import TYPE_CHECKING, Any

from blobrep.cli import _ids, _types
from blobrep.cli._common import call, emit
from blobrep.core.gallery import GalleryImageVersion, ReplicationState
from blobrep.core.regions import normalize_region
from blobrep.errors import ResourceNotFoundError
from blobrep.service.views import version_view

if TYPE_CHECKING:
    from blobrep.service import GalleryService


def register(group: Any) -> None:
    from blobrep.cli.sig_versions import _names

    wait = group.add_parser("wait", help="wait until versions are Completed (exit 1 if a region fails)")
    _names(wait, ids=True)
    wait.add_argument("--location", "-l", type=_types.region, default=None, help="wait for this region only")
    wait.add_argument(
        "--timeout",
        type=_types.Duration(0.0, _types.MAX_TIMEOUT),
        default=None,
        help="give up after this many seconds, for all the versions together (exit 1)",
    )
    wait.add_argument(
        "--interval",
        type=_types.Duration(_types.MIN_INTERVAL, _types.MAX_INTERVAL),
        default=1.0,
        help="seconds between checks (default 1)",
    )
    wait.set_defaults(handler=_wait)


def _wait(args: argparse.Namespace) -> int:
    from blobrep.cli.sig_versions import _status_rows, report_failures

    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    done: list[GalleryImageVersion] = []
    for target in _ids.targets(args, _ids.VERSION):
        version, settled = call(
            args, functools.partial(_settled, target=target, args=args, deadline=deadline)
        )
        if not settled:
            sys.stderr.write(_timed_out(version, args.location, args.timeout) + "\n")
            return 1
        done.append(version)
    several = args.ids is not None and len(args.ids) > 1
    views = [version_view(version, expand_replication=True) for version in done]
    emit(args, views if several else views[0], [row for version in done for row in _status_rows(version)])
    return max(report_failures(version, args.location) for version in done)


async def _settled(
    service: GalleryService,
    caller: str,
    target: _ids.Target,
    args: argparse.Namespace,
    deadline: float | None,
) -> tuple[GalleryImageVersion, bool]:
    """Poll ``target`` until its watched regions are Completed (or one Failed): the version
    and True; or the version as it stood at ``deadline`` (monotonic) and False."""
    import anyio

    while True:
        version = await service.show_version(
            caller, target.gallery, target.definition, target.version, location=args.location
        )
        watched = [version.status(region) for region in _watched(version, args.location)]
        states = [status.state for status in watched if status is not None]
        if all(state is ReplicationState.COMPLETED for state in states) or any(
            state is ReplicationState.FAILED for state in states
        ):
            return version, True
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return version, False
        await anyio.sleep(args.interval if deadline is None else min(args.interval, deadline - now))


def _watched(version: GalleryImageVersion, location: str | None) -> list[str]:
    """The regions waited for: every one the version has a status in, or the one asked for."""
    if location is None:
        return [status.region for status in version.regions]
    region = normalize_region(location)
    if version.status(region) is None:
        targets = ", ".join(status.region for status in version.regions)
        raise ResourceNotFoundError(
            f"region {region!r} is not a target region of version {version.version} (its target"
            f" regions: {targets}); wait for one of those, or leave out --location"
        )
    return [region]


def _timed_out(version: GalleryImageVersion, location: str | None, timeout: float) -> str:
    statuses = [version.status(region) for region in _watched(version, location)]
    regions = "; ".join(
        f"{status.region} {status.state} ({status.progress}%"
        f"{', ' + status.details if status.details else ''})"
        for status in statuses
        if status is not None
    )
    return (
        f"blobrep: error: version {version.version} is not Completed after {timeout:g} s:"
        f" {regions}; run 'blobrep replicate' if nothing is replicating it, or wait again"
    )
