"""Reading a version's disk over HTTP against a real server: bytes, ranges, validators, access,
clients that stop reading or go away, many readers at once, and a damaged replica."""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import pytest
import uvicorn

from blobrep.core.codec import new_blob_hasher
from blobrep.daemon.app import create_app
from blobrep.daemon.budget import ByteBudget
from blobrep.service import Store, SyntheticImage, ThrottledStore
from tests.cli.helpers import blobrep
from tests.daemon.conftest import Daemon, free_port, ok, start, stop
from tests.stored_frames import Frame, frames

GALLERY = "gal"
IMAGE = "img"
VERSIONS = f"/galleries/{GALLERY}/images/{IMAGE}/versions"
CONTENT = f"{VERSIONS}/1.0.0/content"
SOURCE = "westcentralus"
BLOCKED = "eastus2"
"""A target region of 1.0.0 whose replication can never complete (see the fixture)."""


@dataclass(frozen=True)
class Served:
    """The daemon, and the disks of 1.0.0 (two replicas in the source region) and 1.0.1."""

    daemon: Daemon
    disk: bytes
    newer: bytes


def digest(data: bytes) -> str:
    hasher = new_blob_hasher()
    hasher.update(data)
    return hasher.hexdigest()


def image(path: Path, size: int, seed: int) -> bytes:
    with open(path, "wb") as out:
        for block in SyntheticImage(size, seed=seed).blocks():
            out.write(block)
    return path.read_bytes()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``gal/img`` 1.0.0 (24 MiB, two replicas in westcentralus; eastus2 a target that can
    never be filled: a file stands where its replica directory must go) and 1.0.1 (a smaller,
    odd-sized disk); principals ``reader`` (Reader on the gallery) and ``nobody`` (no role)."""
    cwd = tmp_path_factory.mktemp("content")
    home = cwd / ".blobrep"
    disk = image(cwd / "disk.raw", 24 * 1024 * 1024, seed=36)  # data, then zeros at the end
    newer = image(cwd / "newer.raw", 3 * 1024 * 1024 + 12345, seed=22)
    ok(cwd, "sig", "create", "-r", GALLERY, "--location", SOURCE)
    fields = ("--publisher", "p", "--offer", "o", "--sku", "s", "--os-type", "Linux")
    ok(cwd, "sig", "image-definition", "create", "-r", GALLERY, "-i", IMAGE, *fields)
    definition = ("-r", GALLERY, "-i", IMAGE)
    targets = ("--target-regions", f"{SOURCE}=2", BLOCKED, "--no-wait")
    ok(cwd, "sig", "image-version", "create", *definition, "-e", "1.0.0", "--source", "disk.raw", *targets)
    blocked = home / "regions" / BLOCKED
    blocked.mkdir(parents=True, exist_ok=True)
    (blocked / "replica-1").write_text("not a directory\n")
    ok(cwd, "sig", "image-version", "create", *definition, "-e", "1.0.1", "--source", "newer.raw")
    for name in ("reader", "nobody"):
        ok(cwd, "principal", "create", "--name", name, "--type", "user")
    scope = f"/galleries/{GALLERY}"
    ok(cwd, "role", "assignment", "create", "--assignee", "reader", "--role", "Reader", "--scope", scope)
    tokens = {
        name: json.loads(ok(cwd, "token", "create", "--principal", name))["token"]
        for name in ("admin", "reader", "nobody")
    }
    url, process = start(cwd, home)
    try:
        yield Served(Daemon(url, home, cwd, tokens, process), disk, newer)
    finally:
        if process.poll() is None:
            code, err = stop(process)
            assert code == 0, err


def get(
    served: Served, route: str = CONTENT, principal: str | None = "reader", **headers: str
) -> httpx.Response:
    merged = {
        **served.daemon.headers(principal),
        **{key.replace("_", "-"): value for key, value in headers.items()},
    }
    return httpx.get(served.daemon.url + route, headers=merged, timeout=60)


def head(served: Served, route: str = CONTENT, **headers: str) -> httpx.Response:
    merged = {
        **served.daemon.headers("reader"),
        **{key.replace("_", "-"): value for key, value in headers.items()},
    }
    return httpx.head(served.daemon.url + route, headers=merged, timeout=60)


def etag(data: bytes) -> str:
    return f'"{digest(data)}"'


def test_a_download_is_the_source_disk_byte_for_byte(served: Served) -> None:
    response = get(served)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(served.disk))
    assert response.headers["etag"] == etag(served.disk)
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.content == served.disk


def test_head_answers_the_headers_of_get_without_the_body(served: Served) -> None:
    response = head(served)
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-length"] == str(len(served.disk))
    assert response.headers["etag"] == etag(served.disk)
    assert response.headers["accept-ranges"] == "bytes"
    partial = head(served, range="bytes=10-19")
    assert partial.status_code == 206 and partial.content == b""
    assert partial.headers["content-range"] == f"bytes 10-19/{len(served.disk)}"
    assert partial.headers["content-length"] == "10"


@pytest.mark.parametrize(
    ("spec", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=100-5000000", 100, 5000000),  # across several chunks, starting inside one
        ("bytes=20000000-", 20000000, None),
        ("bytes=-12345", -12345, None),
        ("bytes=-999999999", 0, None),  # a suffix longer than the disk is the whole disk
        ("bytes=25165800-99999999", 25165800, None),  # clipped to the end
    ],
)
def test_a_single_range_gets_206_with_exactly_those_bytes(
    served: Served, spec: str, first: int, last: int | None
) -> None:
    size = len(served.disk)
    first = first % size if first < 0 else first
    end = size if last is None else last + 1
    response = get(served, range=spec)
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {first}-{end - 1}/{size}"
    assert response.headers["content-length"] == str(end - first)
    assert response.headers["etag"] == etag(served.disk)
    assert response.content == served.disk[first:end]


@pytest.mark.parametrize(
    "spec", ["bytes=25165824-", "bytes=99999999-100000000", "bytes=-0", "bytes=30000000-, 40000000-"]
)
def test_a_range_past_the_end_gets_416_naming_the_size(served: Served, spec: str) -> None:
    response = get(served, range=spec)
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(served.disk)}"
    error = response.json()["error"]
    assert error["code"] == "RangeNotSatisfiable" and str(len(served.disk)) in error["message"]


@pytest.mark.parametrize("spec", ["bytes=0-1, 5-6", "bytes=9-2", "bytes=a-b", "lines=0-1"])
def test_several_or_malformed_ranges_get_the_whole_disk(served: Served, spec: str) -> None:
    response = head(served, range=spec)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(served.disk))
    assert "content-range" not in response.headers
    if spec == "bytes=0-1, 5-6":
        assert get(served, range=spec).content == served.disk


def test_if_none_match_with_the_tag_gets_304_without_a_body(served: Served) -> None:
    tag = etag(served.disk)
    for condition in (tag, f"W/{tag}", "*", f'"other", {tag}'):
        response = get(served, if_none_match=condition)
        assert response.status_code == 304 and response.content == b"", condition
        assert response.headers["etag"] == tag
    changed = get(served, if_none_match=etag(served.newer), range="bytes=0-9")
    assert changed.status_code == 206 and changed.content == served.disk[:10]


def test_if_range_with_another_tag_gets_the_whole_disk(served: Served) -> None:
    same = get(served, range="bytes=0-9", if_range=etag(served.disk))
    assert same.status_code == 206 and same.content == served.disk[:10]
    other = head(served, range="bytes=0-9", if_range=etag(served.newer))
    assert other.status_code == 200 and other.headers["content-length"] == str(len(served.disk))


def test_latest_content_is_the_newest_version_s_disk(served: Served) -> None:
    response = get(served, f"{VERSIONS}/latest/content")
    assert response.status_code == 200
    assert response.headers["etag"] == etag(served.newer)
    assert response.content == served.newer
    tail = get(served, f"{VERSIONS}/latest/content", range="bytes=-100")
    assert tail.content == served.newer[-100:]


def test_a_region_where_the_version_is_not_completed_gets_409_with_the_cli_s_message(served: Served) -> None:
    response = get(served, f"{CONTENT}?location={BLOCKED}")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "ResourceNotReady"
    assert f"cannot be read in {BLOCKED} yet" in error["message"]
    cli = blobrep(
        "vm",
        "create",
        "--image",
        CONTENT.removesuffix("/content"),
        "--location",
        BLOCKED,
        cwd=served.daemon.cwd,
    )
    assert cli.returncode != 0
    # The same words, though the state may move on between the two reads (a retry under way).
    assert (
        error["message"].split(": it is")[0]
        == cli.stderr.strip().removeprefix("blobrep: error: ").split(": it is")[0]
    )
    unknown = get(served, f"{CONTENT}?location=atlantis")
    assert unknown.status_code == 404 and "atlantis" in unknown.json()["error"]["message"]
    assert get(served, f"{VERSIONS}/9.9.9/content").status_code == 404


def test_a_download_needs_a_token_and_the_deploy_right(served: Served) -> None:
    anonymous = get(served, principal=None)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="blobrep"'
    assert anonymous.json()["error"]["code"] == "AuthenticationFailed"
    assert httpx.head(served.daemon.url + CONTENT, timeout=30).status_code == 401
    denied = get(served, principal="nobody")
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "AuthorizationFailed"
    assert "nobody" in denied.json()["error"]["message"]
    assert len(denied.content) < 1000


# --- clients that stop reading or go away ------------------------------------------------------


def request_raw(served: Served, route: str = CONTENT) -> socket.socket:
    """A connection that has sent a GET of ``route`` and read nothing yet."""
    address = urlsplit(served.daemon.url)
    assert address.hostname is not None and address.port is not None
    connection = socket.create_connection((address.hostname, address.port), timeout=30)
    connection.sendall(
        (
            f"GET {route} HTTP/1.1\r\nHost: {address.netloc}\r\n"
            f"Authorization: Bearer {served.daemon.tokens['reader']}\r\n\r\n"
        ).encode()
    )
    return connection


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def wait_for(condition: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.05)


def test_clients_that_go_away_mid_download_leave_nothing_behind(served: Served) -> None:
    pid = served.daemon.process.pid
    assert get(served, range="bytes=0-0").status_code == 206  # every lazily opened thing open
    before = open_files(pid)
    for _ in range(20):
        connection = request_raw(served)
        received = connection.recv(64 * 1024)
        assert received.startswith(b"HTTP/1.1 200")
        connection.close()
    wait_for(lambda: open_files(pid) <= before)
    assert get(served).content == served.disk
    assert served.daemon.process.poll() is None


def test_a_client_that_stops_reading_holds_a_bounded_share_of_memory(served: Served) -> None:
    pid = served.daemon.process.pid
    assert get(served).content == served.disk
    before = resident_bytes(pid)
    stalled = [request_raw(served) for _ in range(6)]
    try:
        for connection in stalled:
            assert connection.recv(4096).startswith(b"HTTP/1.1 200")
        time.sleep(1.5)  # long enough for a download that buffered its whole disk to do so
        grown = resident_bytes(pid) - before
        # Whole disks would be 6 x 24 MiB. A stalled download holds its read-ahead (4 MiB), the
        # chunk it was sending and the piece uvicorn holds: about 9 MiB each, measured.
        assert grown < 6 * len(served.disk) * 2 // 3, f"grew {grown / 2**20:.0f} MiB"
        assert get(served, range="bytes=0-99").content == served.disk[:100]
    finally:
        for connection in stalled:
            connection.close()


def test_many_concurrent_range_readers_all_get_exact_bytes(served: Served) -> None:
    size = len(served.disk)
    headers = served.daemon.headers("reader")

    def reader(seed: int) -> int:
        rng = random.Random(seed)
        with httpx.Client(base_url=served.daemon.url, headers=headers, timeout=60) as client:
            for _ in range(4):
                first = rng.randrange(size)
                last = min(size - 1, first + rng.randrange(1, 3 * 1024 * 1024))
                response = client.get(CONTENT, headers={"Range": f"bytes={first}-{last}"})
                assert response.status_code == 206
                assert response.content == served.disk[first : last + 1], (first, last)
        return seed

    with ThreadPoolExecutor(max_workers=32) as pool:
        assert sorted(pool.map(reader, range(32))) == list(range(32))


# --- the shared reader, seen from inside a server in this process ------------------------------


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers (the test process keeps its own)."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def serving(
    home: Path, wrap_store: Callable[[str, int, Store], Store]
) -> AsyncIterator[tuple[str, object]]:
    """The daemon's application on a free loopback port in this process, without a reconcile loop."""
    app = create_app(home, wrap_store=wrap_store, reconcile_interval=None)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="on", log_level="warning", access_log=False
    )
    server = _Server(config)
    async with anyio.create_task_group() as group:
        group.start_soon(server.serve)
        await wait_until(lambda: server.started, 30)
        try:
            yield f"http://127.0.0.1:{port}", app
        finally:
            server.should_exit = True


