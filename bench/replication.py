#!/usr/bin/env python3
"""The replication benchmark: a version fanned out to 3 regions x 2 replicas, against ``cp -r`` + ``sync``.

Run from the repository root::

    .venv/bin/python bench/replication.py [--size 1GiB] [--repeat 3] [--seed N]
                                          [--out bench/results/replication.json] [--quick]

On the deterministic VM-like image of ``bench/pipeline.py`` (cached under ``bench/.work/``),
in a fresh gallery home per repeat, it measures:

1. fan-out: version 1.0.0 is published (untimed for the goal, its time reported) into its
   source region westcentralus (1 replica), then ``GalleryService.replicate_version`` copies
   it to eastus2, westeurope and southeastasia, 2 replicas each. The baseline is ``cp -r`` of
   the source replica's directory to 6 fresh directories followed by ``sync``, timed from the
   start of the first ``cp`` to the end of the ``sync`` (replication is durable: every chunk
   is fsynced before the manifest is written). Goal: ours / baseline <= 1.2 (aim 1.0).
   ``cp -r`` x6 without ``sync`` is a reference row.
2. delta: version 1.0.1, the same image with 1 % of its bytes rewritten in place in 16 runs at
   random offsets, is published and replicated. The bytes it moves into each target replica
   (the growth of the files under that replica's ``galleries/{g}``: packs, chunks and
   manifests) must be at most 10 % of what version 1.0.0 stored there.
3. memory: the peak RSS of every child, the replication child's in particular (no goal).

Every blobrep operation runs in a child process of its own (this script with ``--child``),
timed inside the child around the one service call, so interpreter start-up and opening the
catalog are excluded (the child's wall time is kept in the JSON); ``cp`` is timed from the
parent. Peak RSS comes from GNU ``time`` (or ``wait4``). Before each timed run the source
replica's files are read once and ``sync`` writes back what earlier runs left dirty. Times are
medians of ``--repeat`` runs, and the order of ours and the baselines alternates between
repeats. The first repeat also verifies every target replica (``BlobService.verify``, untimed);
every repeat checks that each region ends Completed with all its replicas.
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
    GIB,
    MIB,
    Finished,
    Sample,
    format_size,
    log,
    median,
    remove,
    run_child,
    settle,
    tree_bytes,
    warm,
)
from _images import REWRITE_RUNS, ensure_image, ensure_rewritten
from _replication_chain import chain_replication_rows, run_chain_replication
from _replication_rows import DELTA_GOAL, FANOUT_RATIO_AIM, FANOUT_RATIO_GOAL, build_rows
from _report import noise_note, pct, ratio_note, render
from _run import Run, add_run_options, add_size_options, fill_defaults
from _steps import TimedSteps, child_main

import blobrep
from blobrep.service import BlobService, DefinitionFields, GalleryService, LocalStore, VersionOptions

BENCHMARK: Final = "replication"
GALLERY: Final = "bench"
IMAGE_NAME: Final = "bench-image"
V1: Final = "1.0.0"
V2: Final = "1.0.1"
SOURCE_REGION: Final = "westcentralus"
TARGETS: Final = {"eastus2": 2, "westeurope": 2, "southeastasia": 2}
TARGET_TOKENS: Final = [SOURCE_REGION, *(f"{region}={count}" for region, count in TARGETS.items())]
REPLICAS: Final = [(region, number) for region, count in TARGETS.items() for number in range(1, count + 1)]
FIELDS: Final = DefinitionFields(publisher="bench", offer="synthetic", sku="vm", os_type="Linux")


def replica_dir(home: Path, region: str, number: int) -> Path:
    return home / "regions" / region / f"replica-{number}"


def stored_dir(replica: Path) -> Path:
    """Where the gallery's objects live in a replica: its packs, chunk files and manifests."""
    return replica / "galleries" / GALLERY


def blob_name(version: str) -> str:
    return f"{IMAGE_NAME}/versions/{version}"


# --- the child: one blobrep operation, timed inside ----------------------------------------


def _statuses(version: Any) -> dict[str, Any]:
    """A version's replication state as plain data."""
    return {
        "aggregated_state": str(version.aggregated_state),
        "blob": None if version.blob is None else dataclasses.asdict(version.blob),
        "regions": [
            {
                "region": status.region,
                "state": str(status.state),
                "progress": status.progress,
                "completed_replicas": status.completed_replicas,
                "target_replicas": status.target_replicas,
                "details": status.details,
            }
            for status in version.regions
        ],
    }


