"""The daemon benchmark's report: its goals, the rows that judge them, the latency table.

Kept apart from ``daemon.py`` (which runs things) so that what is measured and how it is
judged read in one place. The goals are fixed here, before any run.

Samples by key: ``upload`` (through the daemon), ``publish`` (``blob publish``), ``create``
(``sig image-version create --source``); ``download`` (HTTP clients), ``library`` (the direct
library read), ``ranges`` (the daemon's range path without HTTP); ``show``, ``list`` and
``livez`` (metadata latency, whose ``seconds`` is the run's p99 latency). The daemon's rows
carry the daemon's own peak RSS in the step (not the clients').
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from _harness import KIB, Sample, median, render_table
from _report import Row, Timings

UPLOAD_GOAL: Final = 1.3
"""Upload through the daemon over ``blob publish`` of the same file, at most."""
DOWNLOAD_GOAL: Final = 0.7
"""Aggregate download throughput through the daemon over the direct library read, at least."""
DOWNLOAD_RSS_GOAL_MIB: Final = 400
"""The daemon's peak RSS while serving the downloads, below."""
METADATA_P99_GOAL_S: Final = 0.050
"""p99 of a metadata GET with the benchmark's concurrent clients, below."""

METADATA: Final = {
    "show": "GET .../versions/{v}",
    "list": "GET .../versions (list)",
    "livez": "GET /livez",
}
"""Metadata keys and what each requests."""


def _peak_mib(samples: Sequence[Sample]) -> float:
    return max(sample.peak_rss_kib for sample in samples) / KIB


def _details(samples: Sequence[Sample], name: str) -> list[Any]:
    return [sample.details[name] for sample in samples]


def _throughput_text(samples: Mapping[str, Sequence[Sample]], ours: str, base: str) -> tuple[float, str]:
    """Throughput ours / base (same bytes: base seconds / our seconds), medians; paired range."""
    timings = Timings(samples)
    ratio = timings.median(base) / timings.median(ours)
    pairs = [1 / paired for paired in timings.paired(ours, base)]
    text = f"{ratio:.2f}x thr"
    return ratio, (f"{text} [{min(pairs):.2f}-{max(pairs):.2f}]" if len(pairs) > 1 else text)


def upload_rows(samples: Mapping[str, Sequence[Sample]], size: int, label: str) -> list[Row]:
    timings = Timings(samples)
    ratio = timings.median("upload") / timings.median("publish")
    daemon_rss = _peak_mib(samples["upload"])
    publish_rss = _peak_mib(samples["publish"])
    create_rss = _peak_mib(samples["create"])
    return [
        Row(
            f"upload {label} through the daemon",
            size,
            "upload",
            "blob publish",
            round(timings.median("publish"), 4),
            timings.ratio_text("upload", "publish"),
            f"<= {UPLOAD_GOAL:.2f}x",
            ratio <= UPLOAD_GOAL,
            {
                "ratio": round(ratio, 4),
                "paired": timings.paired("upload", "publish"),
                "daemon_peak_rss_mib": round(daemon_rss, 1),
                "publish_peak_rss_mib": round(publish_rss, 1),
                "rss_ratio": round(daemon_rss / publish_rss, 4),
                "daemon_cpu_s": _details(samples["upload"], "daemon_cpu_s"),
            },
        ),
        Row(
            "  daemon peak RSS in the upload",
            0,
            None,
            "blob publish RSS",
            None,
            f"{daemon_rss:.0f} / {publish_rss:.0f} MiB",
            "report",
            None,
            {"daemon_peak_rss_mib": round(daemon_rss, 1), "publish_peak_rss_mib": round(publish_rss, 1)},
        ),
        Row(f"blob publish {label}", size, "publish", goal="ref"),
        Row(
            f"sig image-version create --source {label}",
            size,
            "create",
            "blob publish",
            round(timings.median("publish"), 4),
            timings.ratio_text("create", "publish"),
            "ref",
            None,
            {
                "ratio": round(timings.median("create") / timings.median("publish"), 4),
                "peak_rss_mib": create_rss,
            },
        ),
    ]


