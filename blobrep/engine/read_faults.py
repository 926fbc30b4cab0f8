"""What a read through a :class:`~blobrep.engine.chunk_read.ReplicaSet` says about the replicas
it tried: each replica's fault, the read that succeeded, and the error of one that did not.

Kept apart from the read path itself so that its callers (restore, deployments, replication,
scrub) can name these values without the machinery that produces them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from blobrep.errors import BlobrepError, ChunkCorruptError, ChunkMissingError, StorageError

__all__ = ["ChunkFault", "FaultKind", "Served", "exhausted", "failure_detail", "fault_kind"]

FaultKind = Literal["missing", "corrupt", "failed"]

_EVERY_REPLICA: Final = "every replica failed: "


@dataclass(frozen=True, slots=True)
class ChunkFault:
    """Why one replica could not serve one chunk."""

    replica: str
    index: int
    """Position of the replica in the set."""
    kind: FaultKind
    """``missing`` or ``corrupt`` (the copy is bad: repairable), ``failed`` (the store failed)."""
    detail: str


@dataclass(frozen=True, slots=True)
class Served:
    """A chunk read that succeeded: its verified plain bytes, its frame, and who served it."""

    plain: bytes | memoryview
    frame: bytes
    index: int
    faults: tuple[ChunkFault, ...]
    """Replicas tried before this one, and what was wrong with each."""


def failure_detail(error: BlobrepError) -> str:
    """What a failed :meth:`~blobrep.engine.chunk_read.ReplicaSet.read` says: every replica's
    fault when several were tried (the note the read added), else the error itself."""
    notes = [note for note in getattr(error, "__notes__", ()) if note.startswith(_EVERY_REPLICA)]
    return notes[-1] if notes else str(error)


def fault_kind(error: BlobrepError) -> FaultKind:
    """How a read error counts: a bad copy (``missing``/``corrupt``) or a failing store."""
    if isinstance(error, ChunkMissingError):
        return "missing"
    if isinstance(error, ChunkCorruptError):
        return "corrupt"
    return "failed"


def exhausted(digest: str, errors: list[BlobrepError], replicas: int) -> BlobrepError:
    """The error of a read of chunk ``digest`` that every one of ``replicas`` failed, given
    each replica's error in the order tried: the last copy's damage with a note listing them
    all, or a :class:`StorageError` naming the chunk if the last store failed."""
    last = errors[-1]
    if not isinstance(last, ChunkMissingError | ChunkCorruptError):
        return StorageError(
            f"chunk {digest} could not be read from any of the {replicas} replicas;"
            f" the last failed with: {last}"
        )
    if len(errors) > 1:
        last.add_note(_EVERY_REPLICA + "; ".join(str(error) for error in errors))
    return last