def _child_publish(spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """Create the version (publishing it into its source region); a fresh home is set up first."""

    async def go() -> tuple[float, dict[str, Any]]:
        async with await GalleryService.open(spec["home"]) as service:
            admin = service.bootstrap_admin
            if spec["setup"]:
                await service.create_gallery(admin, GALLERY, location=SOURCE_REGION)
                await service.create_definition(admin, GALLERY, IMAGE_NAME, FIELDS)
            published: dict[str, Any] = {}
            options = VersionOptions(target_regions=TARGET_TOKENS)
            started = time.perf_counter()
            version = await service.create_version(
                admin,
                GALLERY,
                IMAGE_NAME,
                spec["version"],
                source=spec["source"],
                options=options,
                on_published=lambda result: published.update(dataclasses.asdict(result)),
            )
            seconds = time.perf_counter() - started
            return seconds, {**published, **_statuses(version)}

    return anyio.run(go)


def _child_replicate(spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """``replicate_version`` to every target region, with a progress callback like the CLI's."""

    async def go() -> tuple[float, dict[str, Any]]:
        async with await GalleryService.open(spec["home"]) as service:
            updates = 0
            last: dict[str, dict[str, Any]] = {}

            def progress(update: Any) -> None:
                nonlocal updates
                updates += 1
                last[update.region] = dataclasses.asdict(update)

            started = time.perf_counter()
            version = await service.replicate_version(
                service.bootstrap_admin, GALLERY, IMAGE_NAME, spec["version"], progress=progress
            )
            seconds = time.perf_counter() - started
            return seconds, {**_statuses(version), "progress_updates": updates, "last_progress": last}

    return anyio.run(go)


def _child_verify(spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """``BlobService.verify`` of the version in each replica directory given."""
    service = BlobService()

    async def go() -> list[dict[str, Any]]:
        reports = []
        for path in spec["replicas"]:
            report = await service.verify(LocalStore(path), GALLERY, blob_name(spec["version"]))
            reports.append(
                {
                    "replica": path,
                    "ok": report.ok,
                    "checked_chunks": report.checked_chunks,
                    "checked_bytes": report.checked_bytes,
                    "problems": [dataclasses.asdict(problem) for problem in report.problems[:10]],
                }
            )
        return reports

    started = time.perf_counter()
    reports = anyio.run(go)
    return time.perf_counter() - started, {"reports": reports}


CHILD_OPERATIONS: Final = {"publish": _child_publish, "replicate": _child_replicate, "verify": _child_verify}


# --- timed steps ----------------------------------------------------------------------------


class BenchmarkError(RuntimeError):
    """A run did not do what it must (a region not Completed, a replica that fails to verify)."""


def _check_completed(result: dict[str, Any], what: str) -> None:
    """Every target region Completed with all its replicas, or :class:`BenchmarkError`."""
    expected = {SOURCE_REGION: 1, **TARGETS}
    seen = {status["region"]: status for status in result["regions"]}
    problems = []
    for region, count in expected.items():
        status = seen.get(region)
        if status is None:
            problems.append(f"{region}: no status")
        elif status["state"] != "Completed" or status["completed_replicas"] != count:
            problems.append(
                f"{region}: {status['state']} {status['completed_replicas']}/{count} {status['details']}"
            )
    if problems:
        raise BenchmarkError(f"{what}: " + "; ".join(problems))


class Steps(TimedSteps):
    """The timed operations: publish, replicate and verify in a child, ``cp -r`` timed from here."""

    script = Path(__file__).resolve()
    key_width = 16

    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir)
        self.verified: list[dict[str, Any]] = []

    def publish(self, key: str, home: Path, source: Path, version: str, *, setup: bool) -> Sample:
        warm(source)
        settle()
        spec = {"op": "publish", "home": str(home), "source": str(source), "version": version, "setup": setup}
        sample, result = self.child(spec)
        home_status = [status for status in result["regions"] if status["region"] == SOURCE_REGION]
        if not home_status or home_status[0]["state"] != "Completed":
            raise BenchmarkError(f"publishing {version}: the source region is {home_status or 'missing'}")
        return self.record(key, sample)

    def replicate(self, key: str, home: Path, version: str) -> Sample:
        warm(replica_dir(home, SOURCE_REGION, 1))
        settle()
        sample, result = self.child({"op": "replicate", "home": str(home), "version": version})
        _check_completed(result, f"replicating {version}")
        return self.record(key, sample)

    def copy_fanout(self, key: str, source: Path, outputs: Sequence[Path], *, sync: bool) -> Sample:
        """``cp -r source output`` for each output in turn, then ``sync`` if asked; timed as one."""
        warm(source)
        settle()

        def run() -> list[Finished]:
            finished = [run_child(["cp", "-r", str(source), str(output)]) for output in outputs]
            if sync:
                os.sync()
            return finished

        def details(finished: Sequence[Finished]) -> dict[str, Any]:
            return {
                "command": f"cp -r SOURCE DEST (x{len(outputs)})" + (" && sync" if sync else ""),
                "copies": len(outputs),
                "copied_bytes": sum(tree_bytes(output) for output in outputs),
                "cp_seconds": [round(run.seconds, 4) for run in finished],
            }

        return self.record(key, self.in_parent(run, details))

    def verify(self, home: Path, version: str) -> None:
        """Untimed: every target replica holds the version whole and intact."""
        replicas = [str(replica_dir(home, region, number)) for region, number in REPLICAS]
        _, result = self.child({"op": "verify", "version": version, "replicas": replicas})
        bad = [report for report in result["reports"] if not report["ok"] or report["checked_chunks"] < 1]
        if bad:
            raise BenchmarkError(f"version {version} does not verify in: {bad}")
        self.verified.append({"version": version, "reports": result["reports"]})
        log(f"  verified {version} in {len(replicas)} replicas")


def chunk_bytes(home: Path) -> dict[str, int]:
    """The bytes under ``galleries/{g}`` of every target replica, by ``region/replica-n``."""
    return {
        f"{region}/replica-{number}": tree_bytes(stored_dir(replica_dir(home, region, number)))
        for region, number in REPLICAS
    }


def _one_repeat(
    steps: Steps, round_: int, image: Path, version2: Path, *, reverse: bool, verify: bool
) -> dict[str, Any]:
    """One fresh home: v1 published, fanned out (ours and ``cp -r``), then v2 published and replicated."""
    home = steps.run_dir / f"home-{round_}"
    source = replica_dir(home, SOURCE_REGION, 1)
    steps.publish("publish_v1", home, image, V1, setup=True)
    source_bytes = tree_bytes(source)

    def ours() -> None:
        steps.replicate("replicate", home, V1)
        if verify:
            steps.verify(home, V1)

    def copies(key: str, sync: bool) -> Callable[[], None]:
        def run() -> None:
            outputs = [steps.run_dir / f"{key}-{round_}" / f"copy-{n}" for n in range(1, len(REPLICAS) + 1)]
            outputs[0].parent.mkdir()
            try:
                steps.copy_fanout(key, source, outputs, sync=sync)
            finally:
                remove(outputs[0].parent)

        return run

    group: list[tuple[str, Callable[[], None]]] = [
        ("replicate", ours),
        ("cp_sync", copies("cp_sync", True)),
        ("cp_nosync", copies("cp_nosync", False)),
    ]
    if reverse:
        group.reverse()
    try:
        for _, step in group:
            step()
        v1_stored = chunk_bytes(home)
        steps.publish("publish_v2", home, version2, V2, setup=False)
        steps.replicate("replicate_v2", home, V2)
        v2_stored = chunk_bytes(home)
        if verify:
            steps.verify(home, V2)
    finally:
        remove(home)
    moved = {replica: v2_stored[replica] - v1_stored[replica] for replica in v1_stored}
    return {
        "repeat": round_ + 1,
        "order": [name for name, _ in group],
        "source_replica_bytes": source_bytes,
        "v1_chunk_bytes": v1_stored,
        "v2_moved_bytes": moved,
        "v2_moved_fraction": {replica: round(moved[replica] / v1_stored[replica], 5) for replica in moved},
    }


def run_repeats(steps: Steps, image: Path, version2: Path, repeat: int) -> list[dict[str, Any]]:
    """``repeat`` rounds, alternating the order of ours and the baselines."""
    rounds = []
    for round_ in range(repeat):
        log(f"repeat {round_ + 1}/{repeat}")
        rounds.append(
            _one_repeat(steps, round_, image, version2, reverse=bool(round_ % 2), verify=round_ == 0)
        )
    return rounds


# --- report ---------------------------------------------------------------------------------


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark blobrep replication (1 source replica -> 3 regions x 2) against cp -r + sync.",
    )
    add_size_options(parser)
    parser.add_argument(
        "--no-chain", action="store_true", help="skip the real image chain (it needs root and the apt mirror)"
    )
    add_run_options(parser, BENCHMARK, quick_help="smoke run: 256MiB, 1 repeat")
    args = parser.parse_args(argv)
    fill_defaults(args, BENCHMARK)
    if args.repeat < 1 or args.size < 16 * MIB:
        parser.error("--repeat must be >= 1 and --size >= 16MiB")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        return child_main(args.child, CHILD_OPERATIONS)
    size: int = args.size
    repeat: int = args.repeat
    seed: int = args.seed
    # The images, and one home: the source replica and 6 target replicas, while the baseline
    # writes 6 more copies of the source replica; each is at most about the image's size.
    run = Run.start(BENCHMARK, argv, needed_bytes=2 * size + (1 + 2 * len(REPLICAS)) * size)
    image = ensure_image(size, seed)
    version2, version2_info = ensure_rewritten(image, size, seed)
    chain: list[Path] = []
    if not args.no_chain:
        from real_images import real_chain

        chain = real_chain()
    chain_figures: list[dict[str, Any]] = []
    with run.directory("replication-") as run_dir:
        steps = Steps(run_dir)
        rounds = run_repeats(steps, image, version2, repeat)
        if chain:
            chain_figures = run_chain_replication(
                run_dir,
                chain,
                lambda key, home, path, version: steps.publish(
                    key, home, path, version, setup=version == "1.0.0"
                ),
                steps.replicate,
                lambda home: {
                    f"{region}/replica-{number}": replica_dir(home, region, number)
                    for region, number in REPLICAS
                },
                lambda home: replica_dir(home, SOURCE_REGION, 1),
            )
    rows, delta = build_rows(steps.samples, len(REPLICAS), size, rounds, version2_info)
    rows += chain_replication_rows(chain_figures)
    table = render(rows, steps.samples)
    source_bytes = int(median(round_["source_replica_bytes"] for round_ in rounds))
    targets = ", ".join(f"{region}={count}" for region, count in TARGETS.items())
    print(
        f"blobrep {blobrep.__version__} replication benchmark: image {format_size(size)} (seed {seed}),"
        f" {SOURCE_REGION} (1 replica, {format_size(source_bytes)} stored) -> {targets};"
        f" {repeat} repeat(s), {os.cpu_count()} CPUs"
    )
    print(table)
    print(
        f"MB/s = bytes written into the target replicas per second ({len(REPLICAS)} x the source"
        " replica for v1, the moved bytes for v2; publish rows: of the image). " + ratio_note()
    )
    if size < GIB:
        print(
            f"note: the {REWRITE_RUNS} rewritten runs of v2 dirty at least {REWRITE_RUNS} chunks"
            " (~1-2 MiB each) whatever the image size, so below 1 GiB the moved fraction is larger"
            f" than at the 1 GiB the {pct(DELTA_GOAL)} goal is set for"
        )
    print(noise_note(steps.samples))
    sizes = {
        "replicate": len(REPLICAS) * source_bytes,
        "cp_sync": len(REPLICAS) * source_bytes,
        "cp_nosync": len(REPLICAS) * source_bytes,
        "replicate_v2": int(median(sum(round_["v2_moved_bytes"].values()) for round_ in rounds)),
        **{
            f"chain_replicate_v{number}": sum(figure["moved"].values())
            for number, figure in enumerate(chain_figures, 1)
        },
    }
    run.finish(
        args.out,
        config={
            "size": size,
            "repeat": repeat,
            "seed": seed,
            "quick": args.quick,
            "image": str(image),
            "version2_image": str(version2),
            "gallery": GALLERY,
            "image_name": IMAGE_NAME,
            "versions": [V1, V2],
            "source_region": SOURCE_REGION,
            "source_replicas": 1,
            "target_regions": TARGETS,
            "mb_s_of": "operations: bytes written into the target replicas (publish: the image)",
        },
        goals={
            "replicate_over_cp_sync_max": FANOUT_RATIO_GOAL,
            "replicate_over_cp_sync_aim": FANOUT_RATIO_AIM,
            "v2_moved_over_v1_stored_per_replica_max": DELTA_GOAL,
            "chain_moved_per_replica": "= the source replica's growth, per version",
        },
        rows=rows,
        samples=steps.samples,
        size_of=lambda key: sizes.get(key, size),
        extra={"delta": delta, "verified": steps.verified, "real_chain": chain_figures},
        table=table,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
