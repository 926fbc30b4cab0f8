"""What a reader did: immutable snapshots of the work of a :class:`~blobrep.engine.chunk_read.ReplicaSet`.

The set keeps live counters on the event loop; callers (deployments, benchmarks, the service's
views) get these frozen values instead, so a snapshot never changes under them and two of them
can be subtracted (:meth:`ReaderStatistics.since`) to see the work of one deployment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class ReplicaStatistics:
    """What one replica did for a reader."""

    bytes_served: int
    """Stored (compressed) bytes it returned, good or bad."""
    requests: int
    """Chunk reads sent to it."""
    failures: int
    """Reads that found the chunk missing or corrupt there, or failed with an I/O error."""


@dataclass(frozen=True, slots=True)
class ReaderStatistics:
    """A snapshot of a reader's work: per replica name, and failovers and repairs overall."""

    replicas: Mapping[str, ReplicaStatistics]
    chunks: int
    """Stored chunks served (zero chunks need no read and are not counted)."""
    failovers: int
    """Times a read moved on to another replica after one failed."""
    repairs: int
    """Chunks written back to a replica that lacked them or held them corrupt."""
    repair_failures: int
    """Repairs whose write failed; the damage stays and a later read or scrub meets it again."""

    @property
    def bytes_served(self) -> int:
        """Stored bytes returned by every replica together."""
        return sum(replica.bytes_served for replica in self.replicas.values())

    def since(self, earlier: ReaderStatistics) -> ReaderStatistics:
        """The work done between ``earlier`` (a snapshot of the same reader) and this one."""
        replicas = {
            name: ReplicaStatistics(
                now.bytes_served - earlier.replicas[name].bytes_served,
                now.requests - earlier.replicas[name].requests,
                now.failures - earlier.replicas[name].failures,
            )
            for name, now in self.replicas.items()
        }
        return ReaderStatistics(
            MappingProxyType(replicas),
            self.chunks - earlier.chunks,
            self.failovers - earlier.failovers,
            self.repairs - earlier.repairs,
            self.repair_failures - earlier.repair_failures,
        )