async def wait_until(condition: Callable[[], bool], seconds: float = 15) -> None:
    """Poll ``condition``: uvicorn's ``started`` and the pool's counts have no event to wait on."""
    with anyio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110
            await anyio.sleep(0.02)


async def test_downloads_share_one_reader_and_give_it_back_when_their_clients_go(served: Served) -> None:
    def slow(region: str, number: int, store: Store) -> Store:
        # Two replicas at 4 MiB/s: reading the rest of four disks would take about ten seconds.
        return ThrottledStore(store, 4 * 1024 * 1024)

    async with serving(served.daemon.home, slow) as (url, app):
        pool = app.state.readers  # type: ignore[attr-defined]
        tasks = len(asyncio.all_tasks())
        async with httpx.AsyncClient(
            base_url=url, headers=served.daemon.headers("reader"), timeout=60
        ) as client:
            async with AsyncExitStack() as stack:
                downloads = [await stack.enter_async_context(client.stream("GET", CONTENT)) for _ in range(4)]
                for download in downloads:
                    assert download.status_code == 200
                    first = await anext(download.aiter_raw())
                    assert first == served.disk[: len(first)]
                statistics = pool.replica_statistics()
                assert (statistics.open, statistics.opened) == (1, 1)
            # Leaving the streams closed their connections in the middle of the disk: their reads stop.
            await wait_until(lambda: pool.replica_statistics().open == 0, 5)
            await wait_until(lambda: len(asyncio.all_tasks()) <= tasks)
            response = await client.get(CONTENT, headers={"Range": "bytes=1000000-2999999"})
            assert response.content == served.disk[1000000:3000000]
        # A reader lingers a moment after its last download (for a next range), then closes.
        await wait_until(lambda: pool.replica_statistics().open == 0, 5)
        statistics = pool.replica_statistics()
        assert (statistics.open, statistics.opened) == (0, 2)
        # Both replicas served: the concurrent reads went to the less loaded one each time.
        assert [row[:2] for row in statistics.replicas] == [
            (SOURCE, f"{SOURCE}/replica-1"),
            (SOURCE, f"{SOURCE}/replica-2"),
        ]
        assert all(row[2] > 0 and row[3] > 0 for row in statistics.replicas), statistics


