"""Verify: check every chunk and pack a manifest names in one replica, and report what is wrong.

Unlike restore, verify does not stop at the first bad chunk: it reads every distinct chunk
once, through the one read path (:class:`~blobrep.engine.chunk_read.ReplicaSet`), and reports
each missing or corrupt one with the replica, so an operator (or a repair) knows the full
extent of the damage. Without a catalog the manifest itself is only checked to be well
formed: whether it is the version's own manifest is checked by the gallery commands.

A pack is checked as the object it is: read whole once, its size and xxh3-128 digest compared
with the manifest's (a pack is named by its digest, and a replica that holds it otherwise
cannot give it to another replica that needs it, even where every frame in it still reads).
The chunks of a pack that checks out are decoded from that one read; those of a damaged pack
are read one by one, by range, to name which of them are bad. Lone chunk objects are read as
before. At most :data:`PACKS_AT_ONCE` packs are held at once (each up to
:data:`~blobrep.core.packs.MAX_PACK_SIZE`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import anyio
import anyio.to_thread

from blobrep.core.codec import digest_of
from blobrep.core.keys import pack_key
from blobrep.core.manifest import ChunkRef
from blobrep.engine._concurrency import CPU_THREADS, IO_TASKS, task_group
from blobrep.engine.chunk_read import ReplicaSet
from blobrep.engine.manifests import read_manifest
from blobrep.errors import (
    ChunkCorruptError,
    ChunkMissingError,
    DamagedObjectError,
    InvalidKeyError,
    NotFoundError,
)

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream

    from blobrep.core.names import BlobName
    from blobrep.core.packs import PackRef
    from blobrep.engine.publish import ProgressCallback
    from blobrep.storage.base import Store

#: Packs read whole at once by one verify.
PACKS_AT_ONCE: Final = 2


@dataclass(frozen=True, slots=True)
class ChunkProblem:
    """One bad chunk in one replica: ``missing`` or ``corrupt``, with the reason."""

    digest: str
    replica: str
    problem: str
    detail: str
    pack: str | None = None
    """The pack the chunk's frame is in, if it is in one."""


