"""Replication's regions: what a caller asks for and hears back, and the state of a run per region.

A region fails or is deferred as a whole, while its replicas each complete on their own; the
run (:mod:`blobrep.engine.replicate`) keeps that state here, on the event loop, and turns it
into :class:`RegionProgress` reports and one :class:`RegionOutcome` per region.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from blobrep.core.replication import ReplicaState
    from blobrep.storage.base import Store


@dataclass(frozen=True, slots=True)
class RegionTarget:
    """A region to replicate into."""

    region: str
    stores: Sequence[Store]
    """Every desired replica of the region, replica 1 first."""


@dataclass(frozen=True, slots=True)
class RegionProgress:
    """How far one region has come, in stored bytes written into all its replicas."""

    region: str
    done_bytes: int
    total_bytes: int
    completed_replicas: int
    target_replicas: int


@dataclass(frozen=True, slots=True)
class RegionOutcome:
    """What replication did in one region."""

    region: str
    completed_replicas: int
    target_replicas: int
    copied_chunks: int
    """Chunks written into this region, summed over its replicas: a chunk stored alone counts
    once, a pack counts the chunks of the blob it carries."""
    copied_bytes: int
    """Bytes written into this region (packs and chunks stored alone, as stored), summed over
    its replicas."""
    error: str | None
    """None if every replica of the region is complete (or the region was deferred); else the
    reason in words."""
    deferred: str | None = None
    """Why the region was left alone this time (a replica busy with another operation), or None."""


RegionProgressCallback = Callable[[RegionProgress], None]
"""Called on the event loop, at most every :data:`~blobrep.engine.replicate.PROGRESS_INTERVAL`
per region, plus once at its end (the last report of a region that succeeded has
``done_bytes == total_bytes``)."""


@dataclass(slots=True, eq=False)
class RegionRun:
    """One target region during a run: its replicas, its byte counts, and why it stopped."""

    target: RegionTarget
    replicas: list[ReplicaRun] = field(default_factory=list)
    error: str | None = None
    deferred: str | None = None
    total_bytes: int = 0
    done_bytes: int = 0
    copied_chunks: int = 0
    reported: float = float("-inf")
    finished: bool = False

    def fail(self, reason: str) -> None:
        if self.error is None and self.deferred is None:
            self.error = reason

    def defer(self, reason: str) -> None:
        if self.error is None and self.deferred is None:
            self.deferred = reason

    @property
    def stopped(self) -> bool:
        """No more work goes to this region: it failed or was deferred."""
        return self.error is not None or self.deferred is not None

    @property
    def completed(self) -> int:
        return sum(1 for replica in self.replicas if replica.complete)


@dataclass(slots=True, eq=False)
class ReplicaRun:
    """One replica of a target region during a run, and what it still lacks."""

    region: RegionRun
    index: int
    store: Store
    complete: bool = False
    state: ReplicaState | None = None
    remaining: int = 0
    """Objects (packs, chunks stored alone) still to land before the manifest may be written."""
