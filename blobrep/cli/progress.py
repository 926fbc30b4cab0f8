"""A progress bar on stderr, drawn only when stderr is a terminal (never in pipes or logs)."""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Protocol, TextIO, TypeVar

from blobrep.core.units import format_size

_T = TypeVar("_T")
_WIDTH = 28
_INTERVAL = 0.1


class ProgressBar:
    """Callable as ``bar(done, total)``; use as a context manager to finish the line."""

    def __init__(self, label: str, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int | None) -> None:
        """Draw ``done`` of ``total`` bytes; a total of None (a stream of unknown length)
        draws the bytes and the rate only."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last_draw < _INTERVAL and (total is None or done < total):
            return
        self._last_draw = now
        rate = done / max(now - self.started, 1e-9)
        if total is None:
            self.stream.write(f"\r{self.label:<12} {format_size(done):>10}  {rate / 1e6:7.1f} MB/s")
        else:
            fraction = done / total if total else 1.0
            filled = int(fraction * _WIDTH)
            self.stream.write(
                f"\r{self.label:<12} [{'#' * filled}{'.' * (_WIDTH - filled)}] {fraction:6.1%}"
                f"  {format_size(done)} / {format_size(total)}  {rate / 1e6:7.1f} MB/s"
            )
        self.stream.flush()
        self._drawn = True

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def run_with_progress(label: str, job: Callable[[ProgressBar], Awaitable[_T]]) -> tuple[_T, float]:
    """Run ``job`` (given a progress bar to report to) on a fresh event loop.

    Returns its result and the seconds it took, which every command reports.
    """
    import anyio  # loaded by the commands that run a loop, not by every command

    started = time.perf_counter()
    with ProgressBar(label) as bar:
        result = anyio.run(job, bar)
    return result, time.perf_counter() - started


class RegionBars:
    """One progress line per region, redrawn in place on a terminal (nothing elsewhere).

    Callable with any object that has ``region``, ``done_bytes``, ``total_bytes``,
    ``completed_replicas`` and ``target_replicas``: the engine's batched region progress.
    """

    def __init__(self, label: str, stream: TextIO | None = None, *, enabled: bool | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.started = time.monotonic()
        self._lines: dict[str, str] = {}
        self._drawn = 0

    def __call__(self, update: _RegionUpdate) -> None:
        if not self.enabled:
            return
        total = update.total_bytes
        fraction = update.done_bytes / total if total else 1.0
        filled = int(fraction * _WIDTH)
        self._lines[update.region] = (
            f"{self.label} {update.region:<16} [{'#' * filled}{'.' * (_WIDTH - filled)}] {fraction:6.1%}"
            f"  {format_size(update.done_bytes)} / {format_size(total)}"
            f"  replicas {update.completed_replicas}/{update.target_replicas}"
        )
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F")
        for line in self._lines.values():
            self.stream.write(f"\x1b[2K{line}\n")
        self._drawn = len(self._lines)
        self.stream.flush()

    def __enter__(self) -> RegionBars:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stream.flush()


class _RegionUpdate(Protocol):
    @property
    def region(self) -> str: ...
    @property
    def done_bytes(self) -> int: ...
    @property
    def total_bytes(self) -> int: ...
    @property
    def completed_replicas(self) -> int: ...
    @property
    def target_replicas(self) -> int: ...
