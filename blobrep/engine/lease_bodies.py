"""What a lease says about its holder: the body written into each lease object, read back as a
:class:`LeaseInfo`, and the judgement of whether its holder still lives.

A body is a small JSON object: what the holder does, whether its lease is exclusive, the TTL
it promises to refresh within, and its process. Reading is tolerant, since a replica is
shared ground: a body that does not parse still counts as a lease (judged by the reader's
default TTL), because a holder we cannot understand may still be writing.

A lease names its holder's process (:class:`~blobrep.core.holders.ProcessIdentity`: host,
boot, pid namespace, pid and start time). A holder that this host can prove dead (killed, or
gone with an earlier boot) counts for nothing at once, and the next acquirer deletes its
lease: one ``kill -9`` of a garbage collection must not stall every publish for a TTL. A
holder this host cannot judge (another host, another pid namespace, a body written before
leases named their process) still goes stale only after its TTL; our own process's leases
are never judged dead. Asking ``/proc`` blocks, so :func:`judge` takes a whole batch of
owners, for one hop to a worker thread.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from blobrep.core.holders import Liveness, ProcessIdentity
from blobrep.storage.processes import holder_alive, this_process


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """One lease found in a replica, as its holder described itself."""

    key: str
    lease_id: str
    exclusive: bool
    holder: str
    pid: int | None
    host: str
    created: float | None
    ttl: float
    modified: float
    """Store time of the holder's last write of the lease."""
    owner: ProcessIdentity | None = None
    """The holder's process, None for a body that does not name it (judged by TTL alone)."""
    liveness: Liveness = Liveness.UNKNOWN
    """What this host could tell of ``owner`` when the lease was read."""

    def live_at(self, now: float) -> bool:
        """True if the lease still counts at store time ``now``: refreshed within its TTL and
        not held by a process known to be dead."""
        return self.liveness is not Liveness.DEAD and now - self.modified < self.ttl

    def describe(self) -> str:
        """The holder for messages: what it does, where it runs, which lease."""
        kind = "exclusive" if self.exclusive else "shared"
        if self.owner is not None:
            where = self.owner.describe()
        else:
            where = f"pid {'?' if self.pid is None else self.pid} on {self.host}"
        return f"{self.holder} ({where}, {kind} lease {self.lease_id})"


def encode_body(holder: str, exclusive: bool, ttl: float, owner: ProcessIdentity) -> bytes:
    """The body of a lease held by ``owner`` (its creation time from this host's clock)."""
    body = {
        "holder": holder,
        "exclusive": exclusive,
        # "pid" and "host" stay for readers that predate "owner".
        "pid": owner.pid,
        "host": owner.host,
        "owner": owner.to_json(),
        "created": time.time(),
        "ttl": ttl,
    }
    return json.dumps(body, sort_keys=True).encode("utf-8")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def decode_body(
    key: str, lease_id: str, exclusive: bool, data: bytes, default_ttl: float, modified: float
) -> LeaseInfo:
    """Describe a lease from its body; tolerant, since a replica is shared ground.

    An unreadable body still counts as a lease (judged by ``default_ttl``): a holder we cannot
    understand may still be writing.
    """
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        body = {}
    holder = body.get("holder")
    host = body.get("host")
    pid = body.get("pid")
    ttl = _number(body.get("ttl"))
    return LeaseInfo(
        key=key,
        lease_id=lease_id,
        exclusive=exclusive,
        holder=holder if isinstance(holder, str) else "an unknown holder",
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        host=host if isinstance(host, str) else "an unknown host",
        created=_number(body.get("created")),
        ttl=ttl if ttl is not None and ttl > 0 else default_ttl,
        modified=modified,
        owner=ProcessIdentity.from_json(body.get("owner")),
    )


def judge(owners: Sequence[ProcessIdentity | None]) -> list[Liveness]:
    """Liveness of each owner (blocking: reads ``/proc``). Our own process is always alive:
    it is the one asking, whatever a quirk of ``/proc`` might say."""
    me = this_process()
    return [
        Liveness.UNKNOWN if owner is None else Liveness.ALIVE if owner == me else holder_alive(owner)
        for owner in owners
    ]
