"""``--data-disk LUN=PATH`` of ``blobrep sig image-version create``: a version's data disks.

Apart from :mod:`blobrep.cli.sig_versions` so that the option, its checks and its help live
in one place. Each occurrence is checked as it is parsed (:func:`blobrep.cli._types.data_disk`:
LUN 0..63, an existing regular file); a LUN given twice is refused here, before anything is
recorded, since a mapping of LUN to file would otherwise keep the last silently.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from blobrep.cli import _types
from blobrep.errors import InvalidParameterError


def add_data_disk_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-disk",
        dest="data_disks",
        action="append",
        type=_types.data_disk,
        default=None,
        metavar="LUN=PATH",
        help="a data disk at LUN 0..63 from an image file; repeat for more (0=data0.img 1=data1.img)",
    )


def data_disk_sources(args: argparse.Namespace) -> dict[int, Path]:
    """The data disks given, LUN -> file.

    Raises:
        InvalidParameterError: a LUN is given twice, or data disks are given without --source.
    """
    given: list[tuple[int, Path]] = args.data_disks or []
    if given and args.source is None:
        if getattr(args, "image_version", None) is not None:
            raise InvalidParameterError(
                "--data-disk goes with --source: a version copied from another (--image-version)"
                " takes that version's disks"
            )
        raise InvalidParameterError(
            "--data-disk goes with --source: give the OS disk with --source FILE as well (the"
            " data disks are published beside it)"
        )
    disks: dict[int, Path] = {}
    for lun, path in given:
        if lun in disks:
            raise InvalidParameterError(
                f"data disk LUN {lun} is given twice ({disks[lun]} and {path}): give each LUN once"
            )
        disks[lun] = path
    return disks
