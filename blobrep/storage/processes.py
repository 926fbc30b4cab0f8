"""Whether the process that holds something is still alive: this host's answer from ``/proc``.

A holder is named by a :class:`~blobrep.core.holders.ProcessIdentity`:

* ``host`` and ``boot_id`` (the kernel's random id of this boot): a holder on another host
  cannot be judged from here, and one from an earlier boot of this host is certainly gone;
* ``pid_namespace``: two containers on one kernel share the boot id but not their pids;
* ``pid`` and ``started`` (the process start time in clock ticks since boot, from
  ``/proc/{pid}/stat``): a pid is reused after its process dies, the pair is not.

Everything here reads ``/proc`` (Linux); where it is missing the fields are empty and
:func:`holder_alive` answers ``UNKNOWN``, so callers fall back to time-outs.
"""

from __future__ import annotations

import os
import socket
from functools import cache

from blobrep.core.holders import Liveness, ProcessIdentity


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read(4096).strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> int | None:
    """Field 22 of ``/proc/{pid}/stat``; None if the process does not exist (or no /proc)."""
    text = _read(f"/proc/{pid}/stat")
    # The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    _, _, rest = text.rpartition(")")
    fields = rest.split()
    if len(fields) < 20 or not fields[19].isdigit():
        return None
    return int(fields[19])


@cache
def _boot_id() -> str:
    return _read("/proc/sys/kernel/random/boot_id")


@cache
def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def this_process() -> ProcessIdentity:
    """The identity of the calling process (blocking reads of ``/proc``; all small)."""
    pid = os.getpid()
    return ProcessIdentity(socket.gethostname(), _boot_id(), _pid_namespace(), pid, _start_ticks(pid))


def holder_alive(holder: ProcessIdentity) -> Liveness:
    """Whether ``holder`` is still running, as far as this host can tell (blocking, cheap)."""
    me = this_process()
    if holder.host != me.host or not holder.boot_id or not me.boot_id:
        return Liveness.UNKNOWN
    if holder.boot_id != me.boot_id:
        return Liveness.DEAD  # this host rebooted since: every process of that boot is gone
    if holder.pid_namespace != me.pid_namespace:
        return Liveness.UNKNOWN
    if holder.pid == me.pid:
        return Liveness.ALIVE if holder.started == me.started else Liveness.DEAD
    started = _start_ticks(holder.pid)
    if started is None:
        try:
            os.kill(holder.pid, 0)
        except ProcessLookupError:
            return Liveness.DEAD
        except PermissionError:
            return Liveness.ALIVE
        return Liveness.ALIVE if holder.started is None else Liveness.UNKNOWN
    if holder.started is not None and started != holder.started:
        return Liveness.DEAD  # the pid was reused by a later process
    return Liveness.ALIVE if _running(holder.pid) else Liveness.DEAD


def _running(pid: int) -> bool:
    """False for a zombie (exited, not yet reaped by its parent): it holds nothing any more."""
    text = _read(f"/proc/{pid}/stat")
    _, _, rest = text.rpartition(")")
    fields = rest.split()
    return bool(fields) and fields[0] not in ("Z", "X")
