"""The regions benchmark's report: its rows, goals and notes, from the samples and what each repeat found.

Kept apart from ``regions.py`` (which runs things) so that what is measured and how it is judged
read in one place. The goals are fixed here, before any run.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Any, Final

from _deploy_report import IDEAL_RATIO_GOAL
from _harness import format_size, median
from _regions_children import DEPLOY_REPLICAS, KINDS, OBJECT_KINDS, TARGET_REPLICAS
from _report import Row, Samples, Timings, noise_note, pct, render

import blobrep

REPLICATE_RATE_GOAL: Final = 0.8
"""Our replication rate over obstore's plain bulk upload of the same files, S3 and Azure."""
COPIES: Final = 3 * TARGET_REPLICAS


@dataclass(slots=True)
class Results:
    """Everything a run measured."""

    samples: Samples
    rounds: list[dict[str, Any]]
    deploys: dict[str, Any]
    size: int
    vms: int
    version2: dict[str, Any]

    def median_of(self, pick: Any) -> int:
        return int(median(pick(round_) for round_ in self.rounds))

    def source_bytes(self) -> int:
        """Stored bytes of 1.0.0 in the source replica (its chunk files)."""
        return self.median_of(lambda round_: round_["source_chunk_bytes"])

    def written(self, kind: str) -> int:
        """Stored bytes 1.0.0 put into the kind's 6 target replicas (listed after the run)."""
        return self.median_of(lambda round_: sum(round_["v1"][kind].values()))

    def moved(self, kind: str) -> int:
        """Stored bytes 1.0.1 added to the kind's 6 target replicas."""
        return self.median_of(
            lambda round_: sum(round_["v2"][kind].values()) - sum(round_["v1"][kind].values())
        )

    def served(self) -> int:
        return self.vms * int(self.deploys["read_bytes_per_deployment"])

    def size_of(self, key: str) -> int:
        kind = key.rsplit("-", 1)[-1]
        if key.startswith("publish-base-"):
            return self.source_bytes()
        if key.startswith("replicate-v2-"):
            return self.moved(kind)
        if key.startswith("replicate-"):
            return self.written(kind)
        if key.startswith("deploy-"):
            return self.served()
        return self.size

    def goals(self) -> dict[str, Any]:
        return {
            "replicate_rate_over_obstore_bulk_put_min": dict.fromkeys(OBJECT_KINDS, REPLICATE_RATE_GOAL),
            "scale_set_makespan_over_ideal_max": IDEAL_RATIO_GOAL,
            "scale_set_errors": 0,
        }

    def extra(self) -> dict[str, Any]:
        per_kind = {
            kind: {
                "v1_written_bytes": self.written(kind),
                "v1_expected_bytes": COPIES * self.source_bytes(),
                "v2_moved_bytes": self.moved(kind),
                "v2_moved_over_image": round(self.moved(kind) / self.size, 5),
                "v2_moved_per_replica_over_image": round(self.moved(kind) / COPIES / self.size, 5),
            }
            for kind in KINDS
        }
        return {
            "per_kind": per_kind,
            "repeats": self.rounds,
            "scale_sets": self.deploys,
            "version2": self.version2,
        }


def _stored_check(results: Results) -> dict[str, Any]:
    """Each kind's publish stored the same bytes as the local source (the baselines' files)."""
    return {kind: [round_["publish"][kind]["stored_bytes"] for round_ in results.rounds] for kind in KINDS}


def build_rows(results: Results) -> list[Row]:
    """The table's rows, step by step: publish, replicate, scale sets, the 1 % delta."""
    timings = Timings(results.samples)
    rows: list[Row] = []
    stored = _stored_check(results)
    for kind in KINDS:
        rows.extend(_publish_rows(results, timings, kind, stored[kind]))
    for kind in KINDS:
        rows.extend(_replicate_rows(results, timings, kind))
    for kind in KINDS:
        rows.extend(_deploy_rows(results, timings, kind))
    return rows + _delta_rows(results)


def _publish_rows(results: Results, timings: Timings, kind: str, stored: object) -> list[Row]:
    med = timings.median
    base = "cp -r chunks + sync" if kind == "local" else f"obstore put, {8} in flight"
    rate = med(f"publish-base-{kind}") / med(f"publish-{kind}")
    return [
        Row(
            f"publish 1.0.0 -> {kind} (1 replica)",
            results.size,
            f"publish-{kind}",
            base,
            med(f"publish-base-{kind}"),
            _rate_text(timings, kind, "publish"),
            "info",
            None,
            {"rate_ratio": round(rate, 4), "stored_bytes": stored},
        ),
        Row(f"  baseline: {base}", results.source_bytes(), f"publish-base-{kind}", goal="ref"),
    ]


def _deploy_rows(results: Results, timings: Timings, kind: str) -> list[Row]:
    ideal = float(results.deploys["ideal_s"][kind])
    ratio = timings.median(f"deploy-{kind}") / ideal
    samples = results.samples[f"deploy-{kind}"]
    bandwidth = float(results.deploys["bandwidth_per_replica"][kind])
    details = {
        "makespan_over_ideal": round(ratio, 4),
        "per_repeat_over_ideal": [round(sample.seconds / ideal, 4) for sample in samples],
        "bandwidth_per_replica": bandwidth,
        "spread_max_over_min": [sample.details["spread"] for sample in samples],
        "bytes_served_per_replica": [sample.details["bytes_served"] for sample in samples],
    }
    return [
        Row(
            f"scale set {results.vms} VMs <- {kind} (5 x {format_size(bandwidth)}/s)",
            results.served(),
            f"deploy-{kind}",
            "ideal",
            ideal,
            f"{ratio:.2f}x ideal",
            f"<= {IDEAL_RATIO_GOAL:.2f}x ideal",
            ratio <= IDEAL_RATIO_GOAL,
            details,
        ),
        Row("  no throttle (sets the bandwidth)", results.served(), f"deploy-free-{kind}", goal="ref"),
    ]


