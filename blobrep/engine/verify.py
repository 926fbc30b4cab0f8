"""Verify: check every chunk a manifest names in one replica, and report what is wrong.

Unlike restore, verify does not stop at the first bad chunk: it reads every distinct chunk
once, through the one read path (:meth:`~blobrep.engine.chunk_read.ReplicaSet.read_from`),
and reports each missing or corrupt one with the replica, so an operator (or a repair) knows
the full extent of the damage. Without a catalog the manifest itself is only checked to be
well formed: whether it is the version's own manifest is checked by the gallery commands.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from blobrep.core.manifest import ChunkRef
from blobrep.engine._concurrency import IO_TASKS, task_group
from blobrep.engine.chunk_read import ReplicaSet
from blobrep.engine.manifests import read_manifest
from blobrep.errors import ChunkCorruptError, ChunkMissingError

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream

    from blobrep.core.names import BlobName
    from blobrep.engine.publish import ProgressCallback
    from blobrep.storage.base import Store


@dataclass(frozen=True, slots=True)
class ChunkProblem:
    """One bad chunk in one replica: ``missing`` or ``corrupt``, with the reason."""

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

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def missing(self) -> list[str]:
        return [problem.digest for problem in self.problems if problem.problem == "missing"]

    @property
    def corrupt(self) -> list[str]:
        return [problem.digest for problem in self.problems if problem.problem == "corrupt"]


async def verify(
    store: Store, gallery: str, blob: BlobName, *, progress: ProgressCallback | None = None
) -> VerifyReport:
    """Check every distinct chunk of ``blob`` in ``store``.

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

    async with ReplicaSet([store], gallery) as replicas:
        found = await check_chunks(replicas, ((0, chunk) for chunk in chunks), advance)
    order = {chunk.digest: index for index, chunk in enumerate(chunks)}
    problems = sorted(
        (problem for problem in found.values()),
        key=lambda problem: order[problem.digest],
    )
    return VerifyReport(gallery, str(blob), store.name, len(chunks), total, tuple(problems))


async def check_chunks(
    replicas: ReplicaSet,
    work: Iterable[tuple[int, ChunkRef]],
    checked: Callable[[int, ChunkRef], None] | None = None,
) -> dict[tuple[int, str], ChunkProblem]:
    """Read and verify each (replica index, chunk) of ``work``, ``IO_TASKS`` at a time.

    Returns the problems found, by (replica index, digest): a chunk the replica lacks
    (``missing``) or holds bad (``corrupt``, also a key that is not a regular file).
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
                try:
                    await replicas.read_from(index, chunk)
                except ChunkMissingError as exc:
                    problems[index, chunk.digest] = ChunkProblem(chunk.digest, name, "missing", str(exc))
                except ChunkCorruptError as exc:
                    problems[index, chunk.digest] = ChunkProblem(chunk.digest, name, "corrupt", exc.reason)
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
