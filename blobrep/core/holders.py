"""Who holds something: a process named so that a later process reusing its pid is not it.

Leases in replicas and operations in the catalog name their holder with a
:class:`ProcessIdentity`, so that the next process to meet them can tell a live holder (leave
it alone) from one that died (move on at once, without waiting for a time-out). Finding out
whether a holder still runs is I/O and lives in :mod:`blobrep.storage.processes`; the values
and their JSON form are here, where the catalog and the engine can both use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class Liveness(Enum):
    """What this host can say about a holder."""

    ALIVE = "alive"
    DEAD = "dead"
    UNKNOWN = "unknown"
    """Another host or namespace, or this platform cannot tell: only a time-out can judge."""


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    """A process, named so that it cannot be confused with a later one that reuses its pid."""

    host: str
    boot_id: str
    pid_namespace: str
    pid: int
    started: int | None
    """Start time in clock ticks since boot; None where ``/proc`` cannot tell."""

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "boot_id": self.boot_id,
            "pid_namespace": self.pid_namespace,
            "pid": self.pid,
            "started": self.started,
        }

    @classmethod
    def from_json(cls, value: Any) -> ProcessIdentity | None:
        """The identity in ``value`` (as written by :meth:`to_json`), None if it is not one.

        Tolerant by design: leases and catalog rows are shared ground, and a holder we cannot
        understand is judged by time-outs instead.
        """
        if not isinstance(value, dict):
            return None
        host, boot, namespace = value.get("host"), value.get("boot_id"), value.get("pid_namespace", "")
        pid, started = value.get("pid"), value.get("started")
        if not (isinstance(host, str) and isinstance(boot, str) and isinstance(namespace, str)):
            return None
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
            return None
        if started is not None and (isinstance(started, bool) or not isinstance(started, int)):
            return None
        return cls(host, boot, namespace, pid, started)

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}"