# --- last: it damages a replica ---------------------------------------------------------------


def chunk_frames(served: Served, replica: int, version: str) -> dict[str, Frame]:
    """Where the replica keeps each stored chunk of ``version`` (in packs: the daemon's home
    publishes into them)."""
    root = served.daemon.home / "regions" / SOURCE / f"replica-{replica}"
    manifest = root / f"galleries/{GALLERY}/images/{IMAGE}/versions/{version}/manifest.json"
    return frames(root, GALLERY, manifest)


def test_a_corrupt_replica_is_failed_over_and_repaired(served: Served) -> None:
    damaged = chunk_frames(served, 1, "1.0.0")
    for shared in chunk_frames(served, 1, "1.0.1"):
        damaged.pop(shared, None)
    healthy = served.daemon.home / "regions" / SOURCE / "replica-2"
    for frame in damaged.values():
        assert frame.packed
        frame.flip()
    assert len(damaged) >= 10
    packs = {frame.key: frame.path for frame in damaged.values()}
    assert get(served).content == served.disk
    # The packs the download met were rewritten whole from the good replica once it was done.
    wait_for(lambda: any(path.read_bytes() == (healthy / key).read_bytes() for key, path in packs.items()))
    assert get(served, range="bytes=-3000000").content == served.disk[-3000000:]


