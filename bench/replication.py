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
   (the growth of the files under that replica's ``galleries/{g}/chunks``) must be at most
   10 % of what version 1.0.0 stored there.
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
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import anyio
from _harness import (
    GIB,
    KIB,
    MIB,
    Sample,
    clean_stale_runs,
    cpu_busy_s,
    files_under,
    format_size,
    load1,
    machine_info,
    mb_per_s,
    median,
    own_peak_rss_kib,
    parse_size,
    remove,
    render_table,
    rss_method,
    run_child,
    settle,
    source_digest,
    summarize,
    tree_bytes,
    warm,
    write_json,
)
from _images import IMAGES_DIR, REWRITE_RUNS, WORK_DIR, ensure_image, ensure_rewritten

import blobrep
from blobrep.service import BlobService, DefinitionFields, GalleryService, LocalStore, VersionOptions

BENCH_DIR: Final = Path(__file__).resolve().parent
DEFAULT_OUT: Final = BENCH_DIR / "results" / "replication.json"
QUICK_OUT: Final = BENCH_DIR / "results" / "replication-quick.json"

SEED: Final = 12345
GALLERY: Final = "bench"
IMAGE_NAME: Final = "bench-image"
V1: Final = "1.0.0"
V2: Final = "1.0.1"
SOURCE_REGION: Final = "westcentralus"
TARGETS: Final = {"eastus2": 2, "westeurope": 2, "southeastasia": 2}
TARGET_TOKENS: Final = [SOURCE_REGION, *(f"{region}={count}" for region, count in TARGETS.items())]
REPLICAS: Final = [(region, number) for region, count in TARGETS.items() for number in range(1, count + 1)]
FIELDS: Final = DefinitionFields(publisher="bench", offer="synthetic", sku="vm", os_type="Linux")

FANOUT_RATIO_GOAL: Final = 1.2
FANOUT_RATIO_AIM: Final = 1.0
DELTA_GOAL: Final = 0.10


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def replica_dir(home: Path, region: str, number: int) -> Path:
    return home / "regions" / region / f"replica-{number}"


def chunks_dir(replica: Path) -> Path:
    return replica / "galleries" / GALLERY / "chunks"


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


def child_main(spec_text: str) -> int:
    """``--child SPEC``: run one operation and print ``{"seconds", "result"}`` as JSON."""
    spec = json.loads(spec_text)
    operations = {"publish": _child_publish, "replicate": _child_replicate, "verify": _child_verify}
    seconds, result = operations[spec["op"]](spec)
    json.dump({"seconds": seconds, "result": result, "vm_hwm_kib": own_peak_rss_kib()}, sys.stdout)
    return 0


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


class Steps:
    """The timed operations; each records a :class:`Sample` under a key."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.samples: dict[str, list[Sample]] = {}
        self.verified: list[dict[str, Any]] = []

    def _record(self, key: str, sample: Sample) -> Sample:
        self.samples.setdefault(key, []).append(sample)
        log(
            f"  {key:<16} {sample.seconds:8.3f} s  peak RSS {sample.peak_rss_kib / KIB:7.1f} MiB"
            f"  cpu {sample.cpu_s:6.2f} s  other cpu {sample.other_cpu_s:5.2f} s  load {sample.load1:.2f}"
        )
        return sample

    def _child(self, spec: dict[str, Any]) -> tuple[Sample, dict[str, Any]]:
        load = load1()
        busy = cpu_busy_s()
        finished = run_child([sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)])
        busy = cpu_busy_s() - busy
        payload = json.loads(finished.stdout)
        cpu = finished.user_s + finished.system_s
        sample = Sample(
            seconds=payload["seconds"],
            wall_s=finished.seconds,
            peak_rss_kib=finished.peak_rss_kib,
            cpu_s=cpu,
            load1=load,
            other_cpu_s=max(0.0, busy - cpu),
            details={**payload["result"], "child_vm_hwm_kib": payload["vm_hwm_kib"]},
        )
        return sample, payload["result"]

    def publish(self, key: str, home: Path, source: Path, version: str, *, setup: bool) -> Sample:
        warm(source)
        settle()
        spec = {"op": "publish", "home": str(home), "source": str(source), "version": version, "setup": setup}
        sample, result = self._child(spec)
        home_status = [status for status in result["regions"] if status["region"] == SOURCE_REGION]
        if not home_status or home_status[0]["state"] != "Completed":
            raise BenchmarkError(f"publishing {version}: the source region is {home_status or 'missing'}")
        return self._record(key, sample)

    def replicate(self, key: str, home: Path, version: str) -> Sample:
        warm(replica_dir(home, SOURCE_REGION, 1))
        settle()
        sample, result = self._child({"op": "replicate", "home": str(home), "version": version})
        _check_completed(result, f"replicating {version}")
        return self._record(key, sample)

    def copy_fanout(self, key: str, source: Path, outputs: Sequence[Path], *, sync: bool) -> Sample:
        """``cp -r source output`` for each output in turn, then ``sync`` if asked; timed as one."""
        warm(source)
        settle()
        load = load1()
        busy = cpu_busy_s()
        started = time.perf_counter()
        finished = [run_child(["cp", "-r", str(source), str(output)]) for output in outputs]
        if sync:
            os.sync()
        seconds = time.perf_counter() - started
        busy = cpu_busy_s() - busy
        cpu = sum(run.user_s + run.system_s for run in finished)
        sample = Sample(
            seconds=seconds,
            wall_s=seconds,
            peak_rss_kib=max(run.peak_rss_kib for run in finished),
            cpu_s=cpu,
            load1=load,
            other_cpu_s=max(0.0, busy - cpu),
            details={
                "command": f"cp -r SOURCE DEST (x{len(outputs)})" + (" && sync" if sync else ""),
                "copies": len(outputs),
                "copied_bytes": sum(tree_bytes(output) for output in outputs),
                "cp_seconds": [round(run.seconds, 4) for run in finished],
            },
        )
        return self._record(key, sample)

    def verify(self, home: Path, version: str) -> None:
        """Untimed: every target replica holds the version whole and intact."""
        replicas = [str(replica_dir(home, region, number)) for region, number in REPLICAS]
        _, result = self._child({"op": "verify", "version": version, "replicas": replicas})
        bad = [report for report in result["reports"] if not report["ok"] or report["checked_chunks"] < 1]
        if bad:
            raise BenchmarkError(f"version {version} does not verify in: {bad}")
        self.verified.append({"version": version, "reports": result["reports"]})
        log(f"  verified {version} in {len(replicas)} replicas")


def chunk_bytes(home: Path) -> dict[str, int]:
    """The bytes under ``galleries/{g}/chunks`` of every target replica, by ``region/replica-n``."""
    return {
        f"{region}/replica-{number}": tree_bytes(chunks_dir(replica_dir(home, region, number)))
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


@dataclasses.dataclass(slots=True)
class Row:
    operation: str
    size: int
    key: str | None
    baseline: str = ""
    baseline_s: float | None = None
    ratio: str = ""
    goal: str = ""
    passed: bool | None = None
    values: dict[str, Any] = dataclasses.field(default_factory=dict)


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def build_rows(
    steps: Steps, size: int, rounds: list[dict[str, Any]], version2: dict[str, Any]
) -> tuple[list[Row], dict[str, Any]]:
    samples = steps.samples

    def med(key: str) -> float:
        return median(sample.seconds for sample in samples[key])

    def paired(ours: str, base: str) -> list[float]:
        return [round(a.seconds / b.seconds, 4) for a, b in zip(samples[ours], samples[base], strict=False)]

    def ratio_text(ours: str, base: str) -> str:
        """The ratio of medians, and the range of the per-repeat (paired) ratios if several."""
        text = f"{med(ours) / med(base):.2f}x"
        pairs = paired(ours, base)
        return f"{text} [{min(pairs):.2f}-{max(pairs):.2f}]" if len(pairs) > 1 else text

    copies = len(REPLICAS)
    fanout_bytes = copies * int(median(round_["source_replica_bytes"] for round_ in rounds))
    rows: list[Row] = []
    ratio = med("replicate") / med("cp_sync")
    rss_mib = max(sample.peak_rss_kib for sample in samples["replicate"]) / KIB
    rows.append(
        Row(
            "replicate v1 -> 3 regions x 2 (ours)",
            fanout_bytes,
            "replicate",
            f"cp -r x{copies} + sync",
            med("cp_sync"),
            ratio_text("replicate", "cp_sync"),
            f"<= {FANOUT_RATIO_GOAL:.2f}x (aim {FANOUT_RATIO_AIM:.1f})",
            ratio <= FANOUT_RATIO_GOAL,
            {
                "ratio": round(ratio, 4),
                "paired_ratios": paired("replicate", "cp_sync"),
                "ratio_to_cp_no_sync": round(med("replicate") / med("cp_nosync"), 4),
                "replicated_bytes": fanout_bytes,
                "image_mb_s": round(mb_per_s(size, med("replicate")), 1),
                "peak_rss_mib": round(rss_mib, 1),
            },
        )
    )
    rows.append(Row(f"baseline cp -r x{copies} + sync", fanout_bytes, "cp_sync", goal="ref"))
    rows.append(Row(f"reference cp -r x{copies}, no sync", fanout_bytes, "cp_nosync", goal="ref"))
    rows.append(
        Row(
            "publish v1 into source (setup)",
            size,
            "publish_v1",
            goal="info",
            values={"stored_bytes": samples["publish_v1"][0].details["stored_bytes"]},
        )
    )

    v1_source = samples["publish_v1"][0].details["stored_bytes"]
    v2_written = samples["publish_v2"][0].details["written_bytes"]
    rows.append(
        Row(
            "publish v2 (1 % rewritten in place)",
            size,
            "publish_v2",
            f"v1 stored {format_size(v1_source)}",
            None,
            f"{_pct(v2_written / v1_source)} new",
            "info",
            None,
            {"v1_stored_bytes": v1_source, "v2_written_bytes": v2_written},
        )
    )
    fractions: dict[str, list[float]] = {replica: [] for replica in rounds[0]["v2_moved_fraction"]}
    for round_ in rounds:
        for replica, fraction in round_["v2_moved_fraction"].items():
            fractions[replica].append(fraction)
    worst = {replica: max(values) for replica, values in fractions.items()}
    moved_total = int(median(sum(round_["v2_moved_bytes"].values()) for round_ in rounds))
    rows.append(
        Row(
            f"replicate v2 -> {copies} replicas (ours)",
            moved_total,
            "replicate_v2",
            "moved / v1 stored",
            None,
            f"max {_pct(max(worst.values()))}",
            f"<= {_pct(DELTA_GOAL)} each",
            max(worst.values()) <= DELTA_GOAL,
            {"moved_bytes_total": moved_total, "worst_fraction_per_replica": worst},
        )
    )
    first = rounds[0]
    for replica, fraction in worst.items():
        rows.append(
            Row(
                f"  moved into {replica}",
                first["v2_moved_bytes"][replica],
                None,
                f"v1 {format_size(first['v1_chunk_bytes'][replica])}",
                None,
                f"{_pct(fraction)} ({format_size(first['v2_moved_bytes'][replica])})",
                f"<= {_pct(DELTA_GOAL)}",
                fraction <= DELTA_GOAL,
                {"fractions": fractions[replica]},
            )
        )
    delta = {"version2": version2, "per_repeat": rounds, "worst_fraction_per_replica": worst}
    return rows, delta


def render(rows: list[Row], steps: Steps) -> str:
    headers = [
        "operation",
        "MB/s",
        "median s",
        "baseline",
        "base s",
        "ratio",
        "goal",
        "result",
        "peak RSS MiB",
    ]
    lines: list[list[str]] = []
    for row in rows:
        samples = steps.samples[row.key] if row.key else []
        seconds = median(sample.seconds for sample in samples) if samples else None
        rss = max(sample.peak_rss_kib for sample in samples) / KIB if samples else None
        lines.append(
            [
                row.operation,
                f"{mb_per_s(row.size, seconds):.0f}" if seconds else "",
                f"{seconds:.3f}" if seconds else "",
                row.baseline,
                f"{row.baseline_s:.3f}" if row.baseline_s is not None else "",
                row.ratio,
                row.goal,
                {None: "-", True: "PASS", False: "FAIL"}[row.passed],
                f"{rss:.0f}" if rss is not None else "",
            ]
        )
    right = [False, True, True, False, True, True, False, False, True]
    return render_table(headers, lines, right=right)


# --- main -----------------------------------------------------------------------------------


def _check_space(size: int) -> None:
    """Fail early if the work filesystem cannot hold the images, one home and the copies.

    A home holds the source replica and 6 target replicas, and the baseline writes 6 more
    copies of the source replica; each is at most about the image's size.
    """
    usage = shutil.disk_usage(WORK_DIR)
    cached = sum(file.stat().st_size for file in files_under(IMAGES_DIR)) if IMAGES_DIR.exists() else 0
    needed = 2 * size + (1 + 2 * len(REPLICAS)) * size - cached
    if usage.free < needed:
        raise SystemExit(
            f"{WORK_DIR} has {format_size(usage.free)} free; this run needs about {format_size(needed)}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark blobrep replication (1 source replica -> 3 regions x 2) against cp -r + sync.",
    )
    parser.add_argument("--size", type=parse_size, help="image size (default 1GiB; 256MiB with --quick)")
    parser.add_argument("--repeat", type=int, help="runs per timing, median kept (default 3; 1 with --quick)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"synthetic image seed (default {SEED})")
    parser.add_argument(
        "--out",
        type=Path,
        help=f"JSON results (default {DEFAULT_OUT.relative_to(BENCH_DIR.parent)};"
        f" {QUICK_OUT.relative_to(BENCH_DIR.parent)} with --quick)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 256MiB, 1 repeat")
    parser.add_argument("--child", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    if args.size is None:
        args.size = parse_size("256MiB" if quick else "1GiB")
    if args.repeat is None:
        args.repeat = 1 if quick else 3
    if args.out is None:
        args.out = QUICK_OUT if quick else DEFAULT_OUT
    if args.repeat < 1 or args.size < 16 * MIB:
        parser.error("--repeat must be >= 1 and --size >= 16MiB")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        return child_main(args.child)
    size: int = args.size
    repeat: int = args.repeat
    seed: int = args.seed
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    for stale in clean_stale_runs(WORK_DIR):
        log(f"removed stale {stale}")
    _check_space(size)
    started = time.perf_counter()
    machine = machine_info(WORK_DIR)
    package = Path(blobrep.__file__).parent
    code_before = source_digest(package)
    image = ensure_image(size, seed)
    version2, version2_info = ensure_rewritten(image, size, seed)
    run_dir = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-replication-", dir=WORK_DIR))
    steps = Steps(run_dir)
    try:
        rounds = run_repeats(steps, image, version2, repeat)
    finally:
        remove(run_dir)
    rows, delta = build_rows(steps, size, rounds, version2_info)
    table = render(rows, steps)
    command = " ".join([Path(sys.executable).name, *sys.argv]) if argv is None else " ".join(argv)
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
        " replica for v1, the moved bytes for v2; publish rows: of the image). ratio = ours / baseline,"
        " medians; [min-max] of the per-repeat ratios (runs alternate order)."
        f" Peak RSS: {rss_method().split(' (')[0]}."
    )
    if size < GIB:
        print(
            f"note: the {REWRITE_RUNS} rewritten runs of v2 dirty at least {REWRITE_RUNS} chunks"
            " (~1-2 MiB each) whatever the image size, so below 1 GiB the moved fraction is larger"
            f" than at the 1 GiB the {_pct(DELTA_GOAL)} goal is set for"
        )
    timed = [sample for samples in steps.samples.values() for sample in samples]
    busy = sum(sample.wall_s for sample in timed)
    other = sum(sample.other_cpu_s for sample in timed)
    print(
        f"noise: the rest of the machine used {other:.1f} CPU-s during {busy:.1f} s of timed runs"
        f" ({100 * other / busy:.0f} % of one core, kernel writeback included; per run in the JSON)"
    )
    machine["loadavg_end"] = list(os.getloadavg())
    code_after = source_digest(package)
    if code_after != code_before:
        print("warning: blobrep's source changed during the run; results mix two versions")
    sizes = {
        "replicate": len(REPLICAS) * source_bytes,
        "cp_sync": len(REPLICAS) * source_bytes,
        "cp_nosync": len(REPLICAS) * source_bytes,
        "replicate_v2": int(median(sum(round_["v2_moved_bytes"].values()) for round_ in rounds)),
    }
    results = {
        "benchmark": "replication",
        "command": command,
        "machine": machine,
        "blobrep_source": {"sha256_16_start": code_before, "sha256_16_end": code_after},
        "config": {
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
        "goals": {
            "replicate_over_cp_sync_max": FANOUT_RATIO_GOAL,
            "replicate_over_cp_sync_aim": FANOUT_RATIO_AIM,
            "v2_moved_over_v1_stored_per_replica_max": DELTA_GOAL,
        },
        "rows": [
            {
                "operation": row.operation.strip(),
                "key": row.key,
                "size": row.size,
                "baseline": row.baseline,
                "baseline_median_s": row.baseline_s,
                "ratio_text": row.ratio,
                "goal": row.goal,
                "pass": row.passed,
                **row.values,
            }
            for row in rows
        ],
        "operations": {
            key: summarize(samples, sizes.get(key, size)) for key, samples in steps.samples.items()
        },
        "delta": delta,
        "verified": steps.verified,
        "all_pass": all(row.passed is not False for row in rows),
        "table": table.splitlines(),
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    out: Path = args.out
    write_json(out, results)
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
