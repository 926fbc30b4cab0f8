"""The report the benchmarks share: result rows, medians and ratios, the table and its notes."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from _harness import KIB, Sample, mb_per_s, median, render_table, rss_method

Samples = Mapping[str, Sequence[Sample]]
"""The samples of a benchmark's runs, by operation key."""

_HEADERS = ["operation", "MB/s", "median s", "baseline", "base s", "ratio", "goal", "result", "peak RSS MiB"]
_RIGHT = [False, True, True, False, True, True, False, False, True]


@dataclasses.dataclass(slots=True)
class Row:
    """One line of the table: an operation, what it is compared with, and whether it meets its goal."""

    operation: str
    size: int
    key: str | None
    baseline: str = ""
    baseline_s: float | None = None
    ratio: str = ""
    goal: str = ""
    passed: bool | None = None
    values: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "operation": self.operation.strip(),
            "key": self.key,
            "size": self.size,
            "baseline": self.baseline,
            "baseline_median_s": self.baseline_s,
            "ratio_text": self.ratio,
            "goal": self.goal,
            "pass": self.passed,
            **self.values,
        }


def pct(value: float) -> str:
    return f"{100 * value:.1f} %"


class Timings:
    """Medians of the samples under each key, and ratios of ours to a baseline."""

    def __init__(self, samples: Samples) -> None:
        self.samples = samples

    def median(self, key: str) -> float:
        return median(sample.seconds for sample in self.samples[key])

    def paired(self, ours: str, base: str) -> list[float]:
        """The per-repeat ratios, ours / baseline, of the runs of each repeat."""
        pairs = zip(self.samples[ours], self.samples[base], strict=False)
        return [round(a.seconds / b.seconds, 4) for a, b in pairs]

    def ratio_text(self, ours: str, base: str) -> str:
        """The ratio of medians, and the range of the per-repeat (paired) ratios if several."""
        text = f"{self.median(ours) / self.median(base):.2f}x"
        pairs = self.paired(ours, base)
        return f"{text} [{min(pairs):.2f}-{max(pairs):.2f}]" if len(pairs) > 1 else text


def render(rows: Sequence[Row], samples: Samples) -> str:
    """The table: each row's throughput, median time and peak RSS from the samples of its key."""
    lines: list[list[str]] = []
    for row in rows:
        runs = samples[row.key] if row.key else []
        seconds = median(sample.seconds for sample in runs) if runs else None
        rss = max(sample.peak_rss_kib for sample in runs) / KIB if runs else None
        lines.append(
            [
                row.operation,
                f"{mb_per_s(row.size, seconds):.0f}" if seconds and row.size else "",
                f"{seconds:.3f}" if seconds else "",
                row.baseline,
                f"{row.baseline_s:.3f}" if row.baseline_s is not None else "",
                row.ratio,
                row.goal,
                {None: "-", True: "PASS", False: "FAIL"}[row.passed],
                f"{rss:.0f}" if rss is not None else "",
            ]
        )
    return render_table(_HEADERS, lines, right=_RIGHT)


def ratio_note() -> str:
    """What the ratio column means, and how peak RSS was measured."""
    return (
        "ratio = ours / baseline, medians; [min-max] of the per-repeat ratios (runs alternate order)."
        f" Peak RSS: {rss_method().split(' (')[0]}."
    )


def noise_note(samples: Samples) -> str:
    """How much CPU the rest of the machine used during the timed runs."""
    timed = [sample for runs in samples.values() for sample in runs]
    busy = sum(sample.wall_s for sample in timed)
    other = sum(sample.other_cpu_s for sample in timed)
    return (
        f"noise: the rest of the machine used {other:.1f} CPU-s during {busy:.1f} s of timed runs"
        f" ({100 * other / busy:.0f} % of one core, kernel writeback included; per run in the JSON)"
    )