@dataclass(frozen=True, slots=True)
class PackProblem:
    """One bad pack in one replica: ``missing`` or ``corrupt`` (not a regular file, another
    size, or bytes that do not hash to its name), with the reason."""

    digest: str
    replica: str
    problem: str
    detail: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of checking one blob in one replica."""

    gallery: str
    blob: str
    replica: str
    checked_chunks: int
    checked_bytes: int
    problems: tuple[ChunkProblem, ...]
    checked_packs: int = 0
    pack_problems: tuple[PackProblem, ...] = ()
    """Packs that are not byte for byte what the manifest names; the chunks of theirs that
    do not read are in ``problems`` too."""

    @property
    def ok(self) -> bool:
        return not self.problems and not self.pack_problems

    @property
    def missing(self) -> list[str]:
        return [problem.digest for problem in self.problems if problem.problem == "missing"]

    @property
    def corrupt(self) -> list[str]:
        return [problem.digest for problem in self.problems if problem.problem == "corrupt"]


async def verify(
    store: Store, gallery: str, blob: BlobName, *, progress: ProgressCallback | None = None
) -> VerifyReport:
    """Check every distinct chunk and every pack of ``blob`` in ``store``.

    Raises:
        ManifestNotFoundError, ManifestError: the manifest itself is absent or unusable.
        StorageError: the store failed in a way that is not about one chunk.
    """
    manifest = await read_manifest(store, gallery, blob)
    chunks = list(manifest.stored_digests().values())
    total = sum(chunk.length for chunk in chunks)
    done = [0]

    def advance(_: int, chunk: ChunkRef) -> None:
        done[0] += chunk.length
        if progress is not None:
            progress(done[0], total)

    members: dict[str, list[ChunkRef]] = {pack.digest: [] for pack in manifest.packs}
    for chunk in chunks:
        if chunk.pack is not None:
            members[chunk.pack.digest].append(chunk)
    alone = ((0, chunk) for chunk in chunks if chunk.pack is None)
    async with ReplicaSet([store], gallery) as replicas:
        found = await check_chunks(replicas, alone, advance)
        packs = _PackCheck(replicas, found, advance)
        pending = iter(manifest.packs)
        async with task_group() as group:
            for _ in range(PACKS_AT_ONCE):
                group.start_soon(packs.check, pending, members)
    order = {chunk.digest: index for index, chunk in enumerate(chunks)}
    problems = sorted(found.values(), key=lambda problem: order[problem.digest])
    pack_order = {pack.digest: index for index, pack in enumerate(manifest.packs)}
    bad_packs = sorted(packs.problems, key=lambda problem: pack_order[problem.digest])
    return VerifyReport(
        gallery,
        str(blob),
        store.name,
        len(chunks),
        total,
        tuple(problems),
        len(manifest.packs),
        tuple(bad_packs),
    )


def _intact(pack: PackRef, data: bytes) -> str | None:
    """Why ``data`` is not ``pack``, or None if it is (CPU work: run on a thread)."""
    if len(data) != pack.size:
        longer = "more than" if len(data) > pack.size else f"{len(data)}, not"
        return f"holds {longer} the {pack.size} bytes the manifest records"
    actual = digest_of(data)
    return None if actual == pack.digest else f"its bytes hash to {actual}"


class _PackCheck:
    """The packs of one verify: each read whole once, its chunks decoded from that read."""

    def __init__(
        self,
        replicas: ReplicaSet,
        found: dict[tuple[int, str], ChunkProblem],
        checked: Callable[[int, ChunkRef], None],
    ) -> None:
        self.replicas = replicas
        self.store = replicas.stores[0]
        self.found = found
        self.checked = checked
        self.problems: list[PackProblem] = []

    async def check(self, packs: Iterator[PackRef], members: dict[str, list[ChunkRef]]) -> None:
        """Check the packs of ``packs`` (shared by the tasks: each pack is taken once)."""
        for pack in packs:
            data, kind, detail = await self._read(pack)
            if data is None:
                self.problems.append(PackProblem(pack.digest, self.store.name, kind, detail))
                # Read each chunk by range, to name those the damage reaches.
                work = [(0, chunk) for chunk in members[pack.digest]]
                self.found.update(await check_chunks(self.replicas, work, self.checked))
                continue
            chunks = members[pack.digest]
            share = -(-len(chunks) // CPU_THREADS)
            async with task_group() as group:
                for first in range(0, len(chunks), share):
                    group.start_soon(self._decode, data, chunks[first : first + share])

    async def _read(self, pack: PackRef) -> tuple[bytes | None, str, str]:
        """The pack whole if intact, else None with ``missing``/``corrupt`` and why."""
        where = f"pack {pack.digest} in replica {self.store.name}"
        try:
            data = await self.store.get(pack_key(self.replicas.gallery, pack.digest), 0, pack.size + 1)
        except NotFoundError:
            return None, "missing", f"{where} is missing"
        except DamagedObjectError as exc:
            return None, "corrupt", f"{where} is {exc.kind}, not a regular file"
        except InvalidKeyError as exc:
            return None, "corrupt", f"{where} cannot be read: {exc}"
        wrong = await anyio.to_thread.run_sync(_intact, pack, data)
        if wrong is not None:
            return None, "corrupt", f"{where} {wrong}"
        return data, "", ""

    async def _decode(self, data: bytes, chunks: list[ChunkRef]) -> None:
        """Check ``chunks``' frames in the whole pack ``data``, in one worker-thread hop."""
        for chunk, fault in zip(chunks, await self.replicas.check_frames(0, data, chunks), strict=True):
            assert chunk.digest is not None and chunk.pack is not None
            if fault is not None:
                self.found[0, chunk.digest] = ChunkProblem(
                    chunk.digest, self.store.name, "corrupt", fault.reason, chunk.pack.digest
                )
            self.checked(0, chunk)


async def check_chunks(
    replicas: ReplicaSet,
    work: Iterable[tuple[int, ChunkRef]],
    checked: Callable[[int, ChunkRef], None] | None = None,
) -> dict[tuple[int, str], ChunkProblem]:
    """Read and verify each (replica index, chunk) of ``work``, ``IO_TASKS`` at a time.

    Returns the problems found, by (replica index, digest): a chunk the replica lacks
    (``missing``; for a chunk in a pack, the pack is missing) or holds bad (``corrupt``, also
    a key that is not a regular file). A chunk in a pack is read by its frame's range.
    ``checked`` is called on the event loop with each (replica index, chunk) once it has been
    read, good or bad.

    Raises:
        StorageError: a store failed in a way that is not about one chunk.
    """
    problems: dict[tuple[int, str], ChunkProblem] = {}
    send, receive = anyio.create_memory_object_stream[tuple[int, ChunkRef]](IO_TASKS)

    async def check(receive: MemoryObjectReceiveStream[tuple[int, ChunkRef]]) -> None:
        async with receive:
            async for index, chunk in receive:
                assert chunk.digest is not None
                name = replicas.stores[index].name
                pack = None if chunk.pack is None else chunk.pack.digest
                try:
                    await replicas.read_from(index, chunk)
                except ChunkMissingError as exc:
                    problems[index, chunk.digest] = ChunkProblem(
                        chunk.digest, name, "missing", str(exc), pack
                    )
                except ChunkCorruptError as exc:
                    problems[index, chunk.digest] = ChunkProblem(
                        chunk.digest, name, "corrupt", exc.reason, pack
                    )
                if checked is not None:
                    checked(index, chunk)

    async with task_group() as group:
        for _ in range(IO_TASKS):
            group.start_soon(check, receive.clone())
        receive.close()
        async with send:
            for item in work:
                await send.send(item)
    return problems
