"""The real image chain in the pipeline benchmark: blobrep, restic, casync and zstd side by side.

On the Debian bookworm images of ``bench/real_images.py`` (v1 a minimal base, each next one
an in-place upgrade of the last), every tool stores v1, v2 and v3 one after the other into
one fresh store, and then restores each version. Measured per version: the store's growth
(the sum of its files' sizes before and after; what replication would move), the time to
store it and the time to restore it.

- blobrep: ``BlobService.publish`` with the defaults into a ``LocalStore`` (durable: every
  chunk is fsynced before the manifest), ``BlobService.restore`` (sparse, fsynced).
- zstd: ``zstd -1 -T0 -o FILE`` then an fsync of it, one frame per version (no dedup);
  ``zstd -d -o FILE`` then an fsync (zstd writes holes for zeros).
- restic (Debian's package): ``restic backup --compression auto`` into one repository and
  ``restic restore`` of that snapshot, as shipped (restic decides what it fsyncs).
- casync (Debian's package): ``casync make --chunk-size=65536 --compression=zstd`` into one
  store and ``casync extract`` (sparse), as shipped.

restic and casync are installed with apt-get if they are missing and this runs as root; a tool
that cannot be had is reported with the reason and left out of the comparisons.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from _harness import (
    Finished,
    fsync_file,
    log,
    median,
    remove,
    render_table,
    run_child,
    settle,
    tree_bytes,
    warm,
)
from _report import Row

if TYPE_CHECKING:
    from pipeline import Steps

TOOLS: Final = ("blobrep", "zstd", "restic", "casync")
CASYNC_CHUNK: Final = 65536
RESTIC_ENV: Final = {"RESTIC_PASSWORD": "blobrep-bench"}


def available_tools() -> dict[str, str | None]:
    """Each tool's version, or None with the reason logged; installs restic and casync if it can."""
    wanted = [tool for tool in ("restic", "casync") if shutil.which(tool) is None]
    if wanted and os.geteuid() == 0 and shutil.which("apt-get"):
        log(f"installing {', '.join(wanted)} (Debian packages)")
        subprocess.run(
            ["apt-get", "install", "-y", "-q", *wanted],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
    versions: dict[str, str | None] = {"blobrep": "this tree"}
    for tool, flag in (("zstd", "--version"), ("restic", "version"), ("casync", "--version")):
        if shutil.which(tool) is None:
            log(f"{tool} is not installed and could not be: left out of the comparison")
            versions[tool] = None
            continue
        found = subprocess.run([tool, flag], capture_output=True, text=True, check=False)
        versions[tool] = (found.stdout or found.stderr).strip().splitlines()[0]
    return versions


def _key(tool: str, what: str, version: int) -> str:
    return f"chain_{tool}_{what}_v{version}"


class ChainRun:
    """One tool's pass over the chain: a fresh store, each version stored, then each restored."""

    def __init__(self, steps: Steps, tool: str, chain: Sequence[Path], *, verify: bool) -> None:
        self.steps = steps
        self.tool = tool
        self.chain = chain
        self.verify = verify
        self.store = steps.path(f"chain-{tool}")
        self.outputs = steps.path(f"chain-{tool}-out")

    def run(self) -> None:
        remove(self.store, self.outputs)
        self.store.mkdir()
        self.outputs.mkdir()
        if self.tool == "restic":
            self._command(["restic", "-r", str(self.store / "repo"), "init", "--repository-version", "2"])
        snapshots: list[str] = []
        try:
            for number, image in enumerate(self.chain, 1):
                before = tree_bytes(self.store)
                sample = self._store_version(number, image, snapshots)
                sample.details["growth_bytes"] = tree_bytes(self.store) - before
            for number, image in enumerate(self.chain, 1):
                output = self.outputs / f"v{number}.raw"
                self._restore_version(number, output, snapshots)
                if self.verify:
                    run_child(["cmp", "-s", str(image), str(output)])  # raises if they differ
                    self.steps.verified.append(f"chain {self.tool} v{number}")
                remove(self.outputs)
                self.outputs.mkdir()
        finally:
            remove(self.store, self.outputs)

    def _command(self, command: list[str]) -> Finished:
        return run_child(command, env={**os.environ, **RESTIC_ENV})

    def _timed(self, key: str, commands: Callable[[], list[Finished]], warmed: Path) -> Any:
        warm(warmed)
        settle()
        return self.steps.record(key, self.steps.in_parent(commands, lambda _: {}))

    def _store_version(self, number: int, image: Path, snapshots: list[str]) -> Any:
        key = _key(self.tool, "store", number)
        if self.tool == "blobrep":
            return self.steps.publish(key, image, self.store / "replica", f"chain/versions/1.0.{number}")
        if self.tool == "zstd":
            frame = self.store / f"v{number}.zst"
            return self.steps.zstd_compress(key, image, frame, fsync=True)
        if self.tool == "restic":
            repo = str(self.store / "repo")
            command = ["restic", "-r", repo, "backup", "--json", "-q", "--compression", "auto", str(image)]

            def backup() -> list[Finished]:
                finished = self._command(command)
                summary = json.loads(finished.stdout.strip().splitlines()[-1])
                snapshots.append(summary["snapshot_id"])
                return [finished]

            return self._timed(key, backup, image)
        index = self.store / f"v{number}.caibx"
        command = [
            "casync",
            f"--store={self.store / 'chunks'}",
            f"--chunk-size={CASYNC_CHUNK}",
            "--compression=zstd",
            "make",
            str(index),
            str(image),
        ]
        return self._timed(key, lambda: [run_child(command)], image)

    def _restore_version(self, number: int, output: Path, snapshots: list[str]) -> Any:
        key = _key(self.tool, "restore", number)
        if self.tool == "blobrep":
            return self.steps.restore(key, self.store / "replica", f"chain/versions/1.0.{number}", output)
        if self.tool == "zstd":
            return self.steps.zstd_decompress(key, self.store / f"v{number}.zst", output)
        if self.tool == "restic":
            target = self.outputs / "restic"
            image = self.chain[number - 1]
            command = ["restic", "-r", str(self.store / "repo"), "restore", snapshots[number - 1]]

            def restore() -> list[Finished]:
                finished = self._command([*command, "--target", str(target)])
                restored = target / image.relative_to(image.anchor)
                fsync_file(restored)
                restored.rename(output)
                return [finished]

            return self._timed(key, restore, self.store)
        command = [
            "casync",
            f"--store={self.store / 'chunks'}",
            "--seed-output=no",
            "extract",
            str(self.store / f"v{number}.caibx"),
            str(output),
        ]

        def extract() -> list[Finished]:
            finished = run_child(command)
            fsync_file(output)
            return [finished]

        return self._timed(key, extract, self.store)


def run_chain(steps: Steps, chain: Sequence[Path], repeat: int, tools: dict[str, str | None]) -> None:
    """Every available tool over the chain ``repeat`` times, the order reversed every other time."""
    present = [tool for tool in TOOLS if tools.get(tool)]
    for round_ in range(repeat):
        log(f"real chain, repeat {round_ + 1}/{repeat}")
        order = present if round_ % 2 == 0 else present[::-1]
        for tool in order:
            ChainRun(steps, tool, chain, verify=round_ == 0).run()


# --- report ---------------------------------------------------------------------------------


def _median_of(steps: Steps, key: str) -> float:
    return median(sample.seconds for sample in steps.samples[key])


def _growth(steps: Steps, tool: str, number: int) -> int:
    """The store's growth for a version (the same in every repeat; the first is taken)."""
    return int(steps.samples[_key(tool, "store", number)][0].details["growth_bytes"])


def chain_table(steps: Steps, tools: dict[str, str | None], versions: int) -> tuple[str, dict[str, Any]]:
    """The side-by-side table (growth, store and restore times per version) and its JSON."""
    lines: list[list[str]] = []
    figures: dict[str, Any] = {}
    numbers = range(1, versions + 1)
    for tool in TOOLS:
        if not tools.get(tool):
            lines.append([tool, "not installed", "", "", ""])
            continue
        growth = [_growth(steps, tool, number) for number in numbers]
        stored = [_median_of(steps, _key(tool, "store", number)) for number in numbers]
        restored = [_median_of(steps, _key(tool, "restore", number)) for number in numbers]
        figures[tool] = {
            "version": tools[tool],
            "growth_bytes": growth,
            "total_bytes": sum(growth),
            "store_median_s": [round(value, 4) for value in stored],
            "restore_median_s": [round(value, 4) for value in restored],
        }
        lines.append(
            [
                tool,
                " / ".join(f"{value / 1e6:.1f}" for value in growth),
                f"{sum(growth) / 1e6:.1f}",
                " / ".join(f"{value:.2f}" for value in stored),
                " / ".join(f"{value:.2f}" for value in restored),
            ]
        )
    headers = ["tool", "store growth v1 / v2 / v3 MB", "total MB", "store s (each version)", "restore s"]
    return render_table(headers, lines, right=[False, True, True, True, True]), figures


def chain_rows(steps: Steps, tools: dict[str, str | None], chain: Sequence[Path]) -> list[Row]:
    """The goals on the chain: growth <= restic's, store <= zstd + fsync, restore <= zstd -d + fsync."""
    rows: list[Row] = []
    numbers = range(1, len(chain) + 1)
    size = chain[0].stat().st_size
    if tools.get("restic"):
        ours = [_growth(steps, "blobrep", number) for number in numbers]
        theirs = [_growth(steps, "restic", number) for number in numbers]
        for number in numbers[1:]:
            rows.append(_growth_row(f"chain v{number} growth", ours[number - 1], theirs[number - 1]))
        rows.append(_growth_row("chain total growth", sum(ours), sum(theirs)))
    for number in numbers:
        for what, base in (("store", "zstd -1 -T0 +fsync"), ("restore", "zstd -d +fsync")):
            ours_key, base_key = _key("blobrep", what, number), _key("zstd", what, number)
            ratio = _median_of(steps, ours_key) / _median_of(steps, base_key)
            rows.append(
                Row(
                    f"chain v{number} {'publish' if what == 'store' else what}",
                    size,
                    ours_key,
                    base,
                    _median_of(steps, base_key),
                    f"{ratio:.2f}x",
                    "<= 1.00x",
                    ratio <= 1.0,
                    {"ratio": round(ratio, 4)},
                )
            )
    return rows


def _growth_row(label: str, ours: int, restic: int) -> Row:
    return Row(
        label,
        0,
        None,
        f"restic {restic / 1e6:.2f} MB",
        None,
        f"{ours / 1e6:.2f} MB ({ours / restic:.2f}x)",
        "<= restic",
        ours <= restic,
        {"ours_bytes": ours, "restic_bytes": restic},
    )
