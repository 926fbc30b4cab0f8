"""The deployment-storm benchmark's report: storm cells, the checks' rows, the storm table, the plot.

Kept apart from ``deploy.py`` (which runs things) so that what is measured and how it is
judged read in one place. The goals are fixed here, before any run.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from _harness import KIB, Sample, format_size, log, mb_per_s, median, render_table
from _report import Row, Timings

from blobrep.service import Policy

CHECK_DEPLOYMENTS: Final = 50
CHECK_REPLICAS: Final = 5
"""Checks a, d and e run on version 1.0.5 (5 replicas)."""

IDEAL_RATIO_GOAL: Final = 1.15
SCALING_GOAL: Final = 1.25
P99_RR_TOLERANCE: Final = 1.05
RSS_GOAL_MIB: Final = 500
BOUND_SHARE: Final = 0.5
"""Replica-bound runs keep the region's total bandwidth at this share of what the readers decode."""

POLICIES: Final = tuple(policy.value for policy in Policy)
LEAST_LOADED: Final = Policy.LEAST_LOADED.value
ROUND_ROBIN: Final = Policy.ROUND_ROBIN.value
RANDOM: Final = Policy.RANDOM.value

CellKey = tuple[int, str, bool]
"""(replicas, policy, replica-bound)."""


def storm_key(replicas: int, policy: str, bound: bool = False) -> str:
    """The samples' key of one storm run: ``r20-random``, ``r20-random-bound``."""
    return f"r{replicas}-{policy}" + ("-bound" if bound else "")


def ideal_seconds(deployments: int, read_bytes: int, replicas: int, bandwidth: float) -> float:
    """deployments x S / (R x bandwidth): every stored byte read, each replica at full rate."""
    return deployments * read_bytes / (replicas * bandwidth)


def bound_counts(replicas: Sequence[int], bandwidth: float, aggregate: float) -> list[int]:
    """The replica counts whose region would serve more than ``aggregate`` at ``bandwidth`` each."""
    return [count for count in replicas if count >= 2 and count * bandwidth > aggregate]


@dataclasses.dataclass(slots=True)
class Cell:
    """One (R, policy, bandwidth) of the storm: medians over the repeats."""

    replicas: int
    policy: str
    bound: bool
    """A replica-bound run: the per-replica bandwidth lowered below the CPU's ceiling."""
    bandwidth: float
    deployments: int
    makespan_s: float
    ideal_s: float
    p50_s: float
    p99_s: float
    spread: float
    errors: int
    peak_rss_mib: float
    cpu_s: float

    @property
    def ratio(self) -> float:
        return self.makespan_s / self.ideal_s

    def to_json(self) -> dict[str, Any]:
        return {
            "replicas": self.replicas,
            "policy": self.policy,
            "replica_bound_run": self.bound,
            "bandwidth_bytes_per_s": round(self.bandwidth),
            "deployments": self.deployments,
            "makespan_s": round(self.makespan_s, 4),
            "ideal_s": round(self.ideal_s, 4),
            "makespan_over_ideal": round(self.ratio, 4),
            "p50_s": round(self.p50_s, 4),
            "p99_s": round(self.p99_s, 4),
            "replica_spread_max_over_min": round(self.spread, 4),
            "errors": self.errors,
            "peak_rss_mib": round(self.peak_rss_mib, 1),
            "cpu_s_in_run": round(self.cpu_s, 3),
        }


def _spread(served: Sequence[int]) -> float:
    return max(served) / min(served) if min(served) > 0 else math.inf


def collect_cells(
    samples: Mapping[str, Sequence[Sample]],
    read_bytes: int,
    deployments: int,
    settings: Sequence[tuple[int, bool, float]],
    policies: Sequence[str],
) -> dict[CellKey, Cell]:
    """A cell per (R, bound, bandwidth) in ``settings`` and per policy, from its samples."""
    cells: dict[CellKey, Cell] = {}
    for count, bound, bandwidth in settings:
        for policy in policies:
            runs = samples[storm_key(count, policy, bound)]
            cells[count, policy, bound] = Cell(
                replicas=count,
                policy=policy,
                bound=bound,
                bandwidth=bandwidth,
                deployments=deployments,
                makespan_s=median(sample.seconds for sample in runs),
                ideal_s=ideal_seconds(deployments, read_bytes, count, bandwidth),
                p50_s=median(sample.details["p50_s"] or math.inf for sample in runs),
                p99_s=median(sample.details["p99_s"] or math.inf for sample in runs),
                spread=max(_spread(sample.details["bytes_served"]) for sample in runs),
                errors=sum(sample.details["errors"] for sample in runs),
                peak_rss_mib=max(sample.peak_rss_kib for sample in runs) / KIB,
                cpu_s=median(sample.details["cpu_s"] for sample in runs),
            )
    return cells


