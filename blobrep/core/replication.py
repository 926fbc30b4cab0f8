"""Replication planning: desired state (a manifest's chunks in every target replica) versus
actual state (what each replica holds) turned into the chunk copies that close the gap.

The planner is pure so that the one question that decides what moves over the network, "which
replica lacks which chunk", is answered in one place and tested exhaustively; the engine only
carries the plan out.

* A replica whose manifest is already present (and equal to the source's) is complete: it
  receives nothing, even if a chunk of it went bad since (finding that is the scrubber's job).
* Any other replica must receive every chunk of the manifest it does not hold at the stored
  length the manifest records. A copy of another length is damaged or from a foreign writer
  and is overwritten; chunks a replica holds that the manifest does not name are ignored.
* Each chunk that at least one replica lacks is one :class:`ChunkCopy`: read once from the
  source, written to each of its targets. Chunks nobody lacks are not in the plan at all.
* Progress is counted in stored bytes written, per region, so 0..100 moves evenly with the
  work and a region that needs nothing is complete (100) at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from blobrep.errors import InvalidParameterError


@dataclass(frozen=True, slots=True)
class ReplicaState:
    """What one target replica holds now (its actual state)."""

    region: str
    index: int
    """Which replica of the region, 1 first."""
    has_manifest: bool
    """True if the replica already holds this very manifest (so the blob is readable there)."""
    held: Mapping[str, int] = field(default_factory=dict)
    """Stored size of every chunk of the manifest the replica holds, by digest; absent if missing."""


@dataclass(frozen=True, slots=True)
class ReplicaPlan:
    """What one replica must receive before its manifest can be written."""

    region: str
    index: int
    complete: bool
    """The manifest is already there: nothing to copy, nothing to commit."""
    missing: tuple[str, ...]
    """Digests to write into this replica, in manifest order."""
    missing_bytes: int


@dataclass(frozen=True, slots=True)
class ChunkCopy:
    """One chunk to read once and write to every replica that lacks it."""

    digest: str
    stored_length: int
    targets: tuple[int, ...]
    """Positions in :attr:`ReplicationPlan.replicas` of the replicas that lack the chunk."""


@dataclass(frozen=True, slots=True)
class ReplicationPlan:
    """The actions that bring every target replica to the desired state."""

    replicas: tuple[ReplicaPlan, ...]
    """One per input replica, in input order."""
    copies: tuple[ChunkCopy, ...]
    """One per distinct chunk some replica lacks, in manifest order."""
    region_bytes: Mapping[str, int]
    """Stored bytes to write into each region (all its replicas); every region appears."""

    @property
    def total_bytes(self) -> int:
        return sum(self.region_bytes.values())


def plan_replication(chunks: Mapping[str, int], replicas: Sequence[ReplicaState]) -> ReplicationPlan:
    """Plan the chunk copies that fill every incomplete replica.

    Args:
        chunks: the manifest's distinct stored chunks, digest -> stored length, in manifest
            order (``Manifest.stored_digests()``).
        replicas: the actual state of every target replica; (region, index) pairs are unique.

    Raises:
        InvalidParameterError: if two replicas have the same (region, index).
    """
    seen: set[tuple[str, int]] = set()
    plans: list[ReplicaPlan] = []
    region_bytes: dict[str, int] = {}
    targets: dict[str, list[int]] = {}
    for position, replica in enumerate(replicas):
        ident = (replica.region, replica.index)
        if ident in seen:
            raise InvalidParameterError(f"replica {replica.index} of region {replica.region} is listed twice")
        seen.add(ident)
        missing: list[str] = []
        if not replica.has_manifest:
            missing = [digest for digest, size in chunks.items() if replica.held.get(digest) != size]
        for digest in missing:
            targets.setdefault(digest, []).append(position)
        size = sum(chunks[digest] for digest in missing)
        region_bytes[replica.region] = region_bytes.get(replica.region, 0) + size
        plans.append(ReplicaPlan(replica.region, replica.index, replica.has_manifest, tuple(missing), size))
    copies = tuple(
        ChunkCopy(digest, size, tuple(targets[digest]))
        for digest, size in chunks.items()
        if digest in targets
    )
    return ReplicationPlan(tuple(plans), copies, region_bytes)


def progress_percent(done: int, total: int) -> int:
    """Progress 0..100 from bytes; nothing to do counts as done."""
    if total <= 0:
        return 100
    return max(0, min(100, done * 100 // total))
