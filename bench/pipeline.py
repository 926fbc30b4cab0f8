#!/usr/bin/env python3
"""The pipeline benchmark: blobrep publish, restore, dedup and memory against zstd and cp.

Run from the repository root::

    .venv/bin/python bench/pipeline.py [--size 1GiB] [--repeat 3] [--big-size 4GiB]
                                       [--chain-size 1GiB] [--no-chain]
                                       [--out bench/results/pipeline.json] [--quick]

On a deterministic VM-like image (``SyntheticImage``, fixed seed; cached under ``bench/.work/``
on the repository's filesystem and reused across runs) it measures:

1. publish: ``BlobService.publish`` into one fresh ``LocalStore`` (FastCDC, the default; it
   fsyncs every chunk) against ``zstd -1 -T0`` of the same file, both without fsync
   (``-c > FILE``) and with an fsync of the output (``-o FILE`` then ``fsync``). A publish is
   durable, so the goal compares with the fsynced baseline: ours / baseline <= 1.0.
   Fixed 4 MiB chunking is timed as an extra row.
2. restore: ``BlobService.restore`` of that version to a new file against
   ``zstd -d -o FILE`` of the baseline's output plus an fsync; goal ours / baseline <= 1.0.
3. ``cp`` + fsync of the image, as a reference for raw durable copying.
4. dedup: publishing the same image again must write no chunk. Version 2 (1 % of the bytes
   rewritten in 16 runs, plus 1 MiB of random bytes inserted in the middle) is published
   beside version 1; its written bytes / version 1's stored bytes has the goal <= 10 % with
   FastCDC, and is shown for fixed-size chunking next to it.
5. memory: the peak RSS of a publish of a ``--big-size`` image, goal < 300 MiB; the peak RSS
   of every other run (ours and the baselines) is reported too.
6. the real image chain (``bench/real_images.py``, skipped with ``--no-chain``): blobrep,
   restic, casync and zstd store and restore each Debian version (``bench/_real_chain.py``);
   goals: growth <= restic's for every version after the first and in total, and each publish
   and restore <= zstd's with fsync.

Every timed operation runs in a child process of its own: this script with ``--child`` for
blobrep (its time is taken inside the child, around the operation, so interpreter start-up is
excluded; the child's wall time is kept in the JSON), or the baseline command itself (timed
from spawn to the end of its fsync). Peak RSS comes from ``wait4`` of that child. Before each
timed run its input is read once, so both sides start with the same warm page cache, and
``sync`` writes back what earlier runs left dirty. Times are medians of ``--repeat`` runs, and
the order of ours and the baselines alternates between repeats.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import anyio
from _harness import (
    MIB,
    Finished,
    Sample,
    format_size,
    fsync_file,
    log,
    parse_size,
    remove,
    run_child,
    settle,
    warm,
)
from _images import ensure_image, ensure_version2
from _pipeline_rows import DEDUP_GOAL, PUBLISH_RATIO_GOAL, RESTORE_RATIO_GOAL, RSS_GOAL_MIB, build_rows
from _real_chain import available_tools, chain_rows, chain_table, run_chain
from _report import noise_note, ratio_note, render
from _run import Run, add_run_options, add_size_options, fill_defaults
from _steps import TimedSteps, child_main

import blobrep
from blobrep.service import BlobService, ChunkingSpec, LocalStore

BENCHMARK: Final = "pipeline"
GALLERY: Final = "bench"
IMAGE_NAME: Final = "bench-image"
V1: Final = f"{IMAGE_NAME}/versions/1.0.0"
V2: Final = f"{IMAGE_NAME}/versions/1.0.1"
FIXED_CHUNK: Final = 4 * MIB


ZSTD_COMPRESS: Final = ("zstd", "-1", "-T0", "-q")


# --- the child: one blobrep operation, timed inside ----------------------------------------


def _child_publish(spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    service = BlobService()
    chunking = ChunkingSpec.fixed(FIXED_CHUNK) if spec["fixed"] else None

    async def go() -> dict[str, Any]:
        store = LocalStore(spec["store"], create=True)
        result = await service.publish(
            Path(spec["source"]), [store], GALLERY, spec["name"], chunking=chunking
        )
        return dataclasses.asdict(result)

    started = time.perf_counter()
    result = anyio.run(go)
    return time.perf_counter() - started, result


def _child_restore(spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    service = BlobService()

    async def go() -> dict[str, Any]:
        store = LocalStore(spec["store"])
        result = await service.restore(store, GALLERY, spec["name"], Path(spec["output"]))
        return dataclasses.asdict(result)

    started = time.perf_counter()
    result = anyio.run(go)
    return time.perf_counter() - started, result


CHILD_OPERATIONS: Final = {"publish": _child_publish, "restore": _child_restore}


# --- timed steps ----------------------------------------------------------------------------


class Steps(TimedSteps):
    """The timed operations: publish and restore in a child, zstd and cp timed from here."""

    script = Path(__file__).resolve()
    key_width = 24

    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir)
        self.verified: list[str] = []

    def _ours(self, key: str, spec: dict[str, Any]) -> Sample:
        sample, _ = self.child(spec)
        return self.record(key, sample)

    def _baseline(
        self, key: str, command: list[str], output: Path, *, fsync: bool, to_stdout: bool = False
    ) -> Sample:
        """``command``, then an fsync of its ``output`` if asked, timed from here as one."""

        def run() -> list[Finished]:
            if to_stdout:
                with open(output, "wb") as handle:
                    finished = run_child(command, stdout=handle)
            else:
                finished = run_child(command)
            if fsync:
                fsync_file(output)
            return [finished]

        def details(_: Sequence[Finished]) -> dict[str, Any]:
            return {"command": " ".join(command), "fsync": fsync, "output_bytes": output.stat().st_size}

        return self.record(key, self.in_parent(run, details))

    def publish(self, key: str, source: Path, store: Path, name: str, *, fixed: bool = False) -> Sample:
        warm(source)
        settle()
        spec = {"op": "publish", "source": str(source), "store": str(store), "name": name, "fixed": fixed}
        return self._ours(key, spec)

    def restore(self, key: str, store: Path, name: str, output: Path) -> Sample:
        warm(store)
        settle()
        return self._ours(key, {"op": "restore", "store": str(store), "name": name, "output": str(output)})

    def zstd_compress(self, key: str, source: Path, output: Path, *, fsync: bool) -> Sample:
        warm(source)
        settle()
        if fsync:
            command = [*ZSTD_COMPRESS, "-f", str(source), "-o", str(output)]
            return self._baseline(key, command, output, fsync=True)
        command = [*ZSTD_COMPRESS, "-c", str(source)]
        return self._baseline(key, command, output, fsync=False, to_stdout=True)

    def zstd_decompress(self, key: str, frame: Path, output: Path) -> Sample:
        warm(frame)
        settle()
        command = ["zstd", "-d", "-q", "-f", str(frame), "-o", str(output)]
        return self._baseline(key, command, output, fsync=True)

    def copy(self, key: str, source: Path, output: Path) -> Sample:
        warm(source)
        settle()
        return self._baseline(key, ["cp", str(source), str(output)], output, fsync=True)


def run_repeats(steps: Steps, image: Path, repeat: int) -> None:
    """Publish, restore and copy ``repeat`` times, alternating the order of ours and baselines."""
    for round_ in range(repeat):
        log(f"repeat {round_ + 1}/{repeat}")
        _one_repeat(steps, image, reverse=bool(round_ % 2), verify=round_ == 0)


def _one_repeat(steps: Steps, image: Path, *, reverse: bool, verify: bool) -> None:
    """One round; with ``verify``, both restored files are compared with the image (untimed)."""
    store = steps.path("store-fastcdc")
    frame = steps.path("image.zst")

    def zstd_plain() -> None:
        output = steps.path("image-nofsync.zst")
        steps.zstd_compress("zstd_compress", image, output, fsync=False)
        remove(output)

    def publish_fixed() -> None:
        fixed_store = steps.path("store-fixed")
        steps.publish("publish_fixed", image, fixed_store, V1, fixed=True)
        remove(fixed_store)

    def copy() -> None:
        output = steps.path("image-copy.img")
        steps.copy("cp_fsync", image, output)
        remove(output)

    def restore_ours() -> None:
        output = steps.path("restored.img")
        steps.restore("restore", store, V1, output)
        if verify:
            run_child(["cmp", "-s", str(image), str(output)])  # raises if they differ
            steps.verified.append("restore")
        remove(output)

    def restore_zstd() -> None:
        output = steps.path("restored-zstd.img")
        steps.zstd_decompress("zstd_decompress_fsync", frame, output)
        if verify:
            run_child(["cmp", "-s", str(image), str(output)])
            steps.verified.append("zstd_decompress_fsync")
        remove(output)

    # The restores read what these publishes leave behind (the store and the .zst frame).
    publish_group: list[Callable[[], object]] = [
        zstd_plain,
        lambda: steps.zstd_compress("zstd_compress_fsync", image, frame, fsync=True),
        lambda: steps.publish("publish_fastcdc", image, store, V1),
        publish_fixed,
        copy,
    ]
    restore_group: list[Callable[[], object]] = [restore_ours, restore_zstd]
    if reverse:
        publish_group.reverse()
        restore_group.reverse()
    try:
        for step in (*publish_group, *restore_group):
            step()
    finally:
        remove(store, frame)


def run_dedup(steps: Steps, image: Path, version2: Path, repeat: int) -> None:
    """Version 1, the same again, then version 2 into the same replica; FastCDC and fixed."""
    log("dedup")
    store = steps.path("dedup-fastcdc")
    steps.publish("dedup_v1_fastcdc", image, store, V1)
    for _ in range(repeat):
        steps.publish("republish_same", image, store, V1)
    steps.publish("dedup_v2_fastcdc", version2, store, V2)
    remove(store)
    fixed_store = steps.path("dedup-fixed")
    steps.publish("dedup_v1_fixed", image, fixed_store, V1, fixed=True)
    steps.publish("dedup_v2_fixed", version2, fixed_store, V2, fixed=True)
    remove(fixed_store)


def run_memory(steps: Steps, big_image: Path) -> None:
    """One publish of the big image for its peak RSS, and zstd on it for comparison."""
    log("memory")
    store = steps.path("store-big")
    steps.publish("publish_big", big_image, store, V1)
    remove(store)
    frame = steps.path("big.zst")
    steps.zstd_compress("zstd_compress_fsync_big", big_image, frame, fsync=True)
    remove(frame)


# --- report ---------------------------------------------------------------------------------


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark blobrep publish/restore/dedup/memory against zstd and cp.",
    )
    add_size_options(parser)
    parser.add_argument(
        "--big-size",
        type=parse_size,
        help="image size for the memory check (default 4GiB; 512MiB with --quick)",
    )
    parser.add_argument(
        "--chain-size",
        type=parse_size,
        default=parse_size("1GiB"),
        help="size of each real Debian image of the chain (bench/real_images.py; default 1GiB)",
    )
    parser.add_argument(
        "--no-chain", action="store_true", help="skip the real image chain (it needs root and the apt mirror)"
    )
    add_run_options(parser, BENCHMARK, quick_help="smoke run: 256MiB, 1 repeat, 512MiB big-size")
    args = parser.parse_args(argv)
    fill_defaults(args, BENCHMARK)
    if args.big_size is None:
        args.big_size = parse_size("512MiB" if args.quick else "4GiB")
    if args.repeat < 1 or args.size < 16 * MIB or args.big_size < 16 * MIB:
        parser.error("--repeat must be >= 1 and sizes >= 16MiB")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        return child_main(args.child, CHILD_OPERATIONS)
    size: int = args.size
    big_size: int = args.big_size
    repeat: int = args.repeat
    seed: int = args.seed
    # The images, and the largest step's outputs: 3 copies of the image, or 2 of the big one;
    # the chain's stores and a restored image (restic writes no holes).
    chain_bytes = 0 if args.no_chain else 2 * args.chain_size
    run = Run.start(
        BENCHMARK, argv, needed_bytes=2 * size + big_size + max(3 * size, 2 * big_size) + chain_bytes
    )
    image = ensure_image(size, seed)
    version2, version2_info = ensure_version2(image, size, seed)
    big_image = ensure_image(big_size, seed)
    chain: list[Path] = []
    tools: dict[str, str | None] = {}
    if not args.no_chain:
        from real_images import real_chain

        chain = real_chain(size=args.chain_size)
        tools = available_tools()
    with run.directory() as run_dir:
        steps = Steps(run_dir)
        run_repeats(steps, image, repeat)
        run_dedup(steps, image, version2, repeat)
        run_memory(steps, big_image)
        if chain:
            run_chain(steps, chain, repeat, tools)
    rows, dedup = build_rows(steps.samples, size, big_size, version2_info)
    chain_text, chain_figures = "", dict[str, Any]()
    if chain:
        rows += chain_rows(steps, tools, chain)
        chain_text, chain_figures = chain_table(steps, tools, len(chain))
    table = render(rows, steps.samples)
    print(
        f"blobrep {blobrep.__version__} pipeline benchmark: image {format_size(size)} (seed {seed}),"
        f" {repeat} repeat(s), memory check {format_size(big_size)}, {os.cpu_count()} CPUs"
    )
    print(table)
    if chain_text:
        print(f"real image chain ({len(chain)} Debian images of {format_size(args.chain_size)}, medians):")
        print(chain_text)
    print(ratio_note())
    print(noise_note(steps.samples))
    stored = steps.samples["publish_fastcdc"][0].details["stored_bytes"]
    frame_bytes = steps.samples["zstd_compress_fsync"][0].details["output_bytes"]
    print(
        f"stored: blobrep fastcdc {format_size(stored)} ({size / stored:.2f}:1),"
        f" zstd -1 {format_size(frame_bytes)} ({size / frame_bytes:.2f}:1)"
    )

    def size_of(key: str) -> int:
        if key.endswith("_big"):
            return big_size
        if key.startswith("chain_"):
            return int(args.chain_size)
        return int(version2_info["size"]) if key.startswith("dedup_v2") else size

    run.finish(
        args.out,
        config={
            "size": size,
            "big_size": big_size,
            "repeat": repeat,
            "seed": seed,
            "quick": args.quick,
            "image": str(image),
            "version2_image": str(version2),
            "big_image": str(big_image),
            "fixed_chunk_size": FIXED_CHUNK,
            "gallery": GALLERY,
            "chain_size": None if args.no_chain else args.chain_size,
        },
        goals={
            "publish_ratio_max": PUBLISH_RATIO_GOAL,
            "restore_ratio_max": RESTORE_RATIO_GOAL,
            "republish_new_chunks": 0,
            "dedup_v2_fastcdc_written_over_v1_stored_max": DEDUP_GOAL,
            "big_publish_peak_rss_mib_max": RSS_GOAL_MIB,
            "chain_growth": "<= restic per version after the first, and in total",
            "chain_publish_ratio_max": 1.0,
            "chain_restore_ratio_max": 1.0,
        },
        rows=rows,
        samples=steps.samples,
        size_of=size_of,
        extra={
            "dedup": dedup,
            "restores_compared_with_image": steps.verified,
            "real_chain": {"images": [str(path) for path in chain], "tools": chain_figures},
        },
        table=table if not chain_text else f"{table}\n{chain_text}",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