def policy_cell(cells: Mapping[CellKey, Cell], count: int, policy: str) -> Cell | None:
    """The cell that compares policies at ``count`` replicas: the replica-bound run if there is one."""
    return cells.get((count, policy, True)) or cells.get((count, policy, False))


def matrix_table(cells: Mapping[CellKey, Cell]) -> str:
    headers = [
        "R",
        "B/replica",
        "policy",
        "makespan s",
        "ideal s",
        "ratio",
        "speed-up",
        "p50 s",
        "p99 s",
        "spread",
        "errors",
        "cores",
        "peak RSS MiB",
    ]
    right = [True, True, False, *[True] * 10]
    lines = []
    first = min(count for count, _, _ in cells)
    for (count, policy, bound), cell in cells.items():
        base = cells[first, policy, False].makespan_s
        lines.append(
            [
                str(count),
                f"{format_size(cell.bandwidth)}/s" + (" *" if bound else ""),
                policy,
                f"{cell.makespan_s:.2f}",
                f"{cell.ideal_s:.2f}",
                f"{cell.ratio:.2f}x",
                "" if bound else f"{base / cell.makespan_s:.1f}x / {count / first:g}x",
                f"{cell.p50_s:.2f}",
                f"{cell.p99_s:.2f}",
                f"{cell.spread:.3f}",
                str(cell.errors),
                f"{cell.cpu_s / cell.makespan_s:.2f}",
                f"{cell.peak_rss_mib:.0f}",
            ]
        )
    return render_table(headers, lines, right=right)


@dataclasses.dataclass(slots=True)
class Checks:
    """What the checks measured besides the storm cells."""

    deployments: int
    damage_deployments: int
    image_size: int
    read_bytes: int
    """Stored bytes one deployment reads."""
    bandwidth: float
    zstd_copies: int
    bound_aggregate: float
    """The region's total bandwidth in the replica-bound runs."""
    damaged: dict[str, Any]


def _scaling_row(cell: Cell, floor: float, checks: Checks) -> Row:
    limit = cell.ideal_s if cell.bound else max(cell.ideal_s, floor)
    ratio = cell.makespan_s / limit
    label = (
        f"replica-bound R={cell.replicas} at {format_size(cell.bandwidth)}/s: makespan, {LEAST_LOADED}"
        if cell.bound
        else f"scaling R={cell.replicas}: makespan, {LEAST_LOADED}"
    )
    return Row(
        label,
        checks.deployments * checks.read_bytes,
        storm_key(cell.replicas, LEAST_LOADED, cell.bound),
        "ideal" if cell.bound else "max(ideal, CPU floor)",
        round(limit, 4),
        f"{ratio:.3f}x",
        f"<= {SCALING_GOAL:.2f}x",
        ratio <= SCALING_GOAL,
        {
            "ratio": round(ratio, 4),
            "ideal_s": round(cell.ideal_s, 4),
            "cpu_floor_s": round(floor, 4),
            "bound": "ideal" if cell.bound or cell.ideal_s >= floor else "cpu",
        },
    )


