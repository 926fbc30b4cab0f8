"""Operations: who is moving a version through a non-terminal state, and since when.

A version that is Creating, Updating or Deleting, or that is Replicating in a region, is in
the middle of something. If the process doing it dies, the state stays behind and nothing
would ever move it on. So the catalog records, beside the state, an :class:`Operation`: which
process runs it (a :class:`~blobrep.core.holders.ProcessIdentity`, which a later process can
check for life on the same host) and when it last said it was still working (its heartbeat,
which is what judges an owner on another host). Recovery leaves a live operation alone and
takes over one whose owner is dead; it never guesses from the age of the state alone.

These are the values and the pure rules; the catalog stores them and the engine acts on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from blobrep.core.holders import ProcessIdentity
from blobrep.core.ids import ResourceId

if TYPE_CHECKING:
    from blobrep.core.version import ImageVersion


class OperationKind(StrEnum):
    """What an operation does; stored as its value."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    REPLICATE = "replicate"


_NOUNS: Final = {
    OperationKind.CREATE: "creation",
    OperationKind.UPDATE: "update",
    OperationKind.DELETE: "deletion",
    OperationKind.REPLICATE: "replication",
}

#: The owner of an operation whose recorded owner cannot be read (a row edited by hand, or
#: written in a form this blobrep does not know). Its pid 0 is one that no real owner has
#: (:meth:`ProcessIdentity.from_json` refuses it) and its empty host matches no host, so
#: nothing mistakes it for a live process on this one: it is judged by its heartbeat alone.
UNKNOWN_OWNER: Final = ProcessIdentity(host="", boot_id="", pid_namespace="", pid=0, started=None)


@dataclass(frozen=True, slots=True)
class Operation:
    """One running (or abandoned) operation on a version, or on a version in one region."""

    gallery: str
    image: str
    version: ImageVersion
    region: str
    """The region replicated into; ``""`` for the version's own provisioning operation."""
    kind: OperationKind
    owner: ProcessIdentity
    """The process that runs it; :data:`UNKNOWN_OWNER` when the record cannot be read."""
    started: datetime
    heartbeat: datetime
    """When the owner last said it was still working (aware, UTC)."""

    @property
    def resource(self) -> ResourceId:
        """The id of the version the operation works on."""
        return ResourceId(self.gallery, self.image, self.version)

    def describe(self) -> str:
        """The operation for messages: what, on which version, where, and by whom."""
        where = f" in {self.region}" if self.region else ""
        who = "an unknown process" if self.owner == UNKNOWN_OWNER else self.owner.describe()
        return f"{_NOUNS[self.kind]} of {self.resource}{where} by {who}"


def heartbeat_expired(op: Operation, now: datetime, ttl: timedelta) -> bool:
    """True if ``op``'s owner has not sent a heartbeat for ``ttl`` or longer at ``now``.

    This is the judgement for an owner whose life cannot be checked directly (another host,
    an unknown owner); an owner known to be dead needs no time-out at all. ``now`` must be an
    aware datetime, like the heartbeats the catalog returns.
    """
    return now - op.heartbeat >= ttl