def download_rows(samples: Mapping[str, Sequence[Sample]], aggregate: int, label: str) -> list[Row]:
    downloads = samples["download"]
    ratio, text = _throughput_text(samples, "download", "library")
    failed = sum(_details(downloads, "failed"))
    mismatched = sum(_details(downloads, "mismatched"))
    exact = sum(_details(downloads, "exact"))
    expected = sum(_details(downloads, "expected_requests"))
    rss = _peak_mib(downloads)
    ranges_ratio, ranges_text = _throughput_text(samples, "ranges", "library")
    wire_ratio, wire_text = _throughput_text(samples, "wire", "library")
    library = samples["library"]
    return [
        Row(
            f"download: {label}",
            aggregate,
            "download",
            "library read",
            round(Timings(samples).median("library"), 4),
            text,
            f">= {DOWNLOAD_GOAL:.2f}x thr",
            ratio >= DOWNLOAD_GOAL,
            {
                "throughput_ratio": round(ratio, 4),
                "client_cpu_s": _details(downloads, "client_cpu_s"),
                "daemon_cpu_s": _details(downloads, "daemon_cpu_s"),
                "request_latency": _details(downloads, "request"),
            },
        ),
        Row(
            "  every range digest-exact",
            0,
            None,
            "",
            None,
            f"{exact}/{expected} exact",
            "all, 0 failed",
            exact == expected and failed == 0 and mismatched == 0,
            {"exact": exact, "expected": expected, "mismatched": mismatched, "failed": failed},
        ),
        Row(
            "  daemon peak RSS in the download",
            0,
            None,
            "",
            None,
            f"{rss:.0f} MiB",
            f"< {DOWNLOAD_RSS_GOAL_MIB} MiB",
            rss < DOWNLOAD_RSS_GOAL_MIB,
            {"daemon_peak_rss_mib": round(rss, 1)},
        ),
        Row(
            "library read (deployments, read and discard)",
            aggregate,
            "library",
            goal="ref",
            values={"errors": sum(_details(library, "errors"))},
        ),
        Row(
            "daemon's range path in-process (no HTTP)",
            aggregate,
            "ranges",
            "library read",
            round(Timings(samples).median("library"), 4),
            ranges_text,
            "ref",
            None,
            {"throughput_ratio": round(ranges_ratio, 4)},
        ),
        Row(
            "floor: the same clients, a server sending from memory",
            aggregate,
            "wire",
            "library read",
            round(Timings(samples).median("library"), 4),
            wire_text,
            "ref",
            None,
            {"throughput_ratio": round(wire_ratio, 4)},
        ),
    ]


def metadata_rows(samples: Mapping[str, Sequence[Sample]], clients: int) -> list[Row]:
    timings = Timings(samples)
    base = timings.median("livez")
    rows: list[Row] = []
    for key in ("show", "list"):
        p99 = timings.median(key)
        rows.append(
            Row(
                f"{METADATA[key]}, {clients} clients: p99",
                0,
                key,
                "GET /livez p99",
                round(base, 4),
                timings.ratio_text(key, "livez"),
                f"p99 < {1000 * METADATA_P99_GOAL_S:.0f} ms",
                p99 < METADATA_P99_GOAL_S and not any(_details(samples[key], "failures")),
                {"p99_ms": round(1000 * p99, 3), "livez_p99_ms": round(1000 * base, 3)},
            )
        )
    rows.append(Row(f"GET /livez, {clients} clients: p99", 0, "livez", goal="ref"))
    return rows


def latency_table(samples: Mapping[str, Sequence[Sample]]) -> str:
    """Per metadata target: requests/s, p50, p90, p99, max (medians over the repeats), CPU."""
    headers = ["request", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "daemon cpu/s", "client cpu/s"]
    lines: list[list[str]] = []
    for key, label in METADATA.items():
        runs = samples.get(key, [])
        if not runs:
            continue

        def med(name: str, runs: Sequence[Sample] = runs) -> float:
            return median(float(sample.details[name]) for sample in runs)

        lines.append(
            [
                label,
                f"{med('requests_per_s'):.0f}",
                f"{med('p50_ms'):.1f}",
                f"{med('p90_ms'):.1f}",
                f"{med('p99_ms'):.1f}",
                f"{med('max_ms'):.1f}",
                f"{median(s.details['daemon_cpu_s'] / s.wall_s for s in runs):.2f}",
                f"{median(s.details['client_cpu_s'] / s.wall_s for s in runs):.2f}",
            ]
        )
    return render_table(headers, lines, right=[False, *[True] * 7])


def download_note(samples: Mapping[str, Sequence[Sample]], aggregate: int) -> str:
    """CPU per GiB delivered by each way of reading, and the chunks decoded by ranges vs whole reads."""
    gib = aggregate / (1 << 30)

    def per_gib(key: str, name: str) -> float:
        return median(float(sample.details[name]) for sample in samples[key]) / gib

    library_chunks = median(sample.details["chunk_reads"] for sample in samples["library"])
    range_chunks = median(sample.details["chunk_reads"] for sample in samples["ranges"])
    daemon, user, system = (per_gib("download", f"daemon_{part}_s") for part in ("cpu", "user", "system"))
    extra = 100 * (range_chunks / library_chunks - 1)
    return (
        f"CPU per GiB delivered: daemon {daemon:.2f} s (user {user:.2f}, system {system:.2f}) + clients"
        f" {per_gib('download', 'client_cpu_s'):.2f} s; library read {per_gib('library', 'cpu_s'):.2f} s;"
        f" range path in-process {per_gib('ranges', 'cpu_s'):.2f} s; floor server"
        f" {per_gib('wire', 'server_cpu_s'):.2f} s + its clients {per_gib('wire', 'client_cpu_s'):.2f} s."
        f" Chunks decoded: {range_chunks:.0f}"
        f" by ranges against {library_chunks:.0f} by whole reads ({extra:+.0f} %: a chunk cut by a range"
        " boundary is read for both ranges)."
    )


def rss_note(samples: Mapping[str, Sequence[Sample]]) -> str:
    """The daemon's RSS before and at the peak of each upload and download: what it kept."""
    parts = []
    for key in ("upload", "download"):
        runs = " ".join(
            f"{sample.details['daemon_rss_before_mib']:.0f}->{sample.peak_rss_kib / KIB:.0f}"
            for sample in samples[key]
        )
        parts.append(f"{key} {runs}")
    return (
        "Daemon RSS before -> peak of each step, MiB: " + "; ".join(parts) + ". The daemon keeps the"
        " memory of earlier steps (its RSS before a step is what the last one left), so a step's peak"
        " includes it."
    )
