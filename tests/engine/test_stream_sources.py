"""Publishing from a stream: a pipe or an async byte stream (a request body) publishes exactly
what the same bytes publish from a file, with the same bounded memory; a stream that breaks
off or ends short of its announced length commits nothing."""

from __future__ import annotations

import os
import random
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blobrep.engine.reader import WINDOW_BYTES, WINDOW_COUNT
from blobrep.engine.source import AsyncStreamSource, StreamSource
from blobrep.errors import SourceError
from blobrep.service import BlobService, LocalStore
from blobrep.storage.base import Payload, Store
from blobrep.storage.faulty import FaultyStore
from tests.engine.helpers import GALLERY, MIB, NAME, SMALL_CHUNKS, manifest_path, same_file, write_synthetic


def pieces_of(data: bytes, sizes: Iterator[int]) -> list[bytes]:
    """``data`` cut into pieces of the given sizes (0 gives an empty piece), the rest last."""
    pieces, start = [], 0
    for size in sizes:
        if start >= len(data):
            break
        pieces.append(data[start : start + size])
        start += size
    pieces.append(data[start:])
    return pieces


async def body(pieces: list[bytes]) -> AsyncIterator[bytes]:
    """An async byte stream, as an ASGI server hands a request body over."""
    for piece in pieces:
        await anyio.lowlevel.checkpoint()
        yield piece


def random_pieces(count: int, size: int, seed: int) -> Iterator[bytes]:
    """``count`` pieces of incompressible, never repeating bytes (nothing deduplicates)."""
    rng = random.Random(seed)
    for _ in range(count):
        yield rng.randbytes(size)


def write_pieces(path: Path, pieces: Iterator[bytes]) -> Path:
    with open(path, "wb") as out:
        for piece in pieces:
            out.write(piece)
    return path


@contextmanager
def descriptor_at(path: Path, offset: int) -> Iterator[int]:
    """``path`` open for reading at ``offset``, as a shell redirects standard input."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.lseek(fd, offset, os.SEEK_SET)
        yield fd
    finally:
        os.close(fd)


class HeldPuts(FaultyStore):
    """Holds every ``put`` of a chunk or a pack until ``resume`` is set; ``held`` is set by the first."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.resume = anyio.Event()
        self.held = anyio.Event()

    async def put(self, key: str, data: Payload, *, if_absent: bool = False) -> None:
        if "/chunks/" in key or "/packs/" in key:
            self.held.set()
            await self.resume.wait()
        await super().put(key, data, if_absent=if_absent)


class SlowPuts(FaultyStore):
    """Takes ``delay`` seconds more for every ``put``: a replica slower than any sender."""

    def __init__(self, inner: Store, delay: float) -> None:
        super().__init__(inner)
        self.delay = delay

    async def put(self, key: str, data: Payload, *, if_absent: bool = False) -> None:
        await anyio.sleep(self.delay)
        await super().put(key, data, if_absent=if_absent)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.binary(min_size=0, max_size=300_000),
    sizes=st.lists(st.integers(0, 70_000), max_size=30),
    announced=st.booleans(),
)
def test_any_split_of_a_stream_publishes_the_manifest_of_the_file(
    tmp_path: Path, data: bytes, sizes: list[int], announced: bool
) -> None:
    root = tmp_path / os.urandom(6).hex()
    source = root / "image.raw"
    root.mkdir()
    source.write_bytes(data)

    async def both() -> tuple[str, str, int]:
        from_file = await BlobService().publish(
            source, [LocalStore(root / "file", create=True)], GALLERY, NAME, chunking=SMALL_CHUNKS
        )
        stream = AsyncStreamSource(body(pieces_of(data, iter(sizes))), size=len(data) if announced else None)
        from_stream = await BlobService().publish(
            stream, [LocalStore(root / "stream", create=True)], GALLERY, NAME, chunking=SMALL_CHUNKS
        )
        assert from_stream.manifest_pin == from_file.manifest_pin
        return from_stream.digest, from_stream.manifest_key, from_stream.size

    digest, _, size = anyio.run(both)

    assert (digest, size) == (xxhash.xxh3_128_hexdigest(data), len(data))
    assert manifest_path(LocalStore(root / "stream")).read_bytes() == (
        manifest_path(LocalStore(root / "file")).read_bytes()
    )


