"""Homes prepared for the crash matrix, and the commands it kills and inspects.

Every home is built and examined through the real ``blobrep`` command only; nothing here opens
the catalog in process, since opening the service runs crash recovery and would change what a
killed command left behind.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from blobrep.core.packs import read_table
from tests.cli.helpers import blobrep, pack_files

MIB: Final = 1024 * 1024
IMAGE_SIZE: Final = 24 * MIB
GALLERY: Final = "gal"
IMAGE: Final = "disk"
VERSIONS: Final = ("0.9.0", "1.0.0", "1.1.0")
TRANSITIONAL: Final = frozenset({"Creating", "Updating", "Deleting"})

Pair = tuple[str, str]
"""(version, region)."""


def version_id(version: str) -> str:
    return f"/galleries/{GALLERY}/images/{IMAGE}/versions/{version}"


# -- images -------------------------------------------------------------------------------------


def _block(rng: random.Random) -> bytes:
    """One MiB of a VM-like disk: random data, then a zero run (a half or a quarter)."""
    data = rng.randrange(2, 4) * MIB // 4
    return rng.randbytes(data) + bytes(MIB - data)


def write_images(directory: Path) -> dict[str, Path]:
    """Three versions of one disk, each a third rewritten from the one before (so they share chunks).

    1.0.0 rewrites the blocks 0, 3, 6, ... of 0.9.0; 1.1.0 the blocks 1, 4, 7, ... of 1.0.0.
    Each publish stores its new chunks in packs of its own, and a pack lives while any
    manifest names it: 1.1.0 names packs of 0.9.0 and of 1.0.0, which a gc after deleting
    1.1.0 must keep, and the packs only 1.1.0 names, which it deletes. (Deleting 1.0.0 would
    free no pack: 1.1.0 names every one of them.)
    """
    rng = random.Random(20240917)
    blocks = [_block(rng) for _ in range(IMAGE_SIZE // MIB)]
    images: dict[str, Path] = {}
    for number, version in enumerate(VERSIONS):
        if number:
            for index in range(number - 1, len(blocks), 3):
                blocks[index] = _block(rng)
        path = directory / f"disk-{version}.raw"
        path.write_bytes(b"".join(blocks))
        images[version] = path
    return images


# -- running the command ------------------------------------------------------------------------


def ok(home: Path, *args: str | Path, cwd: Path, timeout: float = 120) -> str:
    """Run ``blobrep --home HOME ARGS``; it must exit 0. Returns its standard output."""
    result = blobrep("--home", home, *args, cwd=cwd, timeout=timeout)
    assert result.returncode == 0, (args, result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def _command(home: Path, args: Iterable[str | Path]) -> list[str]:
    return [sys.executable, "-m", "blobrep", "--home", str(home), *(str(arg) for arg in args)]


def _environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("BLOBREP_")}


def _wait_until_open(process: subprocess.Popen[Any], home: Path) -> float | None:
    """Poll until the command has opened the home's catalog; the monotonic time then.

    SQLite creates ``catalog.db-wal`` when the catalog is opened and removes it when the last
    connection closes, so its appearance marks the end of start-up (interpreter, imports,
    arguments) and the start of the operation, without the tens of milliseconds start-up
    varies by. None if the command exited first.
    """
    wal = home / "catalog.db-wal"
    while process.poll() is None:
        if wal.exists():
            return time.monotonic()
        time.sleep(0.0005)
    return None


def _wait_until_closed(process: subprocess.Popen[Any], home: Path) -> float:
    """Poll until the command has closed the catalog (or exited); the monotonic time then."""
    wal = home / "catalog.db-wal"
    while process.poll() is None and wal.exists():
        time.sleep(0.0005)
    return time.monotonic()


def _start(home: Path, args: Sequence[str | Path], cwd: Path, stderr: Any) -> subprocess.Popen[Any]:
    assert not (home / "catalog.db-wal").exists(), "the home must be closed before the command starts"
    return subprocess.Popen(
        _command(home, args), cwd=cwd, env=_environment(), stdout=subprocess.DEVNULL, stderr=stderr
    )


@dataclass(frozen=True, slots=True)
class KillOutcome:
    """What happened to a command sent SIGKILL ``delay`` seconds after it opened the home."""

    delay: float
    killed: bool
    """False if it had exited by itself before the signal."""
    returncode: int
    stderr: str


def run_killed(home: Path, args: Sequence[str | Path], delay: float, cwd: Path) -> KillOutcome:
    """Start ``blobrep --home HOME ARGS`` and SIGKILL it ``delay`` seconds after it opened the home."""
    errors = cwd / "killed.stderr"
    with open(errors, "w") as stderr:
        process = _start(home, args, cwd, stderr)
        opened = _wait_until_open(process, home)
        if opened is not None:
            try:
                process.wait(timeout=max(0.0, opened + delay - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
        returncode = process.wait(timeout=60)
    return KillOutcome(delay, returncode == -signal.SIGKILL, returncode, errors.read_text())


def timed_run(home: Path, args: Sequence[str | Path], cwd: Path) -> tuple[float, float]:
    """Run ``blobrep --home HOME ARGS`` (it must exit 0).

    Returns:
        Seconds from the start until it opened the home, and from then until it closed it
        (the operation, without the interpreter's start-up and exit).
    """
    with open(cwd / "timed.stderr", "w") as stderr:
        started = time.monotonic()
        process = _start(home, args, cwd, stderr)
        opened = _wait_until_open(process, home)
        closed = _wait_until_closed(process, home)
        returncode = process.wait(timeout=120)
    assert returncode == 0, (args, returncode, (cwd / "timed.stderr").read_text())
    assert opened is not None, f"{args} exited before it opened the catalog"
    return opened - started, closed - opened


def restore_many(
    home: Path, pairs: Iterable[Pair], directory: Path, cwd: Path
) -> dict[Pair, tuple[Path, subprocess.CompletedProcess[str]]]:
    """``vm create --output`` each (version, region) at once; the disk files land in ``directory``."""
    started: dict[Pair, tuple[Path, subprocess.Popen[str]]] = {}
    for version, region in sorted(set(pairs)):
        output = directory / f"{version}-{region}.img"
        args = ("vm", "create", "--image", version_id(version), "--location", region, "--output", output)
        started[version, region] = (
            output,
            subprocess.Popen(
                _command(home, args),
                cwd=cwd,
                env=_environment(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
    done = {}
    for pair, (output, process) in started.items():
        stdout, stderr = process.communicate(timeout=120)
        done[pair] = (output, subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return done


# -- what the catalog says ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VersionState:
    """A version's provisioning state, target regions and, per region, replication state and details."""

    provisioning: str
    targets: frozenset[str]
    regions: Mapping[str, str]
    details: Mapping[str, str]

    def completed(self) -> set[str]:
        return {region for region, state in self.regions.items() if state == "Completed"}


def read_states(home: Path, cwd: Path) -> dict[str, VersionState]:
    """Every version of the definition, as ``sig image-version show --expand ReplicationStatus`` has it."""
    listed: list[dict[str, Any]] = json.loads(
        ok(home, "sig", "image-version", "list", "-r", GALLERY, "-i", IMAGE, cwd=cwd)
    )
    states = {}
    for item in listed:
        shown: dict[str, Any] = json.loads(
            ok(
                home,
                "sig", "image-version", "show", "-r", GALLERY, "-i", IMAGE, "-e", item["name"],
                "--expand", "ReplicationStatus",
                cwd=cwd,
            )
        )  # fmt: skip
        summary = (shown["replicationStatus"] or {}).get("summary", [])
        states[item["name"]] = VersionState(
            shown["provisioningState"],
            frozenset(target["name"] for target in shown["publishingProfile"]["targetRegions"]),
            {entry["region"]: entry["state"] for entry in summary},
            {entry["region"]: entry["details"] for entry in summary},
        )
    return states


def describe(states: Mapping[str, VersionState]) -> str:
    """The states in one line, e.g. ``1.0.0 Failed (westcentralus Failed)``."""
    return "; ".join(
        f"{version} {state.provisioning} ("
        + ", ".join(f"{region} {regional}" for region, regional in state.regions.items())
        + ")"
        for version, state in sorted(states.items())
    )


def completed_pairs(states: Mapping[str, VersionState]) -> frozenset[Pair]:
    return frozenset((version, region) for version, state in states.items() for region in state.completed())


# -- what is on disk ----------------------------------------------------------------------------


def replica(home: Path, region: str, number: int) -> Path:
    return home / "regions" / region / f"replica-{number}"


def manifest(root: Path, version: str) -> Path:
    return root / "galleries" / GALLERY / "images" / IMAGE / "versions" / version / "manifest.json"


def store_temporaries(home: Path) -> list[Path]:
    """Every temporary of an interrupted put (``~tmp~`` in its name) under the home's regions."""
    return sorted(path for path in (home / "regions").rglob("*") if "~tmp~" in path.name)


def output_temporaries(directory: Path) -> list[Path]:
    """Hidden ``.{name}.blobrep-*`` temporaries of output files left in ``directory``."""
    return sorted(
        path for path in directory.iterdir() if path.name.startswith(".") and ".blobrep-" in path.name
    )


def snapshot(home: Path) -> dict[str, tuple[int, int]]:
    """Every pack, chunk and manifest file under the home's regions: relative path -> (size, mtime)."""
    found = {}
    for path in (home / "regions").rglob("*"):
        if path.is_file() and "~tmp~" not in path.name and "/leases/" not in path.as_posix():
            status = path.stat()
            found[path.relative_to(home).as_posix()] = (status.st_size, status.st_mtime_ns)
    return found


def changes(before: Mapping[str, tuple[int, int]], after: Mapping[str, tuple[int, int]]) -> str:
    """Files added, removed and rewritten between two snapshots, in words."""
    added = len(after.keys() - before.keys())
    removed = len(before.keys() - after.keys())
    rewritten = sum(1 for key in before.keys() & after.keys() if before[key] != after[key])
    return f"+{added} -{removed} ~{rewritten} files"


def lease_files(home: Path) -> list[Path]:
    return sorted(path for path in (home / "regions").glob(f"*/replica-*/galleries/{GALLERY}/leases/*"))


def age(paths: Iterable[Path], seconds: float) -> None:
    """Set back the modification time of ``paths`` by ``seconds``, as if that much time had passed."""
    then = time.time() - seconds
    for path in paths:
        os.utime(path, (then, then), follow_symlinks=False)


def damage_replica(root: Path, deleted: int, flipped: int) -> dict[str, str]:
    """Delete ``deleted`` packs of a replica and flip a bit in a chunk's frame in ``flipped``
    others (the service stores chunks in packs, and checks and repairs each pack whole).

    Returns:
        pack key -> ``"pack-missing"`` or ``"pack-corrupt"`` (the kind fsck reports), for each
        pack damaged.
    """
    packs = sorted(pack_files(root, GALLERY).values())
    assert len(packs) >= deleted + flipped, f"only {len(packs)} packs in {root}"
    damaged = {}
    for path in packs[:deleted]:
        path.unlink()
        damaged[path.relative_to(root).as_posix()] = "pack-missing"
    for path in packs[deleted : deleted + flipped]:
        data = bytearray(path.read_bytes())
        entries = read_table(data, str(path))
        frame = entries[len(entries) // 2]
        data[frame.offset + frame.stored_length // 2] ^= 0x10
        path.write_bytes(bytes(data))
        damaged[path.relative_to(root).as_posix()] = "pack-corrupt"
    return damaged


# -- the prepared homes -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prepared:
    """A home ready for one operation to be killed in, and what the matrix needs to know about it."""

    operation: str
    home: Path
    command: tuple[str, ...]
    """The command that is killed (after ``--home``)."""
    before: Mapping[str, VersionState]
    delays: tuple[float, ...]
    startup: float
    """Seconds from the start of the command until it opened the home (median of three runs)."""
    duration: float
    """Seconds from then until it closes the home, unkilled (median of three runs in copies)."""
    damaged: Mapping[str, str]
    """Packs planted damaged in westcentralus replica-1 (the scrub operation), else empty."""
    files: Mapping[str, tuple[int, int]]
    """:func:`snapshot` of the home."""


def _new_gallery(home: Path, cwd: Path) -> None:
    ok(home, "sig", "create", "-r", GALLERY, "-l", "westcentralus", cwd=cwd)
    ok(
        home,
        "sig", "image-definition", "create", "-r", GALLERY, "-i", IMAGE, "--publisher", "contoso",
        "--offer", "disk", "--sku", "1", "--os-type", "Linux",
        cwd=cwd,
    )  # fmt: skip


def _create(home: Path, images: Mapping[str, Path], version: str, *targets: str, cwd: Path) -> None:
    """Publish ``version`` and replicate it to ``targets`` (the create waits for the replication)."""
    ok(
        home,
        "sig", "image-version", "create", "-r", GALLERY, "-i", IMAGE, "-e", version,
        "--source", images[version], "--allow-replicated-location-deletion", "--target-regions", *targets,
        cwd=cwd,
    )  # fmt: skip


def create_command(images: Mapping[str, Path]) -> tuple[str, ...]:
    return (
        "sig", "image-version", "create", "-r", GALLERY, "-i", IMAGE, "-e", "1.0.0",
        "--source", str(images["1.0.0"]), "--target-regions", "westcentralus", "eastus2=2", "--no-wait",
    )  # fmt: skip


UPDATE_COMMAND: Final = (
    "sig", "image-version", "update", "-r", GALLERY, "-i", IMAGE, "-e", "1.0.0",
    "--target-regions", "westcentralus",
)  # fmt: skip
REPLICATE_COMMAND: Final = ("replicate", "-r", GALLERY)
GC_COMMAND: Final = ("gc", "-r", GALLERY, "--grace", "0")
SCRUB_COMMAND: Final = ("scrub", "-l", "westcentralus", "-r", GALLERY, "--repair")


def _build(
    operation: str, home: Path, images: Mapping[str, Path], cwd: Path
) -> tuple[tuple[str, ...], dict[str, str]]:
    """Make ``home`` ready for ``operation``; return the command to kill and the planted damage."""
    _new_gallery(home, cwd)
    if operation == "scrub":
        # Every version at 2 replicas in westcentralus, so each damaged pack has a good sibling.
        for version in ("0.9.0", "1.0.0"):
            _create(home, images, version, "westcentralus=2", "eastus2", cwd=cwd)
        return SCRUB_COMMAND, damage_replica(replica(home, "westcentralus", 1), deleted=3, flipped=3)
    _create(home, images, "0.9.0", "westcentralus", "eastus2=2", cwd=cwd)
    if operation == "create":
        return create_command(images), {}
    if operation == "replicate":
        for version, targets in (("1.0.0", ("eastus2=2",)), ("1.1.0", ("eastus2=2", "westeurope"))):
            ok(
                home,
                "sig", "image-version", "create", "-r", GALLERY, "-i", IMAGE, "-e", version,
                "--source", images[version], "--target-regions", "westcentralus", *targets, "--no-wait",
                cwd=cwd,
            )  # fmt: skip
        return REPLICATE_COMMAND, {}
    if operation == "update":
        _create(home, images, "1.0.0", "westcentralus", "eastus2=2", cwd=cwd)
        return UPDATE_COMMAND, {}
    if operation == "gc":
        for version in ("1.0.0", "1.1.0"):
            _create(home, images, version, "westcentralus", "eastus2=2", cwd=cwd)
        ok(home, "sig", "image-version", "delete", "-r", GALLERY, "-i", IMAGE, "-e", "1.1.0", cwd=cwd)
        # In every replica the gc has packs to delete, and live ones to keep.
        planned = json.loads(ok(home, *GC_COMMAND, "--dry-run", cwd=cwd))
        assert len(planned) == 3, planned
        for report in planned:
            assert report["deleted_packs"] > 0 and report["referenced_packs"] > 0, report
        return GC_COMMAND, {}
    raise AssertionError(f"no such operation in the crash matrix: {operation}")


def schedule(duration: float, points: int) -> tuple[float, ...]:
    """Kill delays spread evenly over an operation that keeps the home open ``duration`` seconds.

    Point i is at ``(i + 0.5) / points * duration``, counted from the moment the command opened
    the catalog: start-up (about 0.25 s, more than the operation itself at these sizes) and
    the interpreter's exit are the same for every command and are left out.
    """
    return tuple((index + 0.5) / points * duration for index in range(points))


def prepare(
    operation: str, root: Path, images: Mapping[str, Path], points: int, log: Callable[[str], None]
) -> Prepared:
    """Build the home for ``operation`` under ``root`` and measure how long the operation runs."""
    home = root / "home"
    command, damaged = _build(operation, home, images, root)
    before = read_states(home, root)
    startups, durations = [], []
    for attempt in range(3):
        scratch = root / f"scratch-{attempt}"
        shutil.copytree(home, scratch, symlinks=True)
        startup, duration = timed_run(scratch, command, root)
        startups.append(startup)
        durations.append(duration)
        shutil.rmtree(scratch)
    startup, duration = statistics.median(startups), statistics.median(durations)
    delays = schedule(duration, points)
    log(
        f"{operation}: start-up {startup:.3f} s, then the home open {duration:.3f} s unkilled;"
        f" kills at {delays[0]:.3f} .. {delays[-1]:.3f} s after opening the home"
    )
    return Prepared(operation, home, command, before, delays, startup, duration, damaged, snapshot(home))
