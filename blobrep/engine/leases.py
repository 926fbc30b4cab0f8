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
    2. LIST the gallery's leases; STAT and read every other one, and STAT our own
    3. DELETE the leases whose holders are known to be dead (see below)
    4. a conflicting lease that is live -> DELETE ours, then retry with backoff or give up

Because both parties write before they read, of two racing acquirers at least one sees the
other: whichever lists second finds the first's lease. Both may see each other and both back
off, which is safe; the jittered backoff lets one of them win next time.

Liveness: a lease is live while the store's modification time of it is younger than the TTL
its holder wrote into it, *and* its holder is not known to be dead. "Now" is read from the
store's own clock (the modification time of the lease we have just written), so a host whose
clock is off cannot misjudge it. A holder re-writes its lease every TTL/3 while it works.

A lease also names its holder's process, and a holder that this host can prove dead counts
for nothing at once, so the next acquirer deletes its lease: one ``kill -9`` of a garbage
collection must not stall every publish for a TTL. What a lease's body holds, and how its
holder is judged, is in :mod:`blobrep.engine.lease_bodies`.

A holder that cannot refresh in time (a failing store, a suspended process) must assume its
lease was judged stale and removed: the refresher then stops the work with
:class:`BusyError` rather than let it commit unprotected. A process stalled for longer
than the TTL without its event loop running cannot notice in time; garbage collection's
grace period (chunks younger than it are never deleted) covers that case.
"""

from __future__ import annotations

import math
import random
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final

import anyio
import anyio.to_thread

from blobrep.core.holders import Liveness
from blobrep.core.keys import lease_key
from blobrep.core.names import validate_gallery_name
from blobrep.engine._concurrency import IO_TASKS, task_group
from blobrep.engine.lease_bodies import LeaseInfo, decode_body, encode_body, judge
from blobrep.errors import BlobrepError, BusyError, InvalidParameterError, NotFoundError, PreconditionError
from blobrep.storage.base import ConditionalWrite
from blobrep.storage.processes import this_process

if TYPE_CHECKING:
    from blobrep.storage.base import Store

__all__ = ["DEFAULT_TTL", "DEFAULT_WAIT", "Lease", "LeaseInfo", "hold_lease", "leases_prefix", "list_leases"]

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
    cleared: tuple[str, ...] = ()
    """Keys of the leases of dead holders that acquiring this one deleted."""
    version: str | None = None
    """The version (ETag) of the lease object this holder last wrote, where the store can make
    writes conditional on it (:class:`~blobrep.storage.base.ConditionalWrite`): refreshes
    then replace exactly that object, and fail if anyone removed or replaced it."""


def leases_prefix(gallery: str) -> str:
    """The prefix under which every lease on ``gallery`` lives."""
    return f"galleries/{validate_gallery_name(gallery)}/leases/"


def _parse_name(prefix: str, key: str) -> tuple[str, bool] | None:
    """(lease id, exclusive) of a lease key, None for any other key under the prefix."""
    match = _LEASE_NAME.fullmatch(key[len(prefix) :]) if key.startswith(prefix) else None
    return None if match is None else (match[1], match[2] == "exclusive")


async def list_leases(
    store: Store, gallery: str, *, default_ttl: float = DEFAULT_TTL, exclusive_only: bool = False
) -> list[LeaseInfo]:
    """Every lease on ``gallery`` in ``store`` (only exclusive ones if ``exclusive_only``),
    with the liveness of each holder as far as this host can tell.

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
    infos = await store.stat_many(keys) if keys else []
    bodies: dict[str, bytes] = {}
    limiter = anyio.CapacityLimiter(IO_TASKS)

    async def read(key: str) -> None:
        async with limiter:
            with suppress(NotFoundError):
                bodies[key] = await store.get(key, 0, _MAX_BODY)

    async with task_group() as group:
        for key, info in zip(keys, infos, strict=True):
            if info is not None:
                group.start_soon(read, key)
    leases = [
        decode_body(key, *found[key], bodies[key], default_ttl, info.modified)
        for key, info in zip(keys, infos, strict=True)
        if info is not None and key in bodies
    ]
    owners = [lease.owner for lease in leases]
    if any(owner is not None for owner in owners):
        judged = await anyio.to_thread.run_sync(judge, owners)
        leases = [replace(lease, liveness=liveness) for lease, liveness in zip(leases, judged, strict=True)]
    return leases


def _busy_message(store: Store, gallery: str, holders: list[LeaseInfo], waited: float) -> str:
    names = "; ".join(lease.describe() for lease in holders)
    longest = max(lease.ttl for lease in holders)
    stayed = f" for {waited:g}s" if waited > 0 else ""
    return (
        f"replica {store.name} is busy{stayed}: gallery {gallery!r} is leased by {names}; retry later"
        f" (a lease whose holder died on another host expires {longest:g}s after its last refresh)"
    )


async def _clear_dead(store: Store, leases: list[LeaseInfo]) -> list[str]:
    """Delete the leases of holders known to be dead; the keys actually deleted.

    Best effort: a lease left behind by a failing delete counts for nothing anyway.
    """
    cleared: list[str] = []
    for lease in leases:
        if lease.liveness is Liveness.DEAD:
            with suppress(BlobrepError):
                if await store.delete(lease.key):
                    cleared.append(lease.key)
    return cleared


