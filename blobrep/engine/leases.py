"""Leases: who is writing to a gallery in a replica, so that garbage collection never deletes
a chunk that a publish or a replication is about to reference.

The race they close: a writer looks chunk X up in a replica, finds it and skips writing it;
garbage collection, which saw no manifest naming X (the version that used it was deleted),
deletes X; the writer then commits a manifest that names the missing X. Equally, chunks a
writer has just written are unreferenced until its manifest lands (manifests come last).

A lease is a small object ``galleries/{g}/leases/{id}.{shared|exclusive}`` in the replica
itself, so the protocol works on any store with read-after-write consistency and needs no
lock service (restic locks its repositories the same way). Writers hold a *shared* lease,
garbage collection an *exclusive* one; a shared lease conflicts with any live exclusive lease,
an exclusive lease with any other live lease. To acquire::

    1. PUT our own lease (create-only, a fresh uuid4 name)
    2. LIST the gallery's leases; STAT the ones that could conflict, and our own
    3. a conflicting lease that is live -> DELETE ours, then retry with backoff or give up

Because both parties write before they read, of two racing acquirers at least one sees the
other: whichever lists second finds the first's lease. Both may see each other and both back
off, which is safe; the jittered backoff lets one of them win next time.

Liveness: a lease is live while the store's modification time of it is younger than the TTL
its holder wrote into it. "Now" is read from the store's own clock (the modification time of
the lease we have just written), so a host whose clock is off cannot misjudge it. A holder
re-writes its lease every TTL/3 while it works; a crashed holder's lease goes stale after the
TTL and is then ignored, and removed by garbage collection.

A holder that cannot refresh in time (a failing store, a suspended process) must assume its
lease was judged stale and removed: the refresher then stops the work with
:class:`ConflictError` rather than let it commit unprotected. A process stalled for longer
than the TTL without its event loop running cannot notice in time; garbage collection's
grace period (chunks younger than it are never deleted) covers that case.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, Final

import anyio

from blobrep.core.keys import lease_key
from blobrep.core.names import validate_gallery_name
from blobrep.engine._concurrency import task_group
from blobrep.errors import BlobrepError, ConflictError, InvalidParameterError, NotFoundError
from blobrep.storage.base import Store

#: How long a lease stays live after its last refresh (seconds).
DEFAULT_TTL: Final = 600.0
#: How long a shared acquirer keeps retrying while an exclusive lease is held (seconds).
DEFAULT_WAIT: Final = 60.0

_FIRST_BACKOFF: Final = 0.05
_MAX_BACKOFF: Final = 2.0
#: Bound on the shielded delete of a lease on exit: a hung store must not hang the caller.
_RELEASE_TIMEOUT: Final = 30.0
#: A lease body is a few hundred bytes; read no more than this of one (anyone may write there).
_MAX_BODY: Final = 64 * 1024
_LEASE_NAME = re.compile(r"([0-9a-f]{32})\.(shared|exclusive)")


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

    def live_at(self, now: float) -> bool:
        """True if the lease still counts at store time ``now``."""
        return now - self.modified < self.ttl

    def describe(self) -> str:
        """The holder for messages: what it does, where it runs, which lease."""
        kind = "exclusive" if self.exclusive else "shared"
        pid = "?" if self.pid is None else str(self.pid)
        return f"{self.holder} (pid {pid} on {self.host}, {kind} lease {self.lease_id})"


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease this process holds (what :func:`hold_lease` yields)."""

    replica: str
    gallery: str
    key: str
    lease_id: str
    exclusive: bool
    holder: str
    ttl: float
    acquired: float
    """Store time at which the lease was acquired (the store's clock, not this host's)."""


def leases_prefix(gallery: str) -> str:
    """The prefix under which every lease on ``gallery`` lives."""
    return f"galleries/{validate_gallery_name(gallery)}/leases/"


def _parse_name(prefix: str, key: str) -> tuple[str, bool] | None:
    """(lease id, exclusive) of a lease key, None for any other key under the prefix."""
    match = _LEASE_NAME.fullmatch(key[len(prefix) :]) if key.startswith(prefix) else None
    return None if match is None else (match[1], match[2] == "exclusive")


