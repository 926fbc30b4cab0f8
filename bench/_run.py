"""The frame of a benchmark's ``main``: its common options, the work directory, the results file.

Every benchmark takes ``--size``, ``--repeat``, ``--seed``, ``--out``, ``--quick`` and the
hidden ``--child SPEC``, works in a ``run-{pid}-*`` directory under ``bench/.work/`` and writes
its results as JSON under ``bench/results/``, with the machine it ran on and a digest of the
blobrep source it measured.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from _harness import (
    clean_stale_runs,
    format_size,
    log,
    machine_info,
    parse_size,
    remove,
    source_digest,
    summarize,
    tree_bytes,
    write_json,
)
from _images import BENCH_DIR, IMAGES_DIR, SEED, WORK_DIR
from _report import Row, Samples

import blobrep

_PACKAGE: Final = Path(blobrep.__file__).parent


# --- options --------------------------------------------------------------------------------


def results_path(benchmark: str, *, quick: bool) -> Path:
    """Where ``benchmark`` writes its results by default."""
    return BENCH_DIR / "results" / (f"{benchmark}-quick.json" if quick else f"{benchmark}.json")


def add_size_options(parser: argparse.ArgumentParser) -> None:
    """``--size`` and ``--repeat``."""
    parser.add_argument("--size", type=parse_size, help="image size (default 1GiB; 256MiB with --quick)")
    parser.add_argument("--repeat", type=int, help="runs per timing, median kept (default 3; 1 with --quick)")


def add_run_options(
    parser: argparse.ArgumentParser, benchmark: str, *, quick_help: str, seed: int = SEED
) -> None:
    """``--seed`` (default ``seed``), ``--out``, ``--quick`` and the hidden ``--child SPEC``."""
    parser.add_argument("--seed", type=int, default=seed, help=f"synthetic image seed (default {seed})")
    default_out, quick_out = (
        results_path(benchmark, quick=quick).relative_to(BENCH_DIR.parent) for quick in (False, True)
    )
    parser.add_argument(
        "--out", type=Path, help=f"JSON results (default {default_out}; {quick_out} with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--child", metavar="SPEC", help=argparse.SUPPRESS)


def fill_defaults(args: argparse.Namespace, benchmark: str) -> None:
    """The defaults of ``--size``, ``--repeat`` and ``--out``, which depend on ``--quick``."""
    quick = bool(args.quick)
    if args.size is None:
        args.size = parse_size("256MiB" if quick else "1GiB")
    if args.repeat is None:
        args.repeat = 1 if quick else 3
    if args.out is None:
        args.out = results_path(benchmark, quick=quick)


# --- the run --------------------------------------------------------------------------------


class Run:
    """One run of a benchmark, from its start (:meth:`start`) to its results file (:meth:`finish`)."""

    def __init__(self, benchmark: str, argv: Sequence[str] | None) -> None:
        self.benchmark = benchmark
        self.started = time.perf_counter()
        self.machine = machine_info(WORK_DIR)
        self.code_before = source_digest(_PACKAGE)
        self.command = " ".join([Path(sys.executable).name, *sys.argv]) if argv is None else " ".join(argv)

    @classmethod
    def start(cls, benchmark: str, argv: Sequence[str] | None, *, needed_bytes: int) -> Run:
        """Prepare the work directory and fail early if it has no room for ``needed_bytes``.

        Run directories left by benchmark processes that no longer exist are removed first;
        ``needed_bytes`` counts the images too, so the ones already cached are subtracted.
        """
        WORK_DIR.mkdir(parents=True, exist_ok=True)
        for stale in clean_stale_runs(WORK_DIR):
            log(f"removed stale {stale}")
        free = shutil.disk_usage(WORK_DIR).free
        needed = needed_bytes - tree_bytes(IMAGES_DIR)
        if free < needed:
            raise SystemExit(
                f"{WORK_DIR} has {format_size(free)} free; this run needs about {format_size(needed)}"
            )
        return cls(benchmark, argv)

    @contextmanager
    def directory(self, label: str = "") -> Iterator[Path]:
        """A fresh ``run-{pid}-{label}*`` directory for the run's files, removed afterwards."""
        run_dir = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-{label}", dir=WORK_DIR))
        try:
            yield run_dir
        finally:
            remove(run_dir)

    def finish(
        self,
        out: Path,
        *,
        config: dict[str, Any],
        goals: dict[str, Any],
        rows: Sequence[Row],
        samples: Samples,
        size_of: Callable[[str], int],
        extra: dict[str, Any],
        table: str,
    ) -> None:
        """Write the results to ``out``: ``extra`` comes after the operations (``size_of`` their sizes)."""
        self.machine["loadavg_end"] = list(os.getloadavg())
        code_after = source_digest(_PACKAGE)
        if code_after != self.code_before:
            print("warning: blobrep's source changed during the run; results mix two versions")
        results = {
            "benchmark": self.benchmark,
            "command": self.command,
            "machine": self.machine,
            "blobrep_source": {"sha256_16_start": self.code_before, "sha256_16_end": code_after},
            "config": config,
            "goals": goals,
            "rows": [row.to_json() for row in rows],
            "operations": {key: summarize(runs, size_of(key)) for key, runs in samples.items()},
            **extra,
            "all_pass": all(row.passed is not False for row in rows),
            "table": table.splitlines(),
            "elapsed_s": round(time.perf_counter() - self.started, 1),
        }
        write_json(out, results)
        print(f"results: {out}")
