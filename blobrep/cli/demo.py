"""``blobrep demo``: a platform team's first five minutes, on the embedded default.

Makes a VM-like image, publishes it as version 1.0.0 of an image definition in a gallery
(into a local region), reads it back verified, checks every stored chunk, then publishes
1.0.1 with 1 % of its bytes changed to show that only new chunks are written, and resolves
``latest``. Prints what happened and how fast.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, TypeVar

from blobrep.cli import _types
from blobrep.cli._common import call, emit
from blobrep.cli.progress import ProgressBar, run_with_progress
from blobrep.core.ids import LATEST
from blobrep.core.units import format_size, parse_size
from blobrep.service import (
    BlobService,
    DefinitionFields,
    GalleryService,
    LocalStore,
    PublishResult,
    SyntheticImage,
    rewrite_runs,
)
from blobrep.storage.files import translate

_T = TypeVar("_T")
GALLERY = "demo_gallery"
IMAGE = "ubuntu-server"
REGION = "westcentralus"
VERSION_ID = f"/galleries/{GALLERY}/images/{IMAGE}/versions"


def register(commands: Any) -> None:
    parser = commands.add_parser("demo", help="publish and read back a VM-like image on the embedded default")
    parser.add_argument(
        "--size",
        type=_types.Size(1, _types.MAX_DEMO_SIZE),
        default=parse_size("256MiB"),
        help="image size (default: 256MiB)",
    )
    parser.add_argument(
        "--seed",
        type=_types.Integer(0, _types.MAX_SEED),
        default=12345,
        help="seed of the synthetic image (default: 12345)",
    )
    parser.set_defaults(handler=_demo)


def _write_image(path: Path, size: int, seed: int, edits: list[tuple[int, bytes]] | None = None) -> bool:
    """Write the synthetic image (with ``edits`` applied) unless an identical one is there.

    Returns False if the image was already there.
    """
    marker = path.with_suffix(".seed")
    identity = f"{size}:{seed}:{len(edits or [])}"
    with translate(marker, "read"):
        if path.exists() and marker.exists() and marker.read_text() == identity:
            return False
    with translate(path), ProgressBar("making image") as bar, open(path, "wb") as handle:
        done = 0
        for block in SyntheticImage(size, seed).blocks():
            handle.write(block)
            done += len(block)
            bar(done, size)
        for offset, data in edits or []:
            handle.seek(offset)
            handle.write(data)
    with translate(marker):
        marker.write_text(identity)
    return True


async def _fresh_versions(service: GalleryService, caller: str) -> None:
    """The demo's gallery and definition, without versions left from an earlier run.

    Deleting a version removes its manifests but keeps its chunks, so a second run shows
    what publishing costs when every chunk is already stored: nothing.
    """
    if GALLERY not in {gallery.name for gallery in await service.list_galleries(caller)}:
        await service.create_gallery(caller, GALLERY, location=REGION, description="blobrep demo")
    if IMAGE not in {item.name for item in await service.list_definitions(caller, GALLERY)}:
        fields = DefinitionFields(publisher="demo", offer="ubuntu-server", sku="24_04", os_type="Linux")
        await service.create_definition(caller, GALLERY, IMAGE, fields)
    for version in await service.list_versions(caller, GALLERY, IMAGE):
        await service.delete_version(caller, GALLERY, IMAGE, str(version.version))


def _publish(args: argparse.Namespace, image: Path, version: str) -> tuple[PublishResult, float]:
    results: list[PublishResult] = []

    async def job(bar: ProgressBar) -> None:
        async with await GalleryService.open(args.home) as service:
            await service.create_version(
                args.caller or service.bootstrap_admin,
                GALLERY,
                IMAGE,
                version,
                source=image,
                progress=bar,
                on_published=results.append,
            )

    _, seconds = run_with_progress("publishing", job)
    return results[0], seconds


class _Report:
    """What the demo says as it goes (on standard error when the table is JSON) and the rows
    of its table."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.rows: list[dict[str, Any]] = []
        self._stream = sys.stderr if as_json else sys.stdout

    def say(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()

    def row(self, step: str, size: int | None, seconds: float, note: str) -> None:
        self.rows.append(
            {
                "step": step,
                "size": None if size is None else format_size(size),
                "seconds": round(seconds, 2),
                "MB/s": None if size is None else round(size / max(seconds, 1e-9) / 1e6, 1),
                "result": note,
            }
        )

    def made(self, step: str, path: Path, size: int, seconds: float, note: str, written: bool) -> None:
        """A step that made an image, or found it from an earlier run."""
        if written:
            self.row(step, size, seconds, note)
        else:
            self.say(f"reusing {path}\n")


def _first_version(
    args: argparse.Namespace, work: Path, replica: LocalStore, report: _Report
) -> tuple[PublishResult, bool]:
    """Make, publish, restore and verify 1.0.0; its publish, and whether it read back whole
    and verified clean."""
    first = work / "ubuntu-server-1.0.0.img"
    started = time.perf_counter()
    written = _write_image(first, args.size, args.seed)
    note = "zeros, binaries and text, seeded"
    report.made("make image 1.0.0", first, args.size, time.perf_counter() - started, note, written)

    published, seconds = _publish(args, first, "1.0.0")
    ratio = published.size / max(published.stored_bytes, 1)
    report.row(
        "publish 1.0.0",
        published.size,
        seconds,
        f"{published.chunks} chunks ({published.zero_chunks} zero),"
        f" stored {format_size(published.stored_bytes)} ({ratio:.2f}:1),"
        f" wrote {format_size(published.written_bytes)}",
    )

    service = BlobService()
    blob = f"{IMAGE}/versions/1.0.0"
    restored_path = work / "restored-1.0.0.img"
    restored, seconds = run_with_progress(
        "restoring", lambda bar: service.restore(replica, GALLERY, blob, restored_path, progress=bar)
    )
    same = restored.digest == published.digest
    disk = os.stat(restored_path).st_blocks * 512
    report.row(
        "restore 1.0.0",
        restored.size,
        seconds,
        f"digest {'matches' if same else 'DIFFERS'}; sparse file uses {format_size(disk)} on disk",
    )

    verified, seconds = run_with_progress(
        "verifying", lambda bar: service.verify(replica, GALLERY, blob, progress=bar)
    )
    report.row(
        "verify 1.0.0",
        verified.checked_bytes,
        seconds,
        f"{verified.checked_chunks} chunks, {len(verified.problems)} problem(s)",
    )
    return published, same and verified.ok


def _second_version(args: argparse.Namespace, work: Path, first: PublishResult, report: _Report) -> None:
    """Make and publish 1.0.1 (1 % of 1.0.0 rewritten), then resolve ``latest``."""
    second = work / "ubuntu-server-1.0.1.img"
    started = time.perf_counter()
    written = _write_image(second, args.size, args.seed, rewrite_runs(args.size, 0.01, 16, args.seed + 1))
    note = "1.0.0 with 1% rewritten in 16 runs"
    report.made("make image 1.0.1", second, args.size, time.perf_counter() - started, note, written)
    update, seconds = _publish(args, second, "1.0.1")
    share = update.written_bytes / max(first.stored_bytes, 1)
    report.row(
        "publish 1.0.1",
        update.size,
        seconds,
        f"{update.new_chunks} new chunks, wrote {format_size(update.written_bytes)} ({share:.1%} of 1.0.0)",
    )
    started = time.perf_counter()
    latest = call(
        args, lambda gallery, caller: gallery.show_version(caller, GALLERY, IMAGE, LATEST, location=REGION)
    )
    report.row(
        "resolve latest",
        None,
        time.perf_counter() - started,
        f"{VERSION_ID}/latest in {REGION} is {latest.version}",
    )


def _demo(args: argparse.Namespace) -> int:
    home: Path = args.home
    # The caller and the home are checked (and the gallery made) before anything is printed,
    # so that a demo refused outright says so in its one line.
    call(args, _fresh_versions)
    work = home / "demo"
    with translate(work, "create the directory"):
        work.mkdir(parents=True, exist_ok=True)
    # Narration goes to stderr unless the result is a table for people.
    report = _Report(args.format not in (None, "table"))
    report.say(
        f"blobrep demo in {home.absolute()}: a {format_size(args.size)} VM-like image into region {REGION}\n"
    )
    replica = LocalStore(home / "regions" / REGION / "replica-1", name=f"{REGION}/replica-1")
    published, whole = _first_version(args, work, replica, report)
    _second_version(args, work, published, report)
    emit(
        args, {"home": str(home.absolute()), "steps": report.rows, "ok": whole}, report.rows, default="table"
    )
    report.say(
        f"\nreplica on disk: {replica.root}\n"
        f"try: blobrep --home {home} -o table sig image-version list -r {GALLERY} -i {IMAGE}\n"
    )
    return 0 if whole else 1
