"""Verify: check every chunk a manifest names in one replica, and report what is wrong.

Unlike restore, verify does not stop at the first bad chunk: it reads every distinct chunk
once, and reports each missing or corrupt one with the replica, so an operator (or a repair)
knows the full extent of the damage.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream

from blobrep.core.manifest import ChunkRef
from blobrep.core.names import BlobName
from blobrep.engine._concurrency import CPU_THREADS, IO_TASKS, task_group
from blobrep.engine.manifests import read_manifest
from blobrep.engine.publish import ProgressCallback
from blobrep.engine.restore import decode, fetch_chunk
from blobrep.errors import ChunkCorruptError, ChunkMissingError
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
    cpu = anyio.CapacityLimiter(CPU_THREADS)
    problems: list[ChunkProblem] = []
    done = {"bytes": 0}
    send, receive = anyio.create_memory_object_stream[ChunkRef](IO_TASKS)

    async def check(receive: MemoryObjectReceiveStream[ChunkRef]) -> None:
        async with receive:
            async for chunk in receive:
                assert chunk.digest is not None
                try:
                    frame = await fetch_chunk(store, gallery, chunk)
                    await anyio.to_thread.run_sync(decode, frame, chunk, store.name, limiter=cpu)
                except ChunkMissingError as exc:
                    problems.append(ChunkProblem(chunk.digest, store.name, "missing", str(exc)))
                except ChunkCorruptError as exc:
                    problems.append(ChunkProblem(chunk.digest, store.name, "corrupt", exc.reason))
                done["bytes"] += chunk.length
                if progress is not None:
                    progress(done["bytes"], total)

    async with task_group() as group:
        for _ in range(IO_TASKS):
            group.start_soon(check, receive.clone())
        receive.close()
        async with send:
            for chunk in chunks:
                await send.send(chunk)
    order = {chunk.digest: index for index, chunk in enumerate(chunks)}
    problems.sort(key=lambda problem: order[problem.digest])
    return VerifyReport(gallery, str(blob), store.name, len(chunks), total, tuple(problems))
