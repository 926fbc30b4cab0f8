#!/usr/bin/env python3
"""The pipeline benchmark: blobrep publish, restore, dedup and memory against zstd and cp.

Run from the repository root::

    .venv/bin/python bench/pipeline.py [--size 1GiB] [--repeat 3] [--big-size 4GiB]
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
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import anyio
from _harness import (
    KIB,
    MIB,
    Sample,
    cpu_busy_s,
    files_under,
    format_size,
    fsync_file,
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
    summarize,
    warm,
    write_json,
)
from _images import IMAGES_DIR, WORK_DIR, ensure_image, ensure_version2

import blobrep
from blobrep.service import BlobService, ChunkingSpec, LocalStore

BENCH_DIR: Final = Path(__file__).resolve().parent
DEFAULT_OUT: Final = BENCH_DIR / "results" / "pipeline.json"
QUICK_OUT: Final = BENCH_DIR / "results" / "pipeline-quick.json"

SEED: Final = 12345
GALLERY: Final = "bench"
IMAGE_NAME: Final = "bench-image"
V1: Final = f"{IMAGE_NAME}/versions/1.0.0"
V2: Final = f"{IMAGE_NAME}/versions/1.0.1"
FIXED_CHUNK: Final = 4 * MIB

PUBLISH_RATIO_GOAL: Final = 1.0
RESTORE_RATIO_GOAL: Final = 1.0
DEDUP_GOAL: Final = 0.10
RSS_GOAL_MIB: Final = 300

ZSTD_COMPRESS: Final = ("zstd", "-1", "-T0", "-q")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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


def child_main(spec_text: str) -> int:
    """``--child SPEC``: run one operation and print ``{"seconds", "result"}`` as JSON."""
    spec = json.loads(spec_text)
    operations = {"publish": _child_publish, "restore": _child_restore}
    seconds, result = operations[spec["op"]](spec)
    json.dump({"seconds": seconds, "result": result, "vm_hwm_kib": own_peak_rss_kib()}, sys.stdout)
    return 0


# --- timed steps ----------------------------------------------------------------------------


class Steps:
    """The timed operations; each records a :class:`Sample` under a key."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.samples: dict[str, list[Sample]] = {}
        self.verified: list[str] = []

    def path(self, name: str) -> Path:
        return self.run_dir / name

    def _record(self, key: str, sample: Sample) -> Sample:
        self.samples.setdefault(key, []).append(sample)
        log(
            f"  {key:<24} {sample.seconds:8.3f} s  peak RSS {sample.peak_rss_kib / KIB:7.1f} MiB"
            f"  cpu {sample.cpu_s:6.2f} s  other cpu {sample.other_cpu_s:5.2f} s  load {sample.load1:.2f}"
        )
        return sample

    def _ours(self, key: str, spec: dict[str, Any]) -> Sample:
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
        return self._record(key, sample)

    def _baseline(
        self, key: str, command: list[str], output: Path, *, fsync: bool, to_stdout: bool = False
    ) -> Sample:
        load = load1()
        busy = cpu_busy_s()
        started = time.perf_counter()
        if to_stdout:
            with open(output, "wb") as handle:
                finished = run_child(command, stdout=handle)
        else:
            finished = run_child(command)
        if fsync:
            fsync_file(output)
        seconds = time.perf_counter() - started
        busy = cpu_busy_s() - busy
        cpu = finished.user_s + finished.system_s
        sample = Sample(
            seconds=seconds,
            wall_s=seconds,
            peak_rss_kib=finished.peak_rss_kib,
            cpu_s=cpu,
            load1=load,
            other_cpu_s=max(0.0, busy - cpu),
            details={"command": " ".join(command), "fsync": fsync, "output_bytes": output.stat().st_size},
        )
        return self._record(key, sample)

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
    steps: Steps, size: int, big_size: int, version2: dict[str, Any]
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

    rows: list[Row] = []
    zstd_fsync = "zstd -1 -T0 -o +fsync"
    publish_ratio = med("publish_fastcdc") / med("zstd_compress_fsync")
    rows.append(
        Row(
            "publish fastcdc (ours)",
            size,
            "publish_fastcdc",
            zstd_fsync,
            med("zstd_compress_fsync"),
            ratio_text("publish_fastcdc", "zstd_compress_fsync"),
            f"<= {PUBLISH_RATIO_GOAL:.2f}x",
            publish_ratio <= PUBLISH_RATIO_GOAL,
            {
                "ratio": round(publish_ratio, 4),
                "paired_ratios": paired("publish_fastcdc", "zstd_compress_fsync"),
                "ratio_to_zstd_no_fsync": round(med("publish_fastcdc") / med("zstd_compress"), 4),
            },
        )
    )
    fixed_ratio = med("publish_fixed") / med("zstd_compress_fsync")
    rows.append(
        Row(
            "publish fixed 4 MiB (ours)",
            size,
            "publish_fixed",
            zstd_fsync,
            med("zstd_compress_fsync"),
            ratio_text("publish_fixed", "zstd_compress_fsync"),
            "info",
            None,
            {"ratio": round(fixed_ratio, 4), "paired_ratios": paired("publish_fixed", "zstd_compress_fsync")},
        )
    )
    rows.append(Row("baseline zstd -1 -T0 -c >file", size, "zstd_compress", goal="ref"))
    rows.append(Row("baseline zstd -1 -T0 -o +fsync", size, "zstd_compress_fsync", goal="ref"))
    restore_ratio = med("restore") / med("zstd_decompress_fsync")
    rows.append(
        Row(
            "restore fastcdc (ours)",
            size,
            "restore",
            "zstd -d -o +fsync",
            med("zstd_decompress_fsync"),
            ratio_text("restore", "zstd_decompress_fsync"),
            f"<= {RESTORE_RATIO_GOAL:.2f}x",
            restore_ratio <= RESTORE_RATIO_GOAL,
            {"ratio": round(restore_ratio, 4), "paired_ratios": paired("restore", "zstd_decompress_fsync")},
        )
    )
    rows.append(Row("baseline zstd -d -o +fsync", size, "zstd_decompress_fsync", goal="ref"))
    rows.append(Row("reference cp +fsync", size, "cp_fsync", goal="ref"))

    new_chunks = [sample.details["new_chunks"] for sample in samples["republish_same"]]
    written = [sample.details["written_bytes"] for sample in samples["republish_same"]]
    rows.append(
        Row(
            "republish same image",
            size,
            "republish_same",
            "new chunks",
            None,
            str(max(new_chunks)),
            "0 new",
            max(new_chunks) == 0 and max(written) == 0,
            {"new_chunks": new_chunks, "written_bytes": written},
        )
    )
    dedup: dict[str, Any] = {"version2": version2}
    for method, label, goal in (("fastcdc", "fastcdc", DEDUP_GOAL), ("fixed", "fixed 4 MiB", None)):
        v1 = samples[f"dedup_v1_{method}"][0].details
        v2 = samples[f"dedup_v2_{method}"][0].details
        fraction = v2["written_bytes"] / v1["stored_bytes"]
        values = {
            "v1_stored_bytes": v1["stored_bytes"],
            "v2_written_bytes": v2["written_bytes"],
            "v2_new_chunks": v2["new_chunks"],
            "v2_chunks": v2["chunks"],
            "written_over_v1_stored": round(fraction, 5),
        }
        dedup[method] = values
        rows.append(
            Row(
                f"v2 publish, {label}",
                version2["size"],
                f"dedup_v2_{method}",
                f"v1 stored {format_size(v1['stored_bytes'])}",
                None,
                f"{_pct(fraction)} new",
                "info" if goal is None else f"<= {_pct(goal)}",
                None if goal is None else fraction <= goal,
                values,
            )
        )

    big_rss = max(sample.peak_rss_kib for sample in samples["publish_big"]) / KIB
    big_ratio = med("publish_big") / med("zstd_compress_fsync_big")
    rows.append(
        Row(
            f"publish {format_size(big_size)} fastcdc (memory)",
            big_size,
            "publish_big",
            zstd_fsync,
            med("zstd_compress_fsync_big"),
            f"{big_ratio:.2f}x",
            f"RSS < {RSS_GOAL_MIB} MiB",
            big_rss < RSS_GOAL_MIB,
            {"ratio": round(big_ratio, 4), "peak_rss_mib": round(big_rss, 1)},
        )
    )
    rows.append(
        Row(
            f"baseline zstd {format_size(big_size)} -o +fsync",
            big_size,
            "zstd_compress_fsync_big",
            goal="ref",
        )
    )
    return rows, dedup


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


