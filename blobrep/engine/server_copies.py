"""Which replicas get an object's bytes, and which copy it inside their object store instead.

Replication reads each object it copies (a pack, or a chunk stored alone) once from the
source region, verified (:mod:`blobrep.engine.replicate_sources`), and then must place it in
every target replica that lacks it. Bytes sent to an object store cost upload bandwidth; two
replicas in one S3 bucket or one Azure account can instead copy the object inside the
service (:class:`~blobrep.storage.base.ServerSideCopy`), which moves nothing through this
process. So, per object:

* a replica on the same service as the source replica that served the object copies it from
  there (the copy that was just read and verified: a chunk decoded and hashed, a pack checked
  whole against its size and digest);
* among the other replicas on one service, the first gets the bytes and the rest copy from
  it once it has them;
* every other replica (a local directory, a store wrapped for faults or throttling) gets the
  bytes.

:func:`plan_writes` decides (pure), the replication engine writes, through
:func:`copy_inside` where the plan says to copy.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from blobrep.errors import NotFoundError
from blobrep.storage.base import ServerSideCopy

if TYPE_CHECKING:
    from blobrep.storage.base import Store

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class WritePlan(Generic[T]):
    """How each target gets one object: ``uploads`` are sent the bytes; ``from_source`` copy
    from the source replica at once; ``after_upload`` copy from the store of an upload once it
    is done (target, that upload's target)."""

    uploads: tuple[T, ...]
    from_source: tuple[T, ...]
    after_upload: tuple[tuple[T, T], ...]


def _service(store: Store) -> Hashable | None:
    return store.copy_service if isinstance(store, ServerSideCopy) else None


def plan_writes(source: Store, targets: Sequence[tuple[T, Store]]) -> WritePlan[T]:
    """The plan for ``targets`` (each a caller's handle and its store) given the ``source``
    store the object was read from; see the module docstring."""
    source_service = _service(source)
    uploads: list[T] = []
    from_source: list[T] = []
    after_upload: list[tuple[T, T]] = []
    first_upload: dict[Hashable, T] = {}
    for handle, store in targets:
        service = _service(store)
        if service is None:
            uploads.append(handle)
        elif service == source_service:
            from_source.append(handle)
        elif service in first_upload:
            after_upload.append((handle, first_upload[service]))
        else:
            first_upload[service] = handle
            uploads.append(handle)
    return WritePlan(tuple(uploads), tuple(from_source), tuple(after_upload))


async def copy_inside(store: Store, holder: Store, key: str) -> bool:
    """True once ``key`` is copied from ``holder`` into ``store`` inside their service; False
    if it cannot be (another service, or ``holder`` lost it: its own write failed)."""
    if not isinstance(store, ServerSideCopy):
        return False
    try:
        return await store.copy_from(holder, key)
    except NotFoundError:
        return False
