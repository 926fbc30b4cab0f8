"""``blobrep blob publish|restore|verify``: plumbing over explicit stores.

These read and write exactly what the gallery commands write into a replica, so they are
the tool for scripts and for looking at a replica by hand. A store is a replica directory, or
an S3 or Azure Blob prefix (``s3://BUCKET/PREFIX``, ``az://CONTAINER/PREFIX``) reached with
the standard environment variables.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from typing import Any

from blobrep.cli import _types
from blobrep.cli._common import emit
from blobrep.cli.output import field_rows
from blobrep.cli.progress import run_with_progress
from blobrep.service import BlobService, ChunkingSpec
from blobrep.service.blobs import store_at


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "blob", help="publish, restore and verify blobs in replica directories or object stores"
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    publish = actions.add_parser(
        "publish", help="chunk, compress and store a source file (or standard input: -)"
    )
    publish.add_argument(
        "source",
        type=_types.source_file,
        help="the image file to publish, or - to read it from standard input (a pipe)",
    )
    publish.add_argument(
        "--store",
        action="append",
        required=True,
        type=_types.store_place,
        help="a replica directory, or s3://BUCKET/PREFIX or az://CONTAINER/PREFIX (repeat for more)",
    )
    _blob_options(publish)
    publish.add_argument(
        "--chunking",
        choices=("fastcdc", "fixed"),
        default="fastcdc",
        help="chunk boundaries (default: fastcdc)",
    )
    publish.add_argument(
        "--chunk-size",
        type=_types.chunk_size,
        default=None,
        help="average (fastcdc, default 1MiB) or exact (fixed, default 4MiB) chunk size",
    )
    publish.add_argument(
        "--zero-run",
        type=_types.zero_run,
        default="4KiB",
        help="fastcdc: zero runs this long (whole 4KiB blocks) end a chunk, or off (default: 4KiB)",
    )
    publish.add_argument(
        "--pack-size",
        type=_types.pack_size,
        default="4MiB",
        help="gather new chunks into packs of this size (up to 32MiB), or off to store each on its"
        " own (default: 4MiB)",
    )
    publish.add_argument("--level", type=_types.zstd_level, default=2, help="zstd level 1..19 (default: 2)")
    publish.set_defaults(handler=_publish)

    restore = actions.add_parser("restore", help="write a blob to a sparse file, verified")
    restore.add_argument(
        "--store", required=True, type=_types.store_place, help="the replica (directory or URL) to read"
    )
    _blob_options(restore)
    restore.add_argument(
        "--output", required=True, type=_types.output_file, help="the file to write (replaced atomically)"
    )
    restore.set_defaults(handler=_restore)

    verify = actions.add_parser("verify", help="check every chunk of a blob; exit 1 if any is bad")
    verify.add_argument(
        "--store", required=True, type=_types.store_place, help="the replica (directory or URL) to check"
    )
    _blob_options(verify)
    verify.set_defaults(handler=_verify)


def _blob_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gallery", required=True, help="the gallery name")
    parser.add_argument(
        "--name", required=True, help="{image}/versions/{version}, e.g. ubuntu/versions/1.0.0"
    )


def _publish(args: argparse.Namespace) -> int:
    # "is None", not "or": an explicit --chunk-size 0 is an error, not the default.
    if args.chunking == "fixed":
        spec = ChunkingSpec.fixed(4 * 1024 * 1024 if args.chunk_size is None else args.chunk_size)
    else:
        average = 1024 * 1024 if args.chunk_size is None else args.chunk_size
        spec = ChunkingSpec.fastcdc(average, zero_run=args.zero_run)
    stores = [store_at(place, create=True) for place in args.store]
    result, seconds = run_with_progress(
        "publishing",
        lambda bar: BlobService().publish(
            args.source,
            stores,
            args.gallery,
            args.name,
            chunking=spec,
            level=args.level,
            pack_size=args.pack_size,
            progress=bar,
        ),
    )
    return _print_timed(args, asdict(result), result.size, seconds)


def _restore(args: argparse.Namespace) -> int:
    store = store_at(args.store)
    result, seconds = run_with_progress(
        "restoring",
        lambda bar: BlobService().restore(store, args.gallery, args.name, args.output, progress=bar),
    )
    return _print_timed(args, asdict(result), result.size, seconds)


def _print_timed(args: argparse.Namespace, summary: dict[str, Any], size: int, seconds: float) -> int:
    timing = {"seconds": round(seconds, 3), "mb_per_s": round(size / max(seconds, 1e-9) / 1e6, 1)}
    return emit(args, summary | timing, field_rows(summary | timing))


def _verify(args: argparse.Namespace) -> int:
    store = store_at(args.store)
    report, _ = run_with_progress(
        "verifying", lambda bar: BlobService().verify(store, args.gallery, args.name, progress=bar)
    )
    rows = [asdict(problem) for problem in report.problems]
    rows += [{"pack": problem.digest} | asdict(problem) for problem in report.pack_problems]
    emit(
        args,
        asdict(report) | {"ok": report.ok},
        rows or [{"result": f"all {report.checked_chunks} chunks verified"}],
    )
    if not report.ok:
        bad_packs = f" and {len(report.pack_problems)} bad pack(s)" if report.pack_problems else ""
        sys.stderr.write(
            f"blobrep: error: {len(report.missing)} missing and {len(report.corrupt)} corrupt chunk(s)"
            f"{bad_packs} in {report.replica}\n"
        )
        return 1
    return 0
