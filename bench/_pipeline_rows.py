"""The pipeline benchmark's result rows: publish and restore against zstd, dedup, memory."""

from __future__ import annotations

from typing import Any, Final

from _harness import KIB, format_size
from _report import Row, Samples, Timings, pct

PUBLISH_RATIO_GOAL: Final = 1.0
RESTORE_RATIO_GOAL: Final = 1.0
DEDUP_GOAL: Final = 0.10
RSS_GOAL_MIB: Final = 300


def build_rows(
    samples: Samples, size: int, big_size: int, version2: dict[str, Any]
) -> tuple[list[Row], dict[str, Any]]:
    """Every row of the synthetic image's table, and the dedup figures for the JSON."""
    rows = _speed_rows(samples, size)
    dedup_rows, dedup = _dedup_rows(samples, size, version2)
    return [*rows, *dedup_rows, *_memory_rows(samples, big_size)], dedup


def _speed_rows(samples: Samples, size: int) -> list[Row]:
    """Publish (FastCDC and fixed) and restore against zstd, and the baselines."""
    timings = Timings(samples)
    med, paired, ratio_text = timings.median, timings.paired, timings.ratio_text
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
    return rows


def _dedup_rows(samples: Samples, size: int, version2: dict[str, Any]) -> tuple[list[Row], dict[str, Any]]:
    """Republishing the same image, and version 2's new bytes with each chunking."""
    rows: list[Row] = []
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
                f"{pct(fraction)} new",
                "info" if goal is None else f"<= {pct(goal)}",
                None if goal is None else fraction <= goal,
                values,
            )
        )

    return rows, dedup


def _memory_rows(samples: Samples, big_size: int) -> list[Row]:
    """The big image's publish: its peak RSS, and its time against zstd."""
    med = Timings(samples).median
    zstd_fsync = "zstd -1 -T0 -o +fsync"
    rows: list[Row] = []
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
    return rows