def _encode_body(holder: str, exclusive: bool, ttl: float) -> bytes:
    body = {
        "holder": holder,
        "exclusive": exclusive,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "created": time.time(),
        "ttl": ttl,
    }
    return json.dumps(body, sort_keys=True).encode("utf-8")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _decode_body(
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
    )


async def list_leases(
    store: Store, gallery: str, *, default_ttl: float = DEFAULT_TTL, exclusive_only: bool = False
) -> list[LeaseInfo]:
    """Every lease on ``gallery`` in ``store`` (only exclusive ones if ``exclusive_only``).

    Leases that vanish while they are read (released meanwhile) are left out.

    Raises:
        StorageError: the store failed.
    """
    prefix = leases_prefix(gallery)
    found: dict[str, tuple[str, bool]] = {}
    async for key in store.list(prefix):
        parsed = _parse_name(prefix, key)
        if parsed is not None and (parsed[1] or not exclusive_only):
            found[key] = parsed
    return await _describe(store, found, default_ttl)


async def _describe(store: Store, found: dict[str, tuple[str, bool]], default_ttl: float) -> list[LeaseInfo]:
    keys = list(found)
    infos = await store.stat_many(keys)
    leases: list[LeaseInfo] = []
    for key, info in zip(keys, infos, strict=True):
        if info is None:
            continue
        try:
            data = await store.get(key, 0, _MAX_BODY)
        except NotFoundError:
            continue
        lease_id, exclusive = found[key]
        leases.append(_decode_body(key, lease_id, exclusive, data, default_ttl, info.modified))
    return leases


def _busy_message(store: Store, gallery: str, holders: list[LeaseInfo], waited: float) -> str:
    names = "; ".join(lease.describe() for lease in holders)
    longest = max(lease.ttl for lease in holders)
    stayed = f" for {waited:g}s" if waited > 0 else ""
    return (
        f"replica {store.name} is busy{stayed}: gallery {gallery!r} is leased by {names}; retry later"
        f" (a lease whose holder died expires {longest:g}s after its last refresh)"
    )


async def _try_acquire(
    store: Store, gallery: str, exclusive: bool, holder: str, ttl: float
) -> tuple[Lease, bytes] | list[LeaseInfo]:
    """One attempt: our lease if no live lease conflicts, else the conflicting leases.

    On conflict, and on any error or cancellation, our own lease is gone again on return.
    """
    lease_id = uuid.uuid4().hex
    key = lease_key(gallery, lease_id, exclusive=exclusive)
    body = _encode_body(holder, exclusive, ttl)
    await store.put(key, body, if_absent=True)
    try:
        prefix = leases_prefix(gallery)
        rivals: dict[str, tuple[str, bool]] = {}
        async for other in store.list(prefix):
            parsed = _parse_name(prefix, other)
            if other != key and parsed is not None and (exclusive or parsed[1]):
                rivals[other] = parsed
        own = await store.stat(key)
        conflicts = [lease for lease in await _describe(store, rivals, ttl) if lease.live_at(own.modified)]
    except BaseException:
        await _release(store, key)
        raise
    if conflicts:
        await _release(store, key)
        return conflicts
    lease = Lease(store.name, gallery, key, lease_id, exclusive, holder, ttl, own.modified)
    return lease, body


async def _acquire(
    store: Store, gallery: str, exclusive: bool, holder: str, ttl: float, wait: float
) -> tuple[Lease, bytes, float]:
    """Acquire with jittered exponential backoff for up to ``wait`` seconds.

    Returns the lease, its body and the loop time just before the write that made it live.

    Raises:
        ConflictError: a conflicting live lease was still held when ``wait`` ran out.
    """
    started = anyio.current_time()
    delay = _FIRST_BACKOFF
    while True:
        attempt = anyio.current_time()
        outcome = await _try_acquire(store, gallery, exclusive, holder, ttl)
        if isinstance(outcome, tuple):
            return outcome[0], outcome[1], attempt
        remaining = started + wait - anyio.current_time()
        if remaining <= 0:
            raise ConflictError(_busy_message(store, gallery, outcome, wait))
        await anyio.sleep(min(remaining, delay * random.uniform(0.5, 1.0)))
        delay = min(delay * 2, _MAX_BACKOFF)