async def test_a_disk_read_in_ranges_reads_each_chunk_once(served: Served) -> None:
    """A range that ends inside a chunk leaves it for the range that starts there: reading a
    disk range after range costs the chunk reads of reading it whole, not a third more."""

    def as_is(region: str, number: int, store: Store) -> Store:
        return store

    async with serving(served.daemon.home, as_is) as (url, app):
        pool = app.state.readers  # type: ignore[attr-defined]
        async with httpx.AsyncClient(
            base_url=url, headers=served.daemon.headers("reader"), timeout=60
        ) as client:
            whole = await client.get(CONTENT)
            assert whole.content == served.disk
            once = served_reads(pool)
            step, received = 700_001, bytearray()
            for first in range(0, len(served.disk), step):
                last = min(first + step, len(served.disk)) - 1
                part = await client.get(CONTENT, headers={"Range": f"bytes={first}-{last}"})
                assert part.status_code == 206
                received += part.content
        assert received == served.disk
        reads = served_reads(pool)
        assert once > 10, "the disk must span many chunks for this to say anything"
        assert reads - once == once, f"{reads - once} chunk reads by ranges against {once} whole"


def served_reads(pool: Any) -> int:
    """Chunk reads a replica served (reads that failed over to another are not counted twice)."""
    return sum(requests - failures for _, _, _, requests, failures in pool.replica_statistics().replicas)