async def _try_acquire(
    store: Store,
    gallery: str,
    exclusive: bool,
    holder: str,
    ttl: float,
    body: bytes,
    cleared: list[str] | None,
) -> Lease | list[LeaseInfo]:
    """One attempt: our lease if no live lease conflicts, else the conflicting leases.

    Leases of dead holders met on the way are deleted (and their keys added to ``cleared``)
    unless ``cleared`` is None. On conflict, and on any error or cancellation, our own lease
    is gone again on return.
    """
    lease_id = uuid.uuid4().hex
    key = lease_key(gallery, lease_id, exclusive=exclusive)
    version = None
    if isinstance(store, ConditionalWrite):
        version = await store.put_if_absent(key, body)
    else:
        await store.put(key, body, if_absent=True)
    try:
        prefix = leases_prefix(gallery)
        others: dict[str, tuple[str, bool]] = {}
        async for other in store.list(prefix):
            parsed = _parse_name(prefix, other)
            if other != key and parsed is not None:
                others[other] = parsed
        own = await store.stat(key)
        found = await _describe(store, others, ttl)
        if cleared is not None:
            cleared.extend(await _clear_dead(store, found))
        conflicts = [
            lease for lease in found if (exclusive or lease.exclusive) and lease.live_at(own.modified)
        ]
    except BaseException:
        await _release(store, key)
        raise
    if conflicts:
        await _release(store, key)
        return conflicts
    return Lease(
        store.name,
        gallery,
        key,
        lease_id,
        exclusive,
        holder,
        ttl,
        own.modified,
        tuple(cleared or ()),
        version,
    )


async def _acquire(
    store: Store, gallery: str, exclusive: bool, holder: str, ttl: float, wait: float, remove_dead: bool
) -> tuple[Lease, bytes, float]:
    """Acquire with jittered exponential backoff for up to ``wait`` seconds.

    Returns the lease, its body and the loop time just before the write that made it live.

    Raises:
        BusyError: a conflicting live lease was still held when ``wait`` ran out.
    """
    owner = await anyio.to_thread.run_sync(this_process)
    body = encode_body(holder, exclusive, ttl, owner)
    cleared: list[str] | None = [] if remove_dead else None
    started = anyio.current_time()
    delay = _FIRST_BACKOFF
    while True:
        attempt = anyio.current_time()
        outcome = await _try_acquire(store, gallery, exclusive, holder, ttl, body, cleared)
        if isinstance(outcome, Lease):
            return outcome, body, attempt
        remaining = started + wait - anyio.current_time()
        if remaining <= 0:
            raise BusyError(_busy_message(store, gallery, outcome, wait))
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

    Where the store makes writes conditional (:class:`ConditionalWrite`), each refresh replaces
    exactly the object this holder wrote last, in one request: a lease removed (judged stale)
    or replaced meanwhile is never written back. Elsewhere a refresh checks that the lease is
    still there, then rewrites it.

    Raises:
        BusyError: the lease may have been judged stale (no successful refresh for a whole
            TTL) or it was removed; the work it protects must stop.
    """
    interval = lease.ttl / 3
    failure: BlobrepError | None = None
    version = lease.version
    lost = f"{lease.holder} lost its lease on gallery {lease.gallery!r} in replica {lease.replica}"
    removed = (
        f"{lost}: it was removed (judged stale?); stopped so that garbage collection"
        " cannot delete chunks this work still needs; retry later"
    )
    while True:
        await anyio.sleep(interval)
        attempt = anyio.current_time()
        if attempt - written >= lease.ttl:
            reason = f": {failure}" if failure is not None else ""
            raise BusyError(
                f"{lost}: it could not be refreshed for {lease.ttl:g}s{reason}; stopped so that"
                " garbage collection cannot delete chunks this work still needs; retry later"
            ) from failure
        try:
            if version is not None and isinstance(store, ConditionalWrite):
                try:
                    version = await store.put_if_match(lease.key, body, version)
                except PreconditionError:
                    raise BusyError(removed) from None
            else:
                if not await store.exists(lease.key):
                    raise BusyError(removed)
                await store.put(lease.key, body)
        except BusyError:
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
    remove_dead: bool = True,
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
        remove_dead: delete the leases of holders known to be dead that acquiring meets
            (listed in :attr:`Lease.cleared`); False leaves the replica untouched but for our
            own lease (a dry run).

    Raises:
        BusyError: a conflicting lease stayed live for ``wait`` seconds (the message names
            the replica, the gallery and the holders), or the lease was lost while held.
        InvalidParameterError: ``ttl`` is not positive or ``wait`` is negative.
        StorageFullError: the replica has no room for the lease.
        StorageError: the store failed while acquiring.
    """
    validate_gallery_name(gallery)
    if not (math.isfinite(ttl) and ttl > 0):
        raise InvalidParameterError(f"lease ttl must be a positive number of seconds, not {ttl!r}")
    if not (math.isfinite(wait) and wait >= 0):
        raise InvalidParameterError(f"lease wait must be zero or more seconds, not {wait!r}")
    lease, body, written = await _acquire(store, gallery, exclusive, holder, ttl, wait, remove_dead)
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