async def test_a_pipe_read_in_short_pieces_publishes_what_the_file_does(
    tmp_path: Path, out_dir: Path
) -> None:
    size = 40 * MIB  # more than two windows, so chunks straddle window edges
    image = write_synthetic(tmp_path / "image.raw", size, seed=40)
    data = image.read_bytes()
    read_end, write_end = os.pipe()

    def feed() -> None:
        # Odd-sized writes: the reader meets short reads at every offset.
        rng = random.Random(1)
        with open(write_end, "wb", buffering=0) as pipe:
            start = 0
            while start < size:
                step = rng.randrange(1, 300_000)
                pipe.write(data[start : start + step])
                start += step

    writer = threading.Thread(target=feed)
    writer.start()
    seen: list[tuple[int, int | None]] = []
    try:
        from_pipe = await BlobService().publish(
            StreamSource(read_end, name="the pipe"),
            [LocalStore(tmp_path / "pipe", create=True)],
            GALLERY,
            NAME,
            progress=lambda done, total: seen.append((done, total)),
        )
    finally:
        writer.join()
        os.close(read_end)
    from_file = await BlobService().publish(
        image, [LocalStore(tmp_path / "file", create=True)], GALLERY, NAME
    )

    assert from_pipe.manifest_pin == from_file.manifest_pin
    assert (from_pipe.size, from_pipe.digest) == (size, xxhash.xxh3_128_hexdigest(data))
    # Nobody knows a pipe's length: progress counts bytes and never claims a total.
    assert seen and all(total is None for _, total in seen)
    assert seen[-1][0] == size
    restored = out_dir / "restored.raw"
    await BlobService().restore(LocalStore(tmp_path / "pipe"), GALLERY, NAME, restored)
    assert same_file(image, restored)


async def test_a_non_blocking_pipe_is_waited_on_rather_than_failing(tmp_path: Path) -> None:
    data = b"".join(random_pieces(3, MIB, seed=11))
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)  # as a parent process may leave standard input

    def feed() -> None:
        with open(write_end, "wb", buffering=0) as pipe:
            for start in range(0, len(data), 256 * 1024):
                time.sleep(0.01)  # the reader finds the pipe empty again and again
                pipe.write(data[start : start + 256 * 1024])

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        result = await BlobService().publish(
            StreamSource(read_end, name="the pipe"), [LocalStore(tmp_path / "r", create=True)], GALLERY, NAME
        )
    finally:
        writer.join()
        os.close(read_end)
    assert (result.size, result.digest) == (len(data), xxhash.xxh3_128_hexdigest(data))


async def test_a_stream_redirected_from_a_file_knows_the_bytes_left(tmp_path: Path) -> None:
    image = write_synthetic(tmp_path / "image.raw", 3 * MIB, seed=3)
    seen: list[tuple[int, int | None]] = []
    # What is left from the descriptor's offset is what will be read.
    with descriptor_at(image, MIB) as redirected:
        result = await BlobService().publish(
            StreamSource(redirected, name="standard input"),
            [LocalStore(tmp_path / "replica", create=True)],
            GALLERY,
            NAME,
            progress=lambda done, total: seen.append((done, total)),
        )
    assert result.size == 2 * MIB
    assert result.digest == xxhash.xxh3_128_hexdigest(image.read_bytes()[MIB:])
    assert seen[-1] == (2 * MIB, 2 * MIB)