class _Watched(ByteBudget):
    """A budget that remembers the most it ever handed out."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity)
        self.most = 0

    async def acquire(self, size: int) -> int:
        taken = await super().acquire(size)
        self.most = max(self.most, self.held)
        return taken


async def test_downloads_together_hold_no_more_chunk_bytes_than_the_budget_and_give_it_all_back(
    served: Served,
) -> None:
    """Many clients at once, some going away halfway: the chunks held stay within the pool's
    budget (three chunks' worth here), every finished download is exact, and once all are
    done nothing of the budget is held."""

    def as_is(region: str, number: int, store: Store) -> Store:
        return store

    async with serving(served.daemon.home, as_is) as (url, app):
        pool = app.state.readers  # type: ignore[attr-defined]
        pool.budget = budget = _Watched(3 * 1024 * 1024)
        async with httpx.AsyncClient(
            base_url=url, headers=served.daemon.headers("reader"), timeout=60
        ) as client:
            whole: list[bytes] = []

            async def download() -> None:
                whole.append((await client.get(CONTENT)).content)

            async def leave_halfway() -> None:
                async with client.stream("GET", CONTENT) as response:
                    received = 0
                    async for piece in response.aiter_raw():
                        received += len(piece)
                        if received > len(served.disk) // 2:
                            break

            async with anyio.create_task_group() as group:
                for index in range(12):
                    group.start_soon(download if index % 3 else leave_halfway)
        assert whole == [served.disk] * 8
        await wait_until(lambda: budget.held == 0, 5)
        assert 0 < budget.most <= budget.capacity and budget.waits > 0
        statistics = pool.replica_statistics()
        assert (statistics.budget_held, statistics.budget_capacity) == (0, budget.capacity)
        assert statistics.budget_waits == budget.waits
