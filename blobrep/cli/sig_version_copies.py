"""``blobrep sig image-version create --image-version ID``: a version whose disk is another's.

The analogue of ``az sig image-version create --image-version``: the new version takes the
disk of an existing version, in the same gallery or in another one the caller can read
(:meth:`~blobrep.service.GalleryService.create_version_from`). Everything else is as for
``--source``: the same profile options, the version Completed in its source region when the
copy is done, then replication to the other target regions unless ``--no-wait``, and exit 1
naming any region that failed. In the same gallery nothing but the manifest is written; from
another gallery the chunks are copied once, verified as they are read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from blobrep.cli._common import call, emit
from blobrep.cli.progress import RegionBars
from blobrep.cli.sig_versions import _options, _status_rows, replicated, report_failures
from blobrep.errors import InvalidParameterError
from blobrep.service.views import version_view

if TYPE_CHECKING:
    import argparse

    from blobrep.core.gallery import GalleryImageVersion
    from blobrep.service import GalleryService


def create_from_version(args: argparse.Namespace) -> int:
    """Create ``args.version`` from the version ``args.image_version`` names.

    The id is checked before the home is opened, as options are: a malformed one, or one that
    names no version by number, is exit 2 with nothing recorded.

    Raises:
        InvalidParameterError: neither ``--source`` nor ``--image-version`` was given.
    """
    from blobrep.service.version_copies import source_version_id

    if args.image_version is None:
        raise InvalidParameterError(
            "the new version needs a disk: give --source FILE (or - for standard input), or"
            " --image-version ID of a version whose disk to copy"
        )
    source_version_id(args.image_version)
    with RegionBars("copying") as copying, RegionBars("replicating") as bars:

        async def job(service: GalleryService, caller: str) -> GalleryImageVersion:
            version = await service.create_version_from(
                caller,
                args.gallery,
                args.definition,
                args.version,
                source_version=args.image_version,
                location=args.location,
                options=_options(args),
                progress=copying,
            )
            return await replicated(service, caller, args, version, bars)

        version = call(args, job)
    emit(args, version_view(version, expand_replication=True), _status_rows(version))
    return report_failures(version)