def _policy_rows(cells: Mapping[CellKey, Cell], replicas: Sequence[int]) -> list[Row]:
    rows: list[Row] = []
    for count in replicas:
        ours_cell = policy_cell(cells, count, LEAST_LOADED)
        if count < 2 or ours_cell is None:
            continue
        where = f"R={count} at {format_size(ours_cell.bandwidth)}/s"
        for other, limit, goal in (
            (ROUND_ROBIN, P99_RR_TOLERANCE, f"<= {P99_RR_TOLERANCE:.2f}x"),
            (RANDOM, 1.0, "< 1.00x"),
        ):
            theirs_cell = policy_cell(cells, count, other)
            if theirs_cell is None:
                continue
            ours, theirs = ours_cell.p99_s, theirs_cell.p99_s
            ratio = ours / theirs
            rows.append(
                Row(
                    f"p99 {where}: {LEAST_LOADED} vs {other}",
                    0,
                    None,
                    f"{other} p99",
                    round(theirs, 4),
                    f"{ratio:.3f}x",
                    goal,
                    ratio <= limit if other == ROUND_ROBIN else ratio < limit,
                    {
                        "least_loaded_p99_s": round(ours, 4),
                        "other_p99_s": round(theirs, 4),
                        "replica_bound_run": ours_cell.bound,
                        "bandwidth_bytes_per_s": round(ours_cell.bandwidth),
                    },
                )
            )
    return rows


def _damaged_rows(checks: Checks) -> list[Row]:
    damaged = checks.damaged
    run = damaged["deploy"]
    before, after = damaged["verify_before"], damaged["verify_after"]
    # The chunks the damage reaches: a deleted pack takes every chunk in it.
    hurt = damaged["damage"]["damaged_chunks"]
    exact = run["succeeded"] == run["count"] == checks.damage_deployments and run["errors"] == 0
    return [
        Row(
            f"damaged replica: {checks.damage_deployments} deployments",
            checks.damage_deployments * checks.read_bytes,
            "damaged",
            f"{len(damaged['damage']['corrupted'])} corrupt + {len(damaged['damage']['deleted'])} deleted",
            None,
            f"{run['succeeded']}/{run['count']} exact",
            "all exact, 0 errors",
            exact and before["missing"] + before["corrupt"] == hurt,
            {
                "failovers": run["failovers"],
                "repairs": run["repairs"],
                "verify_before_problems": before["missing"] + before["corrupt"],
            },
        ),
        Row(
            f"damaged replica verifies clean after ({after['checked_chunks']} chunks)",
            0,
            None,
            "",
            None,
            f"{after['missing']} missing, {after['corrupt']} corrupt",
            "ok",
            bool(after["ok"]),
        ),
    ]


def build_rows(
    samples: Mapping[str, Sequence[Sample]],
    cells: Mapping[CellKey, Cell],
    replicas: Sequence[int],
    checks: Checks,
) -> list[Row]:
    """The rows of checks a to e (see the ``deploy.py`` docstring)."""
    timings = Timings(samples)
    med = timings.median
    rows: list[Row] = []

    # a. 50 deployments with 5 replicas against the ideal.
    ideal_50 = ideal_seconds(CHECK_DEPLOYMENTS, checks.read_bytes, CHECK_REPLICAS, checks.bandwidth)
    ratio = med("ideal") / ideal_50
    rows.append(
        Row(
            f"{CHECK_DEPLOYMENTS} deployments, R={CHECK_REPLICAS}, {LEAST_LOADED}",
            CHECK_DEPLOYMENTS * checks.read_bytes,
            "ideal",
            "ideal D*S/(R*B)",
            round(ideal_50, 4),
            f"{ratio:.3f}x",
            f"<= {IDEAL_RATIO_GOAL:.2f}x",
            ratio <= IDEAL_RATIO_GOAL,
            {"ratio": round(ratio, 4), "ideal_s": round(ideal_50, 4)},
        )
    )

    # b. Scaling: the makespan follows the ideal down to the CPU floor; a replica-bound run
    # follows the ideal (which shows the replicas, not the CPU, set its pace).
    floor = med("unthrottled")
    for bound in (False, True):
        for count in replicas:
            cell = cells.get((count, LEAST_LOADED, bound))
            if cell is not None:
                rows.append(_scaling_row(cell, floor, checks))

    # c. p99 of least-loaded against round-robin and random, where the replicas are the bottleneck.
    rows.extend(_policy_rows(cells, replicas))

    # d. Unthrottled local reads against zstd -d on one core, and memory.
    unthrottled = samples["unthrottled"]
    errors = sum(sample.details["errors"] for sample in unthrottled)
    rss = max(sample.peak_rss_kib for sample in unthrottled) / KIB
    image_bytes = checks.deployments * checks.image_size
    rows.append(
        Row(
            f"{checks.deployments} deployments, R={CHECK_REPLICAS}, no throttle",
            image_bytes,
            "unthrottled",
            f"zstd -d -T1 x{checks.zstd_copies}",
            round(med("zstd"), 4),
            timings.ratio_text("unthrottled", "zstd"),
            f"0 errors, RSS < {RSS_GOAL_MIB} MiB",
            errors == 0 and rss < RSS_GOAL_MIB,
            {
                "ratio": round(med("unthrottled") / med("zstd"), 4),
                "image_mb_s": round(mb_per_s(image_bytes, med("unthrottled")), 1),
                "zstd_mb_s": round(mb_per_s(checks.zstd_copies * checks.image_size, med("zstd")), 1),
                "errors": errors,
                "peak_rss_mib": round(rss, 1),
            },
        )
    )
    rows.append(Row(f"baseline zstd -d -T1 x{checks.zstd_copies}", image_bytes, "zstd", goal="ref"))
    storm = list(cells.values())
    storm_errors = sum(cell.errors for cell in storm)
    storm_rss = max(cell.peak_rss_mib for cell in storm)
    rows.append(
        Row(
            f"every storm run ({len(storm)} x {checks.deployments} deployments)",
            0,
            None,
            "",
            None,
            f"max {storm_rss:.0f} MiB",
            f"0 errors, RSS < {RSS_GOAL_MIB} MiB",
            storm_errors == 0 and storm_rss < RSS_GOAL_MIB,
            {"errors": storm_errors, "peak_rss_mib": round(storm_rss, 1)},
        )
    )

    # e. The damaged replica.
    rows.extend(_damaged_rows(checks))
    return rows