def _clean_stale_runs() -> None:
    """Remove run directories left by benchmark processes that no longer exist."""
    for entry in WORK_DIR.glob("run-*"):
        try:
            pid = int(entry.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            log(f"removing stale {entry}")
            remove(entry)
        except PermissionError:
            pass


def _check_space(size: int, big_size: int) -> None:
    """Fail early if the work filesystem cannot hold the images and the largest step's outputs."""
    usage = shutil.disk_usage(WORK_DIR)
    cached = sum(file.stat().st_size for file in files_under(IMAGES_DIR)) if IMAGES_DIR.exists() else 0
    needed = 2 * size + big_size + max(3 * size, 2 * big_size) - cached
    if usage.free < needed:
        raise SystemExit(
            f"{WORK_DIR} has {format_size(usage.free)} free; this run needs about {format_size(needed)}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark blobrep publish/restore/dedup/memory against zstd and cp.",
    )
    parser.add_argument("--size", type=parse_size, help="image size (default 1GiB; 256MiB with --quick)")
    parser.add_argument("--repeat", type=int, help="runs per timing, median kept (default 3; 1 with --quick)")
    parser.add_argument(
        "--big-size",
        type=parse_size,
        help="image size for the memory check (default 4GiB; 512MiB with --quick)",
    )
    parser.add_argument("--seed", type=int, default=SEED, help=f"synthetic image seed (default {SEED})")
    parser.add_argument(
        "--out",
        type=Path,
        help=f"JSON results (default {DEFAULT_OUT.relative_to(BENCH_DIR.parent)};"
        f" {QUICK_OUT.relative_to(BENCH_DIR.parent)} with --quick)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 256MiB, 1 repeat, 512MiB big-size")
    parser.add_argument("--child", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    if args.size is None:
        args.size = parse_size("256MiB" if quick else "1GiB")
    if args.repeat is None:
        args.repeat = 1 if quick else 3
    if args.big_size is None:
        args.big_size = parse_size("512MiB" if quick else "4GiB")
    if args.out is None:
        args.out = QUICK_OUT if quick else DEFAULT_OUT
    if args.repeat < 1 or args.size < 16 * MIB or args.big_size < 16 * MIB:
        parser.error("--repeat must be >= 1 and sizes >= 16MiB")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        return child_main(args.child)
    size: int = args.size
    big_size: int = args.big_size
    repeat: int = args.repeat
    seed: int = args.seed
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    _clean_stale_runs()
    _check_space(size, big_size)
    started = time.perf_counter()
    machine = machine_info(WORK_DIR)
    code_before = source_digest()
    image = ensure_image(size, seed)
    version2, version2_info = ensure_version2(image, size, seed)
    big_image = ensure_image(big_size, seed)
    run_dir = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=WORK_DIR))
    steps = Steps(run_dir)
    try:
        run_repeats(steps, image, repeat)
        run_dedup(steps, image, version2, repeat)
        run_memory(steps, big_image)
    finally:
        remove(run_dir)
    rows, dedup = build_rows(steps, size, big_size, version2_info)
    table = render(rows, steps)
    command = " ".join([Path(sys.executable).name, *sys.argv]) if argv is None else " ".join(argv)
    print(
        f"blobrep {blobrep.__version__} pipeline benchmark: image {format_size(size)} (seed {seed}),"
        f" {repeat} repeat(s), memory check {format_size(big_size)}, {os.cpu_count()} CPUs"
    )
    print(table)
    print(
        "ratio = ours / baseline, medians; [min-max] of the per-repeat ratios (runs alternate order)."
        f" Peak RSS: {rss_method().split(' (')[0]}."
    )
    timed = [sample for samples in steps.samples.values() for sample in samples]
    busy = sum(sample.wall_s for sample in timed)
    other = sum(sample.other_cpu_s for sample in timed)
    print(
        f"noise: the rest of the machine used {other:.1f} CPU-s during {busy:.1f} s of timed runs"
        f" ({100 * other / busy:.0f} % of one core, kernel writeback included; per run in the JSON)"
    )
    stored = steps.samples["publish_fastcdc"][0].details["stored_bytes"]
    frame_bytes = steps.samples["zstd_compress_fsync"][0].details["output_bytes"]
    print(
        f"stored: blobrep fastcdc {format_size(stored)} ({size / stored:.2f}:1),"
        f" zstd -1 {format_size(frame_bytes)} ({size / frame_bytes:.2f}:1)"
    )
    machine["loadavg_end"] = list(os.getloadavg())
    code_after = source_digest()
    if code_after != code_before:
        print("warning: blobrep's source changed during the run; results mix two versions")
    results = {
        "benchmark": "pipeline",
        "command": command,
        "machine": machine,
        "blobrep_source": {"sha256_16_start": code_before, "sha256_16_end": code_after},
        "config": {
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
        },
        "goals": {
            "publish_ratio_max": PUBLISH_RATIO_GOAL,
            "restore_ratio_max": RESTORE_RATIO_GOAL,
            "republish_new_chunks": 0,
            "dedup_v2_fastcdc_written_over_v1_stored_max": DEDUP_GOAL,
            "big_publish_peak_rss_mib_max": RSS_GOAL_MIB,
        },
        "rows": [
            {
                "operation": row.operation,
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
            key: summarize(samples, big_size if key.endswith("_big") else _size_of(key, size, version2_info))
            for key, samples in steps.samples.items()
        },
        "dedup": dedup,
        "restores_compared_with_image": steps.verified,
        "all_pass": all(row.passed is not False for row in rows),
        "table": table.splitlines(),
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    out: Path = args.out
    write_json(out, results)
    print(f"results: {out}")
    return 0


def source_digest() -> str:
    """A digest of blobrep's source files, to tell which code a result was measured on."""
    package = Path(blobrep.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def _size_of(key: str, size: int, version2: dict[str, Any]) -> int:
    return int(version2["size"]) if key.startswith("dedup_v2") else size


if __name__ == "__main__":
    sys.exit(main())