async def _release(store: Store, key: str) -> None:
    """Delete our lease, even while being cancelled, but not forever.

    A failure to delete is not raised: it would hide the outcome of the work the lease
    protected, and the lease expires after its TTL anyway.
    """
    with anyio.move_on_after(_RELEASE_TIMEOUT, shield=True):
        with suppress(BlobrepError):
            await store.delete(key)


async def _keep_fresh(store: Store, lease: Lease, body: bytes, written: float) -> None:
    """Re-write the lease every TTL/3 until cancelled.

    Raises:
        ConflictError: the lease may have been judged stale (no successful refresh for a whole
            TTL) or it was removed; the work it protects must stop.
    """
    interval = lease.ttl / 3
    failure: BlobrepError | None = None
    lost = f"{lease.holder} lost its lease on gallery {lease.gallery!r} in replica {lease.replica}"
    while True:
        await anyio.sleep(interval)
        attempt = anyio.current_time()
        if attempt - written >= lease.ttl:
            reason = f": {failure}" if failure is not None else ""
            raise ConflictError(
                f"{lost}: it could not be refreshed for {lease.ttl:g}s{reason}; stopped so that"
                " garbage collection cannot delete chunks this work still needs"
            ) from failure
        try:
            if not await store.exists(lease.key):
                raise ConflictError(
                    f"{lost}: it was removed (judged stale?); stopped so that garbage collection"
                    " cannot delete chunks this work still needs"
                )
            await store.put(lease.key, body)
        except ConflictError:
            raise
        except BlobrepError as exc:
            failure = exc
            continue
        written, failure = attempt, None


@asynccontextmanager
async def hold_lease(
    store: Store,
    gallery: str,
    *,
    exclusive: bool,
    holder: str,
    ttl: float = DEFAULT_TTL,
    wait: float = DEFAULT_WAIT,
) -> AsyncIterator[Lease]:
    """Hold a shared or exclusive lease on ``gallery`` in ``store`` for the ``async with`` body.

    Writers (publish, replication) hold a shared lease from before they look up chunks until
    after their manifest is committed; garbage collection holds an exclusive one (with
    ``wait=0``, so that it fails fast on a busy replica). While held, a background task
    refreshes the lease every ``ttl / 3``; on exit the lease is deleted, also on error or
    cancellation.

    Args:
        store: the replica.
        gallery: the gallery the lease covers.
        exclusive: True for garbage collection, False for writers.
        holder: what the holder does, for the messages of those it blocks
            (e.g. ``"publish of img/versions/1.0.0"``).
        ttl: seconds the lease stays live without a refresh.
        wait: seconds to keep retrying while a conflicting lease is live (0: try once).

    Raises:
        ConflictError: a conflicting lease stayed live for ``wait`` seconds (the message names
            the replica, the gallery and the holders), or the lease was lost while held.
        InvalidParameterError: ``ttl`` is not positive or ``wait`` is negative.
        StorageError: the store failed while acquiring.
    """
    validate_gallery_name(gallery)
    if not (math.isfinite(ttl) and ttl > 0):
        raise InvalidParameterError(f"lease ttl must be a positive number of seconds, not {ttl!r}")
    if not (math.isfinite(wait) and wait >= 0):
        raise InvalidParameterError(f"lease wait must be zero or more seconds, not {wait!r}")
    lease, body, written = await _acquire(store, gallery, exclusive, holder, ttl, wait)
    failure: Exception | None = None
    try:
        async with task_group() as group:
            group.start_soon(_keep_fresh, store, lease, body, written)
            try:
                yield lease
            except Exception as exc:
                # Kept aside and re-raised after the group, so the body's error reaches the
                # caller as itself rather than wrapped in an exception group.
                failure = exc
            group.cancel_scope.cancel()
    finally:
        await _release(store, lease.key)
    if failure is not None:
        raise failure