def _minor_label(value: float, _: object) -> str:
    """Minor ticks of a log axis labelled at 2, 3 and 5 times a power of ten only."""
    if value <= 0:
        return ""
    return f"{value:g}" if round(value / 10 ** math.floor(math.log10(value))) in (2, 3, 5) else ""


def save_plot(
    path: Path,
    cells: Mapping[CellKey, Cell],
    replicas: Sequence[int],
    policies: Sequence[str],
    floor_s: float,
    title: str,
) -> Path | None:
    """Three panels against R, one line per policy.

    Makespan and p99 at the nominal bandwidth (log-log, with the ideal and the CPU floor), and
    p99 over the ideal in the runs where the replicas are the bottleneck (the replica-bound
    run where there is one), which is where the policies can differ.
    """
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
        from matplotlib.ticker import (  # type: ignore[import-not-found, unused-ignore]
            FormatStrFormatter,
            FuncFormatter,
            NullFormatter,
        )
    except ImportError:
        log("matplotlib is not installed (pip install -e '.[bench]'): no plot")
        return None
    figure, (left, middle, right) = plt.subplots(1, 3, figsize=(17, 5), constrained_layout=True)
    for policy in policies:
        nominal = [cells[count, policy, False] for count in replicas]
        left.plot(replicas, [cell.makespan_s for cell in nominal], marker="o", label=policy)
        middle.plot(replicas, [cell.p99_s for cell in nominal], marker="o", label=policy)
        judged = [policy_cell(cells, count, policy) for count in replicas]
        right.plot(
            replicas,
            [cell.p99_s / cell.ideal_s if cell is not None else math.nan for cell in judged],
            marker="o",
            label=policy,
        )
    ideal = [cells[count, policies[0], False].ideal_s for count in replicas]
    left.plot(replicas, ideal, color="black", linestyle="--", label="ideal D*S/(R*B)")
    for axes in (left, middle):
        axes.axhline(floor_s, color="grey", linestyle=":", label="CPU floor (no throttle)")
        axes.set_yscale("log")
        axes.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        axes.yaxis.set_minor_formatter(FuncFormatter(_minor_label))
    right.axhline(1.0, color="black", linestyle="--", label="ideal")
    for axes in (left, middle, right):
        axes.set_xscale("log")
        axes.set_xticks(list(replicas), [str(count) for count in replicas])
        axes.xaxis.set_minor_formatter(NullFormatter())
        axes.set_xlabel("replicas R")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
    left.set_ylabel("makespan (s)")
    left.set_title("makespan")
    middle.set_ylabel("p99 deployment time (s)")
    middle.set_title("p99 deployment time")
    right.set_ylabel("p99 / ideal makespan")
    right.set_title("p99 where the replicas are the bottleneck")
    figure.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