def _delta_rows(results: Results) -> list[Row]:
    written = results.median_of(lambda round_: round_["publish_v2"]["written_bytes"])
    image = f"image {format_size(results.size)}"
    rows = [
        Row(
            "publish 1.0.1 -> source (1 % rewritten)",
            results.size,
            "publish-v2",
            image,
            None,
            f"wrote {pct(written / results.size)}",
            "info",
            None,
            {"written_bytes": written},
        )
    ]
    for kind in KINDS:
        moved = results.moved(kind)
        details = {
            "moved_bytes": moved,
            "moved_over_image": round(moved / results.size, 5),
            "moved_per_replica_over_image": round(moved / COPIES / results.size, 5),
        }
        share = f"{COPIES} x {pct(moved / COPIES / results.size)}"
        rows.append(
            Row(
                f"replicate 1.0.1 -> {kind} 3x2",
                moved,
                f"replicate-v2-{kind}",
                image,
                None,
                share,
                "info",
                None,
                details,
            )
        )
    return rows


def _rate_text(timings: Timings, kind: str, step: str, base: str = "base") -> str:
    """Our rate over the baseline's for the same bytes: baseline time / ours (per-repeat range)."""
    return timings.ratio_text(f"{step}-{base}-{kind}", f"{step}-{kind}").replace("x", "x rate", 1)


def _replicate_rows(results: Results, timings: Timings, kind: str) -> list[Row]:
    med = timings.median
    written = results.written(kind)
    expected = COPIES * results.source_bytes()
    if kind == "local":
        base, goal, passed = f"cp -r x{COPIES} + sync", "info", None
    else:
        base, goal = f"obstore put x{COPIES}", f">= {REPLICATE_RATE_GOAL:.2f}x rate"
        passed = med(f"replicate-base-{kind}") / med(f"replicate-{kind}") >= REPLICATE_RATE_GOAL
    rows = [
        Row(
            f"replicate 1.0.0 -> {kind} 3x2",
            written,
            f"replicate-{kind}",
            base,
            med(f"replicate-base-{kind}"),
            _rate_text(timings, kind, "replicate"),
            goal,
            passed,
            {
                "rate_ratio": round(med(f"replicate-base-{kind}") / med(f"replicate-{kind}"), 4),
                "paired_rate_ratios": timings.paired(f"replicate-base-{kind}", f"replicate-{kind}"),
                "written_bytes": written,
                "expected_bytes": expected,
            },
        ),
        Row(f"  baseline: {base}", expected, f"replicate-base-{kind}", goal="ref"),
    ]
    if kind in OBJECT_KINDS:
        ratio = med(f"replicate-copy-{kind}") / med(f"replicate-{kind}")
        rows.append(
            Row(
                f"  put once + {COPIES - 1} server copies",
                expected,
                f"replicate-copy-{kind}",
                "(ours vs this)",
                None,
                _rate_text(timings, kind, "replicate", "copy"),
                "ref",
                None,
                {"rate_ratio": round(ratio, 4)},
            )
        )
    return rows


def print_report(results: Results, rows: list[Row], args: argparse.Namespace) -> str:
    """Print the header, the table and its notes; return the table."""
    table = render(rows, results.samples)
    deploys = results.deploys
    print(
        f"blobrep {blobrep.__version__} regions benchmark: image {format_size(results.size)}"
        f" (seed {args.seed}), {format_size(results.source_bytes())} stored; local, S3 (SeaweedFS)"
        f" and Azure (Azurite) on loopback; {args.repeat} repeat(s), {os.cpu_count()} CPUs"
    )
    print(table)
    print(
        "MB/s (10^6 B/s): publish rows of image bytes; baselines and replicate rows of stored bytes"
        f" written ({COPIES} replicas); scale sets of stored bytes served. 'x rate' = baseline time /"
        " ours for the same bytes (our rate over the baseline's), medians, [min-max] per repeat;"
        " baselines read the local source replica's chunk files in the timed run. Replication"
        " into one service uploads each chunk once and copies it inside the service for the"
        " other replicas (server_copies.py); the goal is against the plain bulk put."
    )
    read = int(deploys["read_bytes_per_deployment"])
    print(
        f"scale sets: {results.vms} VMs x {format_size(read)} read each from {DEPLOY_REPLICAS} replicas;"
        f" ideal = VMs x S / ({DEPLOY_REPLICAS} x bandwidth); bandwidth per replica ="
        + (" --bandwidth" if deploys["bandwidth_given"] else " half of the unthrottled rate / 5")
        + "; spread (max/min bytes served per replica): "
        + ", ".join(
            f"{kind} {max(sample.details['spread'] or 0 for sample in results.samples[f'deploy-{kind}']):.2f}"
            for kind in KINDS
        )
    )
    print(
        f"delta: 1.0.1 rewrites {pct(results.version2['rewrite_fraction'])} of the image in"
        f" {results.version2['rewrite_runs']} runs at random offsets; moved = stored bytes it added"
        f" to the {COPIES} target replicas of each kind ("
        + ", ".join(f"{kind} {format_size(results.moved(kind))}" for kind in KINDS)
        + f"), shown as {COPIES} x the share of the image per replica. Each run dirties at least one"
        " chunk (~1-2 MiB) whatever the image size, so the share is larger on small images."
    )
    print(noise_note(results.samples) + "; the S3 and Azure servers count there too")
    return table
