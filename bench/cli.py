#!/usr/bin/env python3
"""The CLI benchmark: how fast the ``blobrep`` command starts, and the memory of a scale set.

Run from the repository root::

    .venv/bin/python bench/cli.py [--runs 21] [--size 1GiB] [--instances 50] [--repeat 1]
                                  [--seed 12345] [--out bench/results/cli.json] [--quick]

A user meets the CLI first through its start-up and, deploying a scale set to disk files,
through its memory. Against baselines measured in the same run:

1. Start-up. ``blobrep --version`` and ``blobrep --help`` against ``python -c pass`` (goal:
   within 3x), and ``blobrep sig image-version show`` of the benchmark's version on the
   prepared home against the same baseline (goal: within 5x: it also opens the home and its
   catalog). Both sides run on this virtual environment's interpreter (``blobrep`` is its
   console script), each run a fresh process timed from spawn to exit, its output discarded.
   Each command runs ``--runs`` times, the commands in an order that rotates from run to
   run, after one warm-up run each that is not counted (it measures the command's peak
   RSS, under GNU ``time``); the median is kept, and the paired ratios (ours over the
   baseline of the same round) give the range. The children run without
   ``PYTHONDONTWRITEBYTECODE``, so the warm-up leaves compiled bytecode behind, as an
   installed package has.
2. Scale-set memory. ``blobrep vmss create --instance-count N --output-dir D`` of a
   ``--size`` VM-like image (the synthetic generator, seed ``--seed``; 1 GiB and 50 by
   default) in a region of two replicas: its peak RSS has the goal < 300 MiB, and is shown
   against the baseline of the same command without ``--output-dir`` (read and discard), run
   beside it. Peak RSS comes from GNU ``time`` when installed (see ``rss_method``). The disk
   files are sparse where the image has zeros; the bytes they hold are reported, and the run
   stops before writing them if the work directory lacks the room (about 34 GiB for 50
   copies of the default 1 GiB image).

``--quick`` (about 20 seconds) runs 9 start-up runs per command and the scale set on a
64 MiB image. Results go to ``--out`` as JSON; the table is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from _harness import (
    KIB,
    MIB,
    Sample,
    cpu_busy_s,
    disk_usage,
    format_size,
    load1,
    log,
    median,
    parse_size,
    run_child,
    settle,
    warm,
)
from _images import SEED, WORK_DIR, ensure_image
from _report import Row, Timings, noise_note, ratio_note, render
from _run import Run, results_path

import blobrep

BENCHMARK: Final = "cli"
GALLERY: Final = "bench"
IMAGE_NAME: Final = "vm"
VERSION: Final = "1.0.0"
REGION: Final = "westcentralus"
REPLICAS: Final = 2
VERSION_ID: Final = f"/galleries/{GALLERY}/images/{IMAGE_NAME}/versions/{VERSION}"

DEFAULT_RUNS: Final = 21
QUICK_RUNS: Final = 9
DEFAULT_SIZE: Final = 1024 * MIB
QUICK_SIZE: Final = 64 * MIB
DEFAULT_INSTANCES: Final = 50

START_GOAL: Final = 3.0
"""``--version`` and ``--help`` over ``python -c pass``, at most."""
SHOW_GOAL: Final = 5.0
"""``sig image-version show`` over ``python -c pass``, at most."""
RSS_GOAL_MIB: Final = 300
"""Peak RSS of the scale set writing files, below."""

BASELINE: Final = "python -c pass"
STARTUP: Final = {
    "version": ("blobrep --version", START_GOAL),
    "help": ("blobrep --help", START_GOAL),
    "show": ("blobrep sig image-version show", SHOW_GOAL),
}
"""Start-up keys: what each runs, and its goal over the baseline."""
DISK_MARGIN: Final = 1024 * MIB
"""Free space kept beside the scale set's files."""


class BenchmarkError(RuntimeError):
    """The benchmark could not set up or run what it measures."""


# --- commands ---------------------------------------------------------------------------------


def blobrep_command() -> list[str]:
    """``blobrep`` as a user runs it: this environment's console script (on its interpreter)."""
    script = Path(sys.executable).parent / "blobrep"
    if not script.is_file():
        raise BenchmarkError(f"{script} is missing: install blobrep into this environment first")
    return [str(script)]


