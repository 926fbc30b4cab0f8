"""A version's disk over HTTP: a download lands as a sparse file only when every byte matches
the digest the daemon names; an upload sends exactly the source's bytes, or fails."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobrep.client.connection import Connection
from blobrep.client.errors import EndpointError
from blobrep.client.transfers import HOLE, PIECE, download, upload_pieces, write_sparse
from blobrep.core.codec import new_blob_hasher
from blobrep.engine.source import StreamSource, open_source
from blobrep.errors import BlobDigestMismatchError, SourceError
from tests.client.test_connection import ENDPOINT, TOKEN


def _digest(data: bytes) -> str:
    hasher = new_blob_hasher()
    hasher.update(data)
    return str(hasher.hexdigest())


def _disk() -> bytes:
    """Data, then a long run of zeros, then data again (a VM disk's shape)."""
    return os.urandom(PIECE + 100) + bytes(6 * PIECE) + os.urandom(PIECE // 2)


def _fetch(body: bytes, tag: str, output: Path | None, length: int | None = None) -> Any:
    def handler(request: httpx2.Request) -> httpx2.Response:
        headers = {"ETag": f'"{tag}"', "Content-Length": str(len(body) if length is None else length)}
        return httpx2.Response(200, headers=headers, content=body)

    async def main() -> Any:
        async with (
            Connection(ENDPOINT, TOKEN, transport=httpx2.MockTransport(handler)) as connection,
            connection.stream("GET", "/galleries/g/images/i/versions/1.0.0/content") as response,
        ):
            return await download(response, output, what="deployed g/i/1.0.0", stored_bytes=123)

    return anyio.run(main)


def test_a_download_lands_whole_and_sparse(tmp_path: Path) -> None:
    disk = _disk()
    result = _fetch(disk, _digest(disk), tmp_path / "vm.img")
    written = tmp_path / "vm.img"
    assert written.read_bytes() == disk
    assert result.output == str(written) and result.size == len(disk) and result.ok
    assert result.digest == _digest(disk) and result.bytes_read == 123
    assert written.stat().st_blocks * 512 < len(disk) - 4 * PIECE, "the zero run should stay a hole"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["vm.img"]


def test_a_download_without_output_reads_and_checks_everything(tmp_path: Path) -> None:
    disk = _disk()
    assert _fetch(disk, _digest(disk), None).output is None
    with pytest.raises(BlobDigestMismatchError):
        _fetch(disk, "0" * 32, None)


def test_a_download_that_does_not_match_its_digest_leaves_the_old_output(tmp_path: Path) -> None:
    output = tmp_path / "vm.img"
    output.write_bytes(b"the old disk")
    disk = _disk()
    with pytest.raises(BlobDigestMismatchError, match=r"deployed g/i/1\.0\.0 hashes to"):
        _fetch(disk, "0" * 32, output)
    assert output.read_bytes() == b"the old disk"
    assert [path.name for path in tmp_path.iterdir()] == ["vm.img"]


def test_a_download_that_ends_short_writes_nothing(tmp_path: Path) -> None:
    disk = _disk()
    with pytest.raises(EndpointError, match=f"ended after {len(disk)} of its {len(disk) + 10} bytes"):
        _fetch(disk, _digest(disk), tmp_path / "vm.img", length=len(disk) + 10)
    assert list(tmp_path.iterdir()) == []


def test_an_answer_without_a_digest_is_an_endpoint_error(tmp_path: Path) -> None:
    with pytest.raises(EndpointError, match="ETag"):
        _fetch(b"abc", "", tmp_path / "vm.img")


async def test_an_upload_sends_the_source_exactly(tmp_path: Path) -> None:
    disk = _disk()
    path = tmp_path / "disk.raw"
    path.write_bytes(disk)
    seen: list[tuple[int, int | None]] = []
    source = open_source(path)
    try:
        pieces = [
            piece async for piece in upload_pieces(source, lambda done, total: seen.append((done, total)))
        ]
    finally:
        source.close()
    assert b"".join(pieces) == disk
    assert max(len(piece) for piece in pieces) <= PIECE
    assert seen[-1] == (len(disk), len(disk))


async def test_a_stream_of_unknown_length_is_sent_to_its_end(tmp_path: Path) -> None:
    disk = _disk()
    reading, writing = os.pipe()
    seen: list[tuple[int, int | None]] = []

    def feed() -> None:
        with open(writing, "wb") as out:
            out.write(disk)

    async with anyio.create_task_group() as group:
        group.start_soon(anyio.to_thread.run_sync, feed)
        source = StreamSource(reading, name="standard input")
        try:
            pieces = [
                piece async for piece in upload_pieces(source, lambda done, total: seen.append((done, total)))
            ]
        finally:
            os.close(reading)
    assert b"".join(pieces) == disk
    assert seen[-1] == (len(disk), None)


async def test_a_source_that_shrinks_while_it_is_sent_fails_the_upload(tmp_path: Path) -> None:
    path = tmp_path / "disk.raw"
    path.write_bytes(_disk())
    source = open_source(path)
    try:
        os.truncate(path, PIECE + 5)
        with pytest.raises(SourceError, match=f"ended after {PIECE + 5} bytes while it was uploaded"):
            async for _ in upload_pieces(source, None):
                pass
    finally:
        source.close()


class _Recorder:
    """Stands in for an output file: remembers each write."""

    def __init__(self) -> None:
        self.writes: list[tuple[int, bytes]] = []

    def write_at(self, data: memoryview | bytes, position: int) -> None:
        self.writes.append((position, bytes(data)))


@given(
    st.lists(st.tuples(st.booleans(), st.integers(min_value=1, max_value=3 * HOLE)), max_size=8),
    st.integers(min_value=0, max_value=4 * HOLE),
)
def test_a_piece_is_written_whole_but_for_its_zero_blocks(runs: list[tuple[bool, int]], at: int) -> None:
    data = b"".join(bytes(length) if zero else b"\x01" * length for zero, length in runs)
    recorder = _Recorder()
    write_sparse(recorder, memoryview(data), at)  # type: ignore[arg-type]
    disk = bytearray(at + len(data))
    for position, written in recorder.writes:
        disk[position : position + len(written)] = written
        assert any(written)
    assert bytes(disk[at:]) == data
    for position, written in recorder.writes:
        # No aligned block inside a write is all zeros: that block would have been a hole.
        first = -(-position // HOLE) * HOLE
        for block in range(first, position + len(written) - HOLE + 1, HOLE):
            assert any(written[block - position : block - position + HOLE])
