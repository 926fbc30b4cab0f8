"""Replication planning: desired state (every object a manifest needs in every target replica)
versus actual state (what each replica holds) turned into the copies that close the gap.

The planner is pure so that the one question that decides what moves over the network, "which
replica lacks which object", is answered in one place and tested exhaustively; the engine only
carries the plan out.

Objects are named opaquely: the engine passes storage keys (a pack's, or a chunk's stored as
its own object, :meth:`blobrep.core.manifest.Manifest.objects`), so a pack and a chunk can
never be mistaken for each other even if their digests were equal. A copy's ``digest`` and a
replica's ``missing`` hold those names.

* A replica whose manifest is already present (and equal to the source's) is complete: it
  receives nothing, even if an object of it went bad since (finding that is the scrubber's job).
* Any other replica must receive every object of the manifest it does not hold at the size
  the manifest records. A copy of another size is damaged or from a foreign writer and is
  overwritten; objects a replica holds that the manifest does not name are ignored.
* Each object that at least one replica lacks is one :class:`ChunkCopy`: read once from the
  source, written to each of its targets. Objects nobody lacks are not in the plan at all.
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
    """Size of every object of the manifest the replica holds, by name; absent if missing."""


@dataclass(frozen=True, slots=True)
class ReplicaPlan:
    """What one replica must receive before its manifest can be written."""

    region: str
    index: int
    complete: bool
    """The manifest is already there: nothing to copy, nothing to commit."""
    missing: tuple[str, ...]
    """Names of the objects to write into this replica, in manifest order."""
    missing_bytes: int


@dataclass(frozen=True, slots=True)
class ChunkCopy:
    """One object (a pack, or a chunk stored alone) to read once and write to every replica
    that lacks it."""

    digest: str
    """The object's name as the caller gave it (the engine's are storage keys)."""
    stored_length: int
    """Its size in a replica."""
    targets: tuple[int, ...]
    """Positions in :attr:`ReplicationPlan.replicas` of the replicas that lack the object."""


@dataclass(frozen=True, slots=True)
class ReplicationPlan:
    """The actions that bring every target replica to the desired state."""

    replicas: tuple[ReplicaPlan, ...]
    """One per input replica, in input order."""
    copies: tuple[ChunkCopy, ...]
    """One per object some replica lacks, in manifest order."""
    region_bytes: Mapping[str, int]
    """Stored bytes to write into each region (all its replicas); every region appears."""

    @property
    def total_bytes(self) -> int:
        return sum(self.region_bytes.values())


def plan_replication(objects: Mapping[str, int], replicas: Sequence[ReplicaState]) -> ReplicationPlan:
    """Plan the copies that fill every incomplete replica.

    Args:
        objects: every object the manifest needs, name -> size in a replica, in manifest
            order (the engine passes ``Manifest.objects(gallery)``).
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
            missing = [name for name, size in objects.items() if replica.held.get(name) != size]
        for name in missing:
            targets.setdefault(name, []).append(position)
        size = sum(objects[name] for name in missing)
        region_bytes[replica.region] = region_bytes.get(replica.region, 0) + size
        plans.append(ReplicaPlan(replica.region, replica.index, replica.has_manifest, tuple(missing), size))
    copies = tuple(
        ChunkCopy(name, size, tuple(targets[name])) for name, size in objects.items() if name in targets
    )
    return ReplicationPlan(tuple(plans), copies, region_bytes)


def progress_percent(done: int, total: int) -> int:
    """Progress 0..100 from bytes; nothing to do counts as done."""
    if total <= 0:
        return 100
    return max(0, min(100, done * 100 // total))
