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
    """Stored (compressed) bytes it returned to chunk reads, good or bad: a chunk in a pack
    costs its frame's range, not the pack. What repairs read is not counted here."""
    requests: int
    """Reads sent to it: one per chunk tried there (one per run of frames back to back in a
    pack, where a file write reads them together), and one more where the pack a chunk is in
    is missing there and the chunk's own object was asked for instead."""
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
    """Copies written back to a replica that lacked them or held them corrupt: a chunk's frame,
    or the whole pack holding a bad chunk (once per replica and pack, however many of its
    chunks were bad)."""
    repair_failures: int
    """Repairs whose write failed, or pack mends that found no verified copy (no replica held
    the pack whole, and patching the damaged copy did not give it back); the damage stays and
    a later read or scrub meets it again."""
    repaired_bytes: int = 0
    """Bytes of the copies written by repairs: a pack repair writes the whole pack."""

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
            self.repaired_bytes - earlier.repaired_bytes,
        )

    def plus(self, other: ReaderStatistics) -> ReaderStatistics:
        """This work and ``other``'s (another reader's) together: what the readers of a
        version's several disks did for one deployment."""
        replicas = dict(self.replicas)
        for name, theirs in other.replicas.items():
            mine = replicas.get(name)
            replicas[name] = (
                theirs
                if mine is None
                else ReplicaStatistics(
                    mine.bytes_served + theirs.bytes_served,
                    mine.requests + theirs.requests,
                    mine.failures + theirs.failures,
                )
            )
        return ReaderStatistics(
            MappingProxyType(replicas),
            self.chunks + other.chunks,
            self.failovers + other.failovers,
            self.repairs + other.repairs,
            self.repair_failures + other.repair_failures,
            self.repaired_bytes + other.repaired_bytes,
        )