def child_env(home: Path) -> dict[str, str]:
    """This environment without ``PYTHONDONTWRITEBYTECODE`` or ``BLOBREP_*``, the home set."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name != "PYTHONDONTWRITEBYTECODE" and not name.startswith("BLOBREP_")
    }
    env["BLOBREP_HOME"] = str(home)
    return env


def startup_commands(home: Path) -> dict[str, list[str]]:
    """The start-up runs by key: the baseline and each command of :data:`STARTUP`."""
    blobrep_cli = blobrep_command()
    show = ["sig", "image-version", "show", "-r", GALLERY, "-i", IMAGE_NAME, "-e", VERSION]
    return {
        "baseline": [sys.executable, "-c", "pass"],
        "version": [*blobrep_cli, "--version"],
        "help": [*blobrep_cli, "--help"],
        "show": [*blobrep_cli, "--home", str(home), *show],
    }


def spawn(argv: Sequence[str], env: dict[str, str], peak_rss_kib: int) -> Sample:
    """Run ``argv`` once, timed from spawn to exit (no wrapper: a wrapper's start-up would count).

    ``wait4`` of the child would report this process's peak RSS rather than the child's (see
    ``rss_method``), so the sample carries ``peak_rss_kib``, measured in a run of its own.
    """
    load = load1()
    busy = cpu_busy_s()
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors, env=env
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        busy = cpu_busy_s() - busy
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip()
            raise BenchmarkError(f"{' '.join(argv)} failed: {message}")
    cpu = usage.ru_utime + usage.ru_stime
    return Sample(
        seconds=seconds,
        wall_s=seconds,
        peak_rss_kib=peak_rss_kib,
        cpu_s=cpu,
        load1=load,
        other_cpu_s=max(0.0, busy - cpu),
    )


# --- steps ------------------------------------------------------------------------------------


class Steps:
    """The benchmark's runs, each recorded as a :class:`Sample` under its key."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.home = run_dir / "home"
        self.env = child_env(self.home)
        self.samples: dict[str, list[Sample]] = {}

    def record(self, key: str, sample: Sample) -> None:
        self.samples.setdefault(key, []).append(sample)

    def blobrep(self, *args: str) -> str:
        """Run ``blobrep --home HOME ARGS`` (untimed) and return its standard output."""
        argv = [*blobrep_command(), "--home", str(self.home), *args]
        done = subprocess.run(argv, capture_output=True, text=True, env=self.env, check=False)
        if done.returncode != 0:
            raise BenchmarkError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
        return done.stdout

    def setup(self, image: Path) -> dict[str, Any]:
        """The home: a gallery, a definition and version 1.0.0 of ``image`` in two replicas."""
        warm(image)
        started = time.perf_counter()
        self.blobrep(*f"sig create -r {GALLERY} -l {REGION}".split())
        definition = f"-r {GALLERY} -i {IMAGE_NAME} --publisher bench --offer synthetic --sku vm"
        self.blobrep(*f"sig image-definition create {definition} --os-type Linux".split())
        version = f"-r {GALLERY} -i {IMAGE_NAME} -e {VERSION}"
        regions = f"--target-regions {REGION}={REPLICAS}"
        self.blobrep(*f"sig image-version create {version} {regions} --source".split(), str(image))
        seconds = time.perf_counter() - started
        shown = json.loads(self.blobrep(*f"sig image-version show {version}".split()))
        profile = shown["storageProfile"]
        log(f"  published {VERSION} into {REGION}={REPLICAS} in {seconds:.1f} s")
        settle()
        return {
            "publish_seconds": round(seconds, 3),
            "size": profile["sizeInBytes"],
            "stored_bytes": profile["storedBytes"],
            "chunks": profile["chunks"],
        }

    def startup(self, runs: int) -> None:
        """Every start-up command ``runs`` times after a warm-up, in an order that rotates.

        The warm-up runs under :func:`run_child`, which measures each command's peak RSS.
        """
        commands = startup_commands(self.home)
        keys = list(commands)
        peaks = {key: run_child(argv, env=self.env).peak_rss_kib for key, argv in commands.items()}
        for round_ in range(runs):
            shift = round_ % len(keys)
            for key in [*keys[shift:], *keys[:shift]]:
                self.record(key, spawn(commands[key], self.env, peaks[key]))
        for key in keys:
            seconds = median(sample.seconds for sample in self.samples[key])
            log(f"  {key:<9} median {1000 * seconds:7.1f} ms over {runs} runs")

    def scale_set(self, key: str, instances: int, output_dir: Path | None) -> Sample:
        """``vmss create --instance-count N [--output-dir D]``: wall time, peak RSS, its summary."""
        settle()
        argv = [*blobrep_command(), "--home", str(self.home), "vmss", "create"]
        argv += ["--image", VERSION_ID, "--instance-count", str(instances)]
        if output_dir is not None:
            argv += ["--output-dir", str(output_dir)]
        load = load1()
        busy = cpu_busy_s()
        finished = run_child(argv, env=self.env)
        busy = cpu_busy_s() - busy
        summary = json.loads(finished.stdout)
        if summary["errors"]:
            raise BenchmarkError(f"{key}: {summary['errors']} deployment(s) failed: {summary['failures'][0]}")
        cpu = finished.user_s + finished.system_s
        details: dict[str, Any] = {
            "instances": instances,
            "makespan_s": round(summary["makespanSeconds"], 4),
            "p50_s": round(summary["p50Seconds"], 4),
            "p99_s": round(summary["p99Seconds"], 4),
        }
        if output_dir is not None:
            details["output_allocated_bytes"] = disk_usage(output_dir)
            shutil.rmtree(output_dir)
        sample = Sample(
            seconds=finished.seconds,
            wall_s=finished.seconds,
            peak_rss_kib=finished.peak_rss_kib,
            cpu_s=cpu,
            load1=load,
            other_cpu_s=max(0.0, busy - cpu),
            details=details,
        )
        self.record(key, sample)
        log(
            f"  {key:<9} {sample.seconds:8.2f} s  peak RSS {sample.peak_rss_kib / KIB:7.1f} MiB"
            f"  makespan {details['makespan_s']} s  cpu {cpu:.1f} s"
        )
        return sample


def nonzero_bytes(image: Path) -> int:
    """The bytes of ``image`` in MiB blocks that are not all zeros: at least what a disk file holds."""
    zeros = bytes(MIB)
    total = 0
    with open(image, "rb", buffering=0) as source:
        while block := source.read(MIB):
            if block != zeros[: len(block)]:
                total += len(block)
    return total


def check_room(where: Path, instances: int, image: Path) -> int:
    """The bytes the scale set's files will hold at most; exit if ``where`` lacks the room."""
    needed = instances * nonzero_bytes(image)
    free = shutil.disk_usage(where).free
    if free < needed + DISK_MARGIN:
        raise SystemExit(
            f"{where} has {format_size(free)} free; {instances} disk files of {image.name} need about"
            f" {format_size(needed)} (and {format_size(DISK_MARGIN)} to spare): free some space, or"
            " choose a smaller --size or fewer --instances"
        )
    return needed


# --- report -----------------------------------------------------------------------------------


def build_rows(samples: dict[str, list[Sample]], instances: int, size: int) -> list[Row]:
    """The start-up rows against the baseline, then the scale set against read-and-discard."""
    timings = Timings(samples)
    base = timings.median("baseline")
    rows: list[Row] = []
    for key, (label, goal) in STARTUP.items():
        ratio = timings.median(key) / base
        rows.append(
            Row(
                label,
                0,
                key,
                BASELINE,
                round(base, 4),
                timings.ratio_text(key, "baseline"),
                f"<= {goal:.2f}x",
                ratio <= goal,
                {
                    "ratio": round(ratio, 4),
                    "median_s": round(timings.median(key), 4),
                    "paired": timings.paired(key, "baseline"),
                },
            )
        )
    rows.append(Row(BASELINE, 0, "baseline", goal="ref", values={"median_s": round(base, 4)}))
    files = max(sample.peak_rss_kib for sample in samples["files"]) / KIB
    discard = max(sample.peak_rss_kib for sample in samples["discard"]) / KIB
    allocated = max(sample.details["output_allocated_bytes"] for sample in samples["files"])
    rows.append(
        Row(
            f"vmss create --instance-count {instances} --output-dir",
            instances * size,
            "files",
            "read and discard",
            round(timings.median("discard"), 4),
            f"{files / discard:.2f}x RSS",
            f"RSS < {RSS_GOAL_MIB} MiB",
            files < RSS_GOAL_MIB,
            {
                "peak_rss_mib": round(files, 1),
                "baseline_peak_rss_mib": round(discard, 1),
                "rss_ratio": round(files / discard, 4),
                "time_ratio": round(timings.median("files") / timings.median("discard"), 4),
                "output_allocated_bytes": allocated,
            },
        )
    )
    rows.append(
        Row(
            f"vmss create --instance-count {instances} (read and discard)",
            instances * size,
            "discard",
            goal="ref",
            values={"peak_rss_mib": round(discard, 1)},
        )
    )
    return rows


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the CLI: start-up against a bare interpreter, a scale set's memory."
    )
    parser.add_argument(
        "--runs",
        type=int,
        help=f"timed runs per start-up command (default {DEFAULT_RUNS}; {QUICK_RUNS} with --quick)",
    )
    parser.add_argument(
        "--size",
        type=parse_size,
        help=f"image size for the scale set (default {format_size(DEFAULT_SIZE)};"
        f" {format_size(QUICK_SIZE)} with --quick)",
    )
    parser.add_argument(
        "--instances",
        type=int,
        default=DEFAULT_INSTANCES,
        help=f"scale-set size (default {DEFAULT_INSTANCES})",
    )
    parser.add_argument("--repeat", type=int, default=1, help="scale-set runs of each kind (default 1)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"synthetic image seed (default {SEED})")
    default_out, quick_out = (
        results_path(BENCHMARK, quick=quick).relative_to(Path(__file__).resolve().parent.parent)
        for quick in (False, True)
    )
    parser.add_argument(
        "--out", type=Path, help=f"JSON results (default {default_out}; {quick_out} with --quick)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK_RUNS} start-up runs, the scale set on a {format_size(QUICK_SIZE)} image",
    )
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    if args.runs is None:
        args.runs = QUICK_RUNS if quick else DEFAULT_RUNS
    if args.size is None:
        args.size = QUICK_SIZE if quick else DEFAULT_SIZE
    if args.out is None:
        args.out = results_path(BENCHMARK, quick=quick)
    if args.runs < 1 or args.repeat < 1 or not 1 <= args.instances <= 1000:
        parser.error("--runs and --repeat must be >= 1, --instances 1..1000")
    if args.size < MIB:
        parser.error("--size must be at least 1MiB")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    size: int = args.size
    instances: int = args.instances
    # The image, and one copy of its chunks per replica (the files are checked once known).
    run = Run.start(BENCHMARK, argv, needed_bytes=(1 + REPLICAS) * size)
    image = ensure_image(size, args.seed)
    with run.directory("cli-") as run_dir:
        steps = Steps(run_dir)
        log(f"publishing {format_size(size)} image as {VERSION_ID} (untimed)")
        setup = steps.setup(image)
        log(f"start-up: {args.runs} runs per command after a warm-up, order rotating")
        steps.startup(args.runs)
        needed = check_room(WORK_DIR, instances, image)
        log(f"scale set: {instances} deployments, {args.repeat} run(s) each way")
        log(f"  its files will hold at most {format_size(needed)}")
        warm(steps.home)
        for round_ in range(args.repeat):
            order = [("discard", None), ("files", run_dir / "vms")]
            for key, output_dir in order if round_ % 2 == 0 else reversed(order):
                steps.scale_set(key, instances, output_dir)
    rows = build_rows(steps.samples, instances, size)
    table = render(rows, steps.samples)
    print(
        f"blobrep {blobrep.__version__} CLI benchmark: start-up over {args.runs} runs each;"
        f" scale set of {instances} on a {format_size(size)} image (seed {args.seed},"
        f" {setup['chunks']} chunks), {REPLICAS} replicas; {os.cpu_count()} CPUs"
    )
    print(table)
    allocated = rows[-2].values["output_allocated_bytes"]
    print(
        f"MB/s: of image bytes deployed. The scale set's files held {format_size(allocated)} on disk"
        " (sparse). Start-up rows: wall time of a fresh process, spawn to exit; peak RSS from the"
        " warm-up run. " + ratio_note()
    )
    print(noise_note(steps.samples))

    def size_of(key: str) -> int:
        return instances * size if key in ("files", "discard") else 0

    run.finish(
        args.out,
        config={
            "runs": args.runs,
            "image_size": size,
            "seed": args.seed,
            "image": str(image),
            "instances": instances,
            "replicas": REPLICAS,
            "repeat": args.repeat,
            "quick": args.quick,
            "version_id": VERSION_ID,
            "commands": {key: " ".join(argv) for key, argv in startup_commands(Path("HOME")).items()},
        },
        goals={
            "version_and_help_over_python_c_pass_max": START_GOAL,
            "show_over_python_c_pass_max": SHOW_GOAL,
            "scale_set_files_peak_rss_mib_max": RSS_GOAL_MIB,
        },
        rows=rows,
        samples=steps.samples,
        size_of=size_of,
        extra={"setup": setup},
        table=table,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
