"""The load of the daemon benchmark: its HTTP clients and its library baselines, each a child.

Every operation here runs in a child process of its own (``bench/daemon.py --child SPEC``,
see :mod:`_steps`), so its CPU time and peak RSS are its own, apart from the daemon's and
from the benchmark's:

* ``download``: ``clients`` concurrent HTTP clients (anyio tasks, one keep-alive connection
  each, :mod:`_daemon_http`) reading a version's disk with ``Range`` requests of
  ``range_size`` bytes. The work is ``passes`` sequential passes over the disk's ranges, cut
  into one contiguous share per client (:func:`shares`), which the client reads in order, one
  request in flight. Each response must be ``206`` with the expected ``Content-Range`` and
  ``ETag``, and its bytes are hashed as they arrive (incremental XXH3-128) and compared with
  the digest of the source file's bytes at that range (precomputed by the benchmark):
  digest-exact, at a cost of well under a second of client CPU per GiB. Before the clock
  starts every client opens its connection with a ``HEAD`` of the disk (which reads nothing),
  so the timing is of transfers, not handshakes.
* ``metadata``: ``clients`` concurrent clients sending ``GET path`` back to back (a closed
  loop) for ``seconds``; latency per request, from send to the last byte of the body.
* ``library``: the direct library read, ``GalleryService.deploy_scale_set`` of ``passes``
  read-and-discard deployments at once (what ``blobrep vmss create`` does without
  ``--output-dir``): the same version, the same replicas and policy, every chunk verified and
  each deployment's whole-blob digest checked, ``passes`` x the disk in all.
* ``ranges``: the daemon's own range path without HTTP, to tell the cost of HTTP from the cost
  of reading by ranges: the same shares of ranges over ``clients`` tasks, each range read
  through the daemon's shared-reader pool and its ``send_range`` (the code the content route
  runs), its bytes counted and dropped.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import anyio
import xxhash
from _daemon_http import Connection, ProtocolError, request_bytes
from _harness import MIB

from blobrep.service import GalleryService, Policy, percentile

MAX_FAILURES_KEPT: Final = 10


def range_bounds(index: int, range_size: int, size: int) -> tuple[int, int]:
    """First and last byte (both included) of range ``index`` of a disk of ``size`` bytes."""
    first = index * range_size
    return first, min(size, first + range_size) - 1


def range_length(index: int, range_size: int, size: int) -> int:
    first, last = range_bounds(index, range_size, size)
    return last - first + 1


def range_digests(path: Path, range_size: int) -> list[str]:
    """The XXH3-128 hex digest of each ``range_size`` range of the file at ``path``, in order."""
    digests: list[str] = []
    with open(path, "rb", buffering=0) as source:
        while block := source.read(range_size):
            digests.append(xxhash.xxh3_128_hexdigest(block))
    return digests


def shares(ranges: int, passes: int, clients: int) -> list[list[int]]:
    """The ranges each client reads, in order: ``passes`` sequential passes over the disk's
    ``ranges`` ranges, cut into ``clients`` contiguous shares as even as can be (so a share
    runs on from the end of the disk to its start), every range read ``passes`` times."""
    total = ranges * passes
    cuts = [total * client // clients for client in range(clients + 1)]
    return [[step % ranges for step in range(cuts[c], cuts[c + 1])] for c in range(clients)]


def latency_summary(seconds: list[float]) -> dict[str, float | None]:
    if not seconds:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "p50_ms": round(1000 * percentile(seconds, 50), 3),
        "p90_ms": round(1000 * percentile(seconds, 90), 3),
        "p99_ms": round(1000 * percentile(seconds, 99), 3),
        "max_ms": round(1000 * max(seconds), 3),
    }


class _Gate:
    """Starts the clock once every client is connected; then every client goes at once."""

    def __init__(self, clients: int) -> None:
        self.waiting = clients
        self.open = anyio.Event()
        self.started = 0.0

    async def ready(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.started = time.perf_counter()
            self.open.set()
        await self.open.wait()


class _Target:
    """Where the clients connect, and the request bytes they send."""

    def __init__(self, url: str, token: str | None) -> None:
        parts = urlsplit(url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"{url!r} names no host and port")
        self.host, self.port = parts.hostname, parts.port
        self.netloc = parts.netloc
        self.auth = {} if token is None else {"Authorization": f"Bearer {token}"}

    def request(self, method: str, path: str, **headers: str) -> bytes:
        return request_bytes(method, path, self.netloc, {**self.auth, **headers})

    async def connect(self) -> Connection:
        return await Connection.open(self.host, self.port)


# --- download -----------------------------------------------------------------------------------


def child_download(spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """Many clients reading the disk by ranges, each range checked; timed over the transfers."""
    digests: list[str] = json.loads(Path(spec["digests"]).read_text())
    size, range_size, clients = int(spec["size"]), int(spec["range_size"]), int(spec["clients"])
    target = _Target(spec["url"], spec["token"])
    path, etag = spec["path"], spec["etag"]
    work = shares(len(digests), int(spec["passes"]), clients)
    order = [index for share in work for index in share]
    gate = _Gate(clients)
    latencies: list[float] = []
    first_bytes: list[float] = []
    failures: list[str] = []
    counts = {"bytes": 0, "requests": 0, "exact": 0, "mismatched": 0, "failed": 0, "reconnects": 0}

    def fail(message: str) -> None:
        counts["failed"] += 1
        if len(failures) < MAX_FAILURES_KEPT:
            failures.append(message)

    async def one(connection: Connection, index: int) -> bool:
        """Read range ``index`` and check it; False if the connection must be opened again."""
        first, last = range_bounds(index, range_size, size)
        started = time.perf_counter()
        head = await connection.send(target.request("GET", path, Range=f"bytes={first}-{last}"))
        first_bytes.append(time.perf_counter() - started)
        expected_range = f"bytes {first}-{last}/{size}"
        if head.status != 206 or head.headers.get("content-range") != expected_range:
            await connection.body(head)
            fail(f"range {first}-{last}: {head.status} {head.headers.get('content-range')}")
            return head.headers.get("connection") != "close"
        if head.headers.get("etag") != etag:
            fail(f"range {first}-{last}: ETag {head.headers.get('etag')} instead of {etag}")
        digest = xxhash.xxh3_128()
        received = await connection.body(head, digest.update)
        latencies.append(time.perf_counter() - started)
        counts["bytes"] += received
        counts["requests"] += 1
        if received == last - first + 1 and digest.hexdigest() == digests[index]:
            counts["exact"] += 1
        else:
            counts["mismatched"] += 1
            fail(f"range {first}-{last}: {received} bytes, digest {digest.hexdigest()} != {digests[index]}")
        return head.headers.get("connection") != "close"

    async def worker(share: list[int]) -> None:
        connection = await target.connect()
        head = await connection.send(target.request("HEAD", path))
        if head.status != 200:
            fail(f"HEAD {path}: {head.status}")
        await gate.ready()
        try:
            for index in share:
                try:
                    reusable = await one(connection, index)
                except (OSError, anyio.EndOfStream, anyio.IncompleteRead, ProtocolError) as exc:
                    fail(f"range {index}: {type(exc).__name__}: {exc}")
                    reusable = False
                if not reusable:
                    await connection.aclose()
                    counts["reconnects"] += 1
                    connection = await target.connect()
        finally:
            await connection.aclose()

    async def go() -> float:
        async with anyio.create_task_group() as group:
            for share in work:
                group.start_soon(worker, share)
        return time.perf_counter() - gate.started

    cpu = time.process_time()
    seconds = anyio.run(go)
    cpu = time.process_time() - cpu
    return seconds, {
        **counts,
        "expected_requests": len(order),
        "expected_bytes": sum(range_length(index, range_size, size) for index in order),
        "clients": clients,
        "client_cpu_s": round(cpu, 3),
        "request": latency_summary(latencies),
        "first_byte": latency_summary(first_bytes),
        "failures": failures,
    }


# --- metadata -----------------------------------------------------------------------------------


def child_metadata(spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """``clients`` closed-loop clients sending ``GET path`` for ``seconds``; latency per request."""
    clients, path, duration = int(spec["clients"]), spec["path"], float(spec["seconds"])
    target = _Target(spec["url"], spec["token"])
    request = target.request("GET", path)
    gate = _Gate(clients)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    failures: list[str] = []

    async def worker() -> None:
        connection = await target.connect()
        try:
            head = await connection.send(request)
            body = await connection.discard(head)
            if head.status != 200:
                failures.append(f"GET {path}: {head.status} {body[:200]!r}")
            await gate.ready()
            deadline = gate.started + duration
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                head = await connection.send(request)
                await connection.discard(head)
                latencies.append(time.perf_counter() - started)
                status = str(head.status)
                statuses[status] = statuses.get(status, 0) + 1
                if head.headers.get("connection") == "close":
                    await connection.aclose()
                    connection = await target.connect()
        finally:
            await connection.aclose()

    async def go() -> float:
        async with anyio.create_task_group() as group:
            for _ in range(clients):
                group.start_soon(worker)
        return time.perf_counter() - gate.started

    cpu = time.process_time()
    seconds = anyio.run(go)
    cpu = time.process_time() - cpu
    return seconds, {
        "path": path,
        "clients": clients,
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / seconds, 1),
        "statuses": statuses,
        "failures": failures,
        "client_cpu_s": round(cpu, 3),
        **latency_summary(latencies),
        "mean_ms": round(1000 * sum(latencies) / len(latencies), 3) if latencies else None,
    }


# --- the library, without HTTP ------------------------------------------------------------------


def child_library(spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """``passes`` read-and-discard deployments at once through the library; timed around them."""

    async def go() -> tuple[float, dict[str, Any]]:
        async with await GalleryService.open(Path(spec["home"])) as service:
            cpu = time.process_time()
            started = time.perf_counter()
            summary = await service.deploy_scale_set(
                service.bootstrap_admin,
                spec["version_id"],
                int(spec["passes"]),
                location=spec["region"],
                policy=Policy.LEAST_LOADED,
            )
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu
        stats = summary.statistics
        return seconds, {
            "deployments": summary.count,
            "succeeded": summary.succeeded,
            "errors": summary.errors,
            "failures": list(summary.failures[:MAX_FAILURES_KEPT]),
            "bytes": summary.succeeded * int(spec["size"]),
            "makespan_s": round(summary.makespan, 4),
            "cpu_s": round(cpu, 3),
            "stored_bytes_served": {name: r.bytes_served for name, r in stats.replicas.items()},
            "chunk_reads": stats.chunks,
        }

    return anyio.run(go)


def child_ranges(spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """The daemon's range path in-process: the same shares of ranges, no HTTP, bytes dropped."""
    from blobrep.core.ranges import ByteRange
    from blobrep.daemon.content import send_range
    from blobrep.daemon.readers import open_pool

    size, range_size, clients = int(spec["size"]), int(spec["range_size"]), int(spec["clients"])
    ranges = -(-size // range_size)
    work = shares(ranges, int(spec["passes"]), clients)
    received = [0]

    async def emit(piece: bytes | memoryview) -> None:
        received[0] += len(piece)

    async def go() -> tuple[float, dict[str, Any]]:
        async with await GalleryService.open(Path(spec["home"])) as service, open_pool() as pool:
            version, region, stores = await service.readable_version(
                service.bootstrap_admin, spec["version_id"], location=spec["region"]
            )

            async def worker(share: list[int]) -> None:
                for index in share:
                    first, last = range_bounds(index, range_size, size)
                    async with pool.reading(version, region, stores) as lease:
                        await send_range(lease, ByteRange(first, last), emit)

            cpu = time.process_time()
            started = time.perf_counter()
            async with anyio.create_task_group() as group:
                for share in work:
                    group.start_soon(worker, share)
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu
            replicas = pool.replica_statistics().replicas
        return seconds, {
            "bytes": received[0],
            "requests": sum(len(share) for share in work),
            "clients": clients,
            "cpu_s": round(cpu, 3),
            "stored_bytes_served": {row[1]: row[2] for row in replicas},
            "chunk_reads": sum(row[3] for row in replicas),
        }

    return anyio.run(go)


CHILD_OPERATIONS: Final = {
    "download": child_download,
    "metadata": child_metadata,
    "library": child_library,
    "ranges": child_ranges,
}

#: Bytes of a range request (4 MiB, as a VM's disk driver or a downloader would ask).
RANGE_SIZE: Final = 4 * MIB
