"""Helpers the benchmarks share: sizes, warm caches, child processes with peak RSS, tables, JSON, logs.

Every timed operation runs in its own process, started here and reaped with ``os.wait4`` so
its resource usage (peak RSS in particular) belongs to that one process and nothing else.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any, Final

KIB: Final = 1024
MIB: Final = 1024 * KIB
GIB: Final = 1024 * MIB
MB: Final = 1_000_000

_UNITS: Final = {
    "": 1,
    "b": 1,
    "k": KIB,
    "kib": KIB,
    "kb": 1000,
    "m": MIB,
    "mib": MIB,
    "mb": MB,
    "g": GIB,
    "gib": GIB,
    "gb": 1000 * MB,
}
_SIZE_RE: Final = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*")
_READ_BLOCK: Final = 8 * MIB


def parse_size(text: str) -> int:
    """Bytes in ``text``, e.g. ``4096``, ``512MiB``, ``1GiB`` (k/M/G alone are powers of 1024)."""
    match = _SIZE_RE.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(f"invalid size {text!r}: write e.g. 4096, 512MiB or 1GiB")
    return int(float(match.group(1)) * _UNITS[unit])


def format_size(size: float) -> str:
    """``size`` bytes in binary units, e.g. ``1 GiB``, ``446.6 MiB``."""
    for unit, scale in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if abs(size) >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{int(size)} B"


def mb_per_s(size: int, seconds: float) -> float:
    """Throughput in MB/s (10^6 bytes per second)."""
    return size / MB / seconds if seconds > 0 else float("inf")


# --- files and caches -------------------------------------------------------------------------


def files_under(path: Path) -> list[Path]:
    """``path`` itself if it is a file, else every regular file below it."""
    if path.is_file():
        return [path]
    found: list[Path] = []
    for directory, _, names in os.walk(path):
        found.extend(Path(directory) / name for name in names)
    return found


def warm(*paths: Path) -> int:
    """Read every file at or under ``paths`` once, so it sits in the page cache; return bytes read."""
    buffer = bytearray(_READ_BLOCK)
    total = 0
    for path in paths:
        for file in files_under(path):
            with open(file, "rb", buffering=0) as handle:
                while got := handle.readinto(buffer):
                    total += got
    return total


def settle() -> None:
    """Write back every dirty page, so the next timed step does not pay for the previous one."""
    os.sync()


def fsync_file(path: Path) -> None:
    """fsync ``path`` (written by another process: the kernel flushes the inode's pages)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove(*paths: Path) -> None:
    """Delete files or directory trees, ignoring ones that are not there."""
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def disk_usage(path: Path) -> int:
    """Bytes allocated on disk by the files at or under ``path`` (holes do not count)."""
    return sum(file.stat().st_blocks * 512 for file in files_under(path))


def tree_bytes(path: Path) -> int:
    """The sum of the sizes (``st_size``) of the files at or under ``path``; 0 if it is missing."""
    if not path.exists():
        return 0
    return sum(file.stat().st_size for file in files_under(path))


def clean_stale_runs(work_dir: Path) -> list[Path]:
    """Remove ``work_dir/run-{pid}-*`` directories whose benchmark process no longer exists."""
    removed: list[Path] = []
    for entry in work_dir.glob("run-*"):
        try:
            pid = int(entry.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            remove(entry)
            removed.append(entry)
        except PermissionError:
            pass
    return removed


def source_digest(package_dir: Path) -> str:
    """A digest of the ``*.py`` files under ``package_dir``, to tell which code a result was measured on."""
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        digest.update(str(path.relative_to(package_dir)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


# --- child processes ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finished:
    """A child process that ran to completion."""

    seconds: float
    """Wall time from spawn to reaping."""
    peak_rss_kib: int
    """The command's own peak resident set size (see :func:`rss_method`)."""
    user_s: float
    system_s: float
    stdout: str
    stderr: str


class ChildFailedError(RuntimeError):
    """A benchmark child exited with a non-zero status."""


@functools.cache
def _gnu_time() -> str | None:
    """GNU ``time``, if installed: it reports the peak RSS of the command alone."""
    path = shutil.which("time")
    if path is None:
        return None
    try:
        result = subprocess.run([path, "--version"], capture_output=True, text=True, check=False, timeout=10)
    except OSError:
        return None
    return path if "GNU" in result.stdout + result.stderr else None


def rss_method() -> str:
    """How :func:`run_child` measures peak RSS on this machine.

    A child's ``ru_maxrss`` from ``wait4`` starts at the *parent's* peak RSS (``execve``
    records the old address space's high-water mark), so it only bounds the command from
    above. GNU ``time`` is a small process that forks the command and reports its own
    ``ru_maxrss``, which is what we want; it is used when installed.
    """
    if _gnu_time() is not None:
        return "GNU time %M (ru_maxrss of the command itself)"
    return "wait4 ru_maxrss (upper bound: includes the parent's peak RSS at spawn)"


def run_child(
    command: Sequence[str], *, stdout: IO[bytes] | None = None, env: dict[str, str] | None = None
) -> Finished:
    """Run ``command`` to completion and measure it (wall time, CPU time, peak RSS).

    ``stdout`` receives the child's output if given (a shell's ``> FILE``); otherwise it is
    captured and returned. ``env`` replaces this process's environment for the child if given.
    Raises :class:`ChildFailedError` with the child's stderr if it fails.
    """
    gnu_time = _gnu_time()
    with (
        tempfile.TemporaryFile() as captured_out,
        tempfile.TemporaryFile() as captured_err,
        tempfile.NamedTemporaryFile(mode="r", prefix="rss-", suffix=".txt") as rss_file,
    ):
        argv = list(command)
        if gnu_time is not None:
            argv = [gnu_time, "-f", "%M", "-o", rss_file.name, *argv]
        started = time.perf_counter()
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=stdout or captured_out, stderr=captured_err, env=env
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        captured_out.seek(0)
        captured_err.seek(0)
        out = captured_out.read().decode(errors="replace")
        err = captured_err.read().decode(errors="replace")
        reported = rss_file.read().split()
    if process.returncode != 0:
        raise ChildFailedError(
            f"{' '.join(command)} exited with status {process.returncode}:\n{err.strip() or out.strip()}"
        )
    peak = int(reported[-1]) if gnu_time is not None and reported else usage.ru_maxrss
    return Finished(seconds, peak, usage.ru_utime, usage.ru_stime, out, err)


def own_peak_rss_kib() -> int | None:
    """This process's peak RSS (``VmHWM``) in KiB, from ``/proc/self/status``; None if unknown."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


# --- samples and summaries ------------------------------------------------------------------


@dataclass(slots=True)
class Sample:
    """One timed run of one operation."""

    seconds: float
    """The time that counts: the operation itself, durability included."""
    wall_s: float
    """Spawn to exit of the child (plus the baseline's fsync): includes interpreter start-up."""
    peak_rss_kib: int
    cpu_s: float
    load1: float
    """1-minute load average just before the run: a hint of foreign load."""
    other_cpu_s: float
    """CPU time the rest of the machine used during the run (see :func:`cpu_busy_s`)."""
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 4),
            "wall_s": round(self.wall_s, 4),
            "peak_rss_kib": self.peak_rss_kib,
            "cpu_s": round(self.cpu_s, 3),
            "load1": self.load1,
            "other_cpu_s": round(self.other_cpu_s, 3),
            "details": self.details,
        }


def cpu_busy_s() -> float:
    """CPU seconds spent busy on all cores since boot (``/proc/stat``); 0.0 if unknown.

    The difference over a run minus the run's own CPU time is what everything else (other
    processes, kernel writeback) took meanwhile: a measure of the noise of that run.
    """
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def load1() -> float:
    return round(os.getloadavg()[0], 2)


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def summarize(samples: Sequence[Sample], size: int) -> dict[str, Any]:
    """Median seconds, MB/s of ``size`` at the median, peak RSS, and every raw sample."""
    seconds = median(sample.seconds for sample in samples)
    return {
        "runs": len(samples),
        "median_s": round(seconds, 4),
        "min_s": round(min(sample.seconds for sample in samples), 4),
        "max_s": round(max(sample.seconds for sample in samples), 4),
        "mb_s": round(mb_per_s(size, seconds), 1),
        "peak_rss_mib": round(max(sample.peak_rss_kib for sample in samples) / KIB, 1),
        "samples": [sample.to_json() for sample in samples],
    }


# --- output ---------------------------------------------------------------------------------


def log(message: str) -> None:
    """A progress line on stderr (stdout carries the report, or a child's JSON)."""
    print(message, file=sys.stderr, flush=True)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, right: Sequence[bool]) -> str:
    """A plain-text table; ``right[i]`` right-aligns column ``i``."""
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if align else cell.ljust(width)
            for cell, width, align in zip(cells, widths, right, strict=True)
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` (parents created), replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(temp, path)


def _command_output(*command: str) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=10)
    except OSError as exc:
        return f"unavailable ({exc.strerror})"
    return (result.stdout or result.stderr).strip()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * KIB
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info(work_dir: Path) -> dict[str, Any]:
    """What the numbers were measured on."""
    usage = os.statvfs(work_dir)
    return {
        "time_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "mem_total_bytes": _mem_total(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "zstd_cli": _command_output("zstd", "--version"),
        "cp": _command_output("cp", "--version").splitlines()[0],
        "packages": {
            name: _version(name) for name in ("blobrep", "anyio", "pyfastcdc", "xxhash", "zstandard")
        },
        "work_dir": str(work_dir),
        "work_fs_free_bytes": usage.f_bavail * usage.f_frsize,
        "loadavg_start": list(os.getloadavg()),
        "rss_method": rss_method(),
    }