@pytest.mark.parametrize(
    ("announced", "given", "said"),
    [
        (
            10 * MIB,
            9 * MIB,
            f"the upload ended after {9 * MIB} bytes, short of the {10 * MIB} bytes announced",
        ),
        (
            9 * MIB,
            10 * MIB,
            f"the upload holds more than the {9 * MIB} bytes announced (at least {10 * MIB})",
        ),
    ],
)
async def test_a_stream_that_ends_short_or_runs_long_commits_nothing(
    tmp_path: Path, announced: int, given: int, said: str
) -> None:
    store = LocalStore(tmp_path / "replica", create=True)
    stream = AsyncStreamSource(body(list(random_pieces(given // MIB, MIB, seed=9))), size=announced)

    with pytest.raises(SourceError) as raised:
        await BlobService().publish(stream, [store], GALLERY, NAME, chunking=SMALL_CHUNKS)

    assert str(raised.value) == said
    assert not manifest_path(store).exists()


class ClientDisconnectedError(Exception):
    """What a server raises when the client disconnects mid-body."""


async def test_an_upload_that_breaks_off_commits_nothing_and_says_how_far_it_got(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "replica", create=True)

    async def breaks_off() -> AsyncIterator[bytes]:
        for piece in random_pieces(20, MIB, seed=2):
            yield piece
        raise ClientDisconnectedError("the client went away")

    with pytest.raises(SourceError, match=f"broke off after {20 * MIB} bytes of {64 * MIB}") as raised:
        await BlobService().publish(AsyncStreamSource(breaks_off(), size=64 * MIB), [store], GALLERY, NAME)

    assert isinstance(raised.value.__cause__, ClientDisconnectedError)
    assert "the client went away" in str(raised.value)
    assert not manifest_path(store).exists()


async def test_an_upload_cancelled_midway_commits_nothing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "replica", create=True)
    sent = anyio.Event()
    stalled = anyio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        for piece in random_pieces(20, MIB, seed=3):
            yield piece
        sent.set()
        await stalled.wait()  # the client stops sending; the server gives up on it
        yield b"never read"

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:

            async def upload() -> None:
                await BlobService().publish(
                    AsyncStreamSource(stalls(), size=64 * MIB), [store], GALLERY, NAME
                )

            group.start_soon(upload)
            await sent.wait()
            group.cancel_scope.cancel()

    assert not manifest_path(store).exists()
    # The stores are left usable: the same name publishes once the whole body comes.
    whole = b"".join(random_pieces(20, MIB, seed=3))
    result = await BlobService().publish(
        AsyncStreamSource(body([whole]), size=len(whole)), [store], GALLERY, NAME
    )
    assert result.size == len(whole) and manifest_path(store).exists()


async def test_a_blocked_pipeline_blocks_the_sender_instead_of_buffering_it(tmp_path: Path) -> None:
    store = HeldPuts(LocalStore(tmp_path / "replica", create=True))
    produced = 0
    expected = xxhash.xxh3_128()
    total_pieces = 256  # 256 MiB, far more than the pipeline may hold

    async def sender() -> AsyncIterator[bytes]:
        nonlocal produced
        for piece in random_pieces(total_pieces, MIB, seed=5):
            expected.update(piece)
            produced += len(piece)
            yield piece

    results = []
    async with anyio.create_task_group() as group:

        async def upload() -> None:
            source = AsyncStreamSource(sender(), size=total_pieces * MIB)
            results.append(await BlobService().publish(source, [store], GALLERY, NAME))

        group.start_soon(upload)
        with anyio.fail_after(30):
            await store.held.wait()  # the writes have started and are held
        await anyio.sleep(1)  # ample time to read the whole stream, were it not held back
        stalled_at = produced
        await anyio.sleep(0.5)
        # The sender is kept waiting with the window pool's worth read, plus what the
        # compress and write tasks hold (compressed) and the piece being copied: about five
        # windows, not the stream.
        assert produced == stalled_at
        assert produced <= (WINDOW_COUNT + 3) * WINDOW_BYTES < total_pieces * MIB
        store.resume.set()

    (result,) = results
    assert result.size == total_pieces * MIB
    assert result.digest == expected.hexdigest()


@pytest.mark.slow
async def test_publishing_a_stream_to_a_slow_replica_takes_the_memory_of_a_file(tmp_path: Path) -> None:
    count = 256  # MiB, twice what the pipeline may hold

    async def publish_traced(source: Path | AsyncStreamSource, name: str) -> int:
        store = SlowPuts(LocalStore(tmp_path / name, create=True), delay=0.004)
        tracemalloc.start()
        try:
            await BlobService().publish(source, [store], GALLERY, NAME)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    async def sender() -> AsyncIterator[bytes]:
        for piece in random_pieces(count, MIB, seed=7):
            yield piece

    image = write_pieces(tmp_path / "image.raw", random_pieces(count, MIB, seed=7))

    stream_peak = await publish_traced(AsyncStreamSource(sender(), size=count * MIB), "stream")
    file_peak = await publish_traced(image, "file")

    assert stream_peak < (WINDOW_COUNT + 4) * WINDOW_BYTES, (
        f"the stream peaked at {stream_peak / MIB:.0f} MiB"
    )
    assert stream_peak <= file_peak + 8 * MIB, (stream_peak / MIB, file_peak / MIB)
