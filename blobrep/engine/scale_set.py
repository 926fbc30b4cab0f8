"""What a scale set of deployments shares beside its reader: its counts checked, the file of
each instance, and one progress over every instance and disk (:func:`~blobrep.engine.deploy.deploy_many`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from blobrep.engine.disk_dirs import place
from blobrep.errors import InvalidParameterError

if TYPE_CHECKING:
    from blobrep.engine.publish import ProgressCallback


def check_counts(count: int, concurrency: int | None) -> None:
    """Refuse a scale set of no deployments, or run none at a time."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidParameterError(f"deployment count {count!r} must be a whole number >= 1")
    if concurrency is not None and (isinstance(concurrency, bool) or concurrency < 1):
        raise InvalidParameterError(f"concurrency {concurrency!r} must be a whole number >= 1")


class ScaleSetProgress:
    """One progress over a scale set: image bytes deployed over every deployment and disk,
    out of ``count`` x the size of every disk."""

    def __init__(self, progress: ProgressCallback | None, count: int, sizes: Sequence[int]) -> None:
        self._progress = progress
        self._total = count * sum(sizes)
        self._offsets = [sum(sizes[:position]) for position in range(len(sizes))]
        self._each = [0] * count
        self._all = 0

    def watch(self, index: int, position: int) -> ProgressCallback | None:
        """The callback of deployment ``index`` for its disk at ``position`` (0: the OS disk)."""
        if self._progress is None:
            return None
        before = self._offsets[position]
        return lambda done, _: self._advance(index, before + done)

    def _advance(self, index: int, done: int) -> None:
        self._all += done - self._each[index]
        self._each[index] = done
        assert self._progress is not None
        self._progress(self._all, self._total)


def scale_set_targets(output_dir: Path | None, count: int, layout: Callable[[int], str] | None) -> list[Path]:
    """The disk file of each of ``count`` deployments (none without ``output_dir``)."""
    if output_dir is None:
        return []
    return [
        place(output_dir, f"vm-{index}.img" if layout is None else layout(index)) for index in range(count)
    ]
