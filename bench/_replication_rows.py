"""The replication benchmark's result rows: the fan-out against ``cp -r``, and version 2's delta."""

from __future__ import annotations

from typing import Any, Final

from _harness import KIB, format_size, mb_per_s, median
from _report import Row, Samples, Timings, pct

FANOUT_RATIO_GOAL: Final = 1.2
FANOUT_RATIO_AIM: Final = 1.0
DELTA_GOAL: Final = 0.10


def build_rows(
    samples: Samples, copies: int, size: int, rounds: list[dict[str, Any]], version2: dict[str, Any]
) -> tuple[list[Row], dict[str, Any]]:
    """The fan-out rows (ours against ``cp -r``) and the delta rows of version 2."""
    rows = _fanout_rows(samples, copies, size, rounds)
    delta_rows, delta = _delta_rows(samples, copies, size, rounds, version2)
    return [*rows, *delta_rows], delta


def _fanout_rows(samples: Samples, copies: int, size: int, rounds: list[dict[str, Any]]) -> list[Row]:
    """Version 1 replicated to every target replica against ``cp -r`` of the source replica."""
    timings = Timings(samples)
    med, paired, ratio_text = timings.median, timings.paired, timings.ratio_text
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
    return rows


def _delta_rows(
    samples: Samples, copies: int, size: int, rounds: list[dict[str, Any]], version2: dict[str, Any]
) -> tuple[list[Row], dict[str, Any]]:
    """Version 2's publish and what its replication moved into each target replica."""
    rows: list[Row] = []
    v1_source = samples["publish_v1"][0].details["stored_bytes"]
    v2_written = samples["publish_v2"][0].details["written_bytes"]
    rows.append(
        Row(
            "publish v2 (1 % rewritten in place)",
            size,
            "publish_v2",
            f"v1 stored {format_size(v1_source)}",
            None,
            f"{pct(v2_written / v1_source)} new",
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
            f"max {pct(max(worst.values()))}",
            f"<= {pct(DELTA_GOAL)} each",
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
                f"{pct(fraction)} ({format_size(first['v2_moved_bytes'][replica])})",
                f"<= {pct(DELTA_GOAL)}",
                fraction <= DELTA_GOAL,
                {"fractions": fractions[replica]},
            )
        )
    delta = {"version2": version2, "per_repeat": rounds, "worst_fraction_per_replica": worst}
    return rows, delta
