"""The real image chain in the replication benchmark: what each new version moves between regions.

In a fresh home the Debian images of ``bench/real_images.py`` become versions 1.0.0, 1.0.1
and 1.0.2 of one definition, each published into the source region and then replicated to
every target region. For each version it compares the growth of the source replica (what
the publish stored: chunks and manifest) with the growth of every target replica (what
replication wrote there). The goal is equality: a region receives exactly the new version's
new bytes, no chunk it already holds and nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from _harness import format_size, log, remove, tree_bytes
from _report import Row

CHAIN_VERSIONS: Final = ("1.0.0", "1.0.1", "1.0.2")

Publish = Callable[[str, Path, Path, str], Any]
"""``publish(key, home, image, version)``: create the version from ``image`` (timed, recorded)."""
Replicate = Callable[[str, Path, str], Any]
"""``replicate(key, home, version)``: replicate the version to every target (timed, recorded)."""


def run_chain_replication(
    run_dir: Path,
    chain: Sequence[Path],
    publish: Publish,
    replicate: Replicate,
    replicas: Callable[[Path], dict[str, Path]],
    source: Callable[[Path], Path],
) -> list[dict[str, Any]]:
    """Each image of the chain published and replicated in turn; per version, the growths."""
    home = run_dir / "home-chain"
    figures: list[dict[str, Any]] = []
    log("real chain")
    try:
        for number, (image, version) in enumerate(zip(chain, CHAIN_VERSIONS, strict=False), 1):
            before_source = tree_bytes(source(home))
            publish(f"chain_publish_v{number}", home, image, version)
            grown = tree_bytes(source(home)) - before_source
            before = {name: tree_bytes(path) for name, path in replicas(home).items()}
            replicate(f"chain_replicate_v{number}", home, version)
            moved = {name: tree_bytes(path) - before[name] for name, path in replicas(home).items()}
            figures.append({"version": version, "image": str(image), "source_growth": grown, "moved": moved})
            log(f"  v{number}: source grew {format_size(grown)}, targets {sorted(set(moved.values()))}")
    finally:
        remove(home)
    return figures


def chain_replication_rows(figures: list[dict[str, Any]]) -> list[Row]:
    """One row per version: moved into each target replica against the source's growth."""
    rows: list[Row] = []
    for number, figure in enumerate(figures, 1):
        grown = figure["source_growth"]
        moved = figure["moved"]
        worst = max(moved.values(), key=lambda value: abs(value - grown))
        rows.append(
            Row(
                f"chain v{number} replicate ({len(moved)} replicas)",
                sum(moved.values()),
                f"chain_replicate_v{number}",
                f"source grew {format_size(grown)}",
                None,
                f"moved {format_size(worst)} each" if len(set(moved.values())) == 1 else f"worst {worst}",
                "= source growth",
                all(value == grown for value in moved.values()),
                {"source_growth_bytes": grown, "moved_bytes": moved},
            )
        )
    return rows
