"""The child operations of ``bench/regions.py``: the layout of its homes, and each timed step.

Each operation runs in a child process of its own (``regions.py --child SPEC``), is timed
inside around the one call that counts, and returns plain data (:mod:`_steps`). What it does
after the timing (listing what landed in the target replicas) is not timed.

Layout. One gallery, :data:`GALLERY`, whose home region is the local :data:`SOURCE`. For each
kind of region (:data:`KINDS`) there is a region to publish into with 1 replica, three target
regions that get 2 replicas each, and a region that holds 5 replicas for the scale set
(:class:`KindLayout`). The local kind uses the home's own regions; the object kinds add
theirs with ``GalleryService.add_region(url=...)``, each on a prefix of its own under the run's
prefix of the test bucket or container.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.to_thread
import obstore
from _harness import tree_bytes
from anyio.streams.memory import MemoryObjectReceiveStream
from obstore.store import AzureStore, S3Store

from blobrep.service import (
    DefinitionFields,
    GalleryService,
    Policy,
    PublishResult,
    Store,
    StoreWrapper,
    ThrottledStore,
    VersionOptions,
)
from blobrep.storage.object_url import ObjectUrl

GALLERY: Final = "bench"
IMAGE: Final = "bench-image"
V1: Final = "1.0.0"
V2: Final = "1.0.1"
SOURCE: Final = "westcentralus"
TARGET_REPLICAS: Final = 2
DEPLOY_REPLICAS: Final = 5
KINDS: Final = ("local", "s3", "azure")
OBJECT_KINDS: Final = ("s3", "azure")


@dataclass(frozen=True, slots=True)
class KindLayout:
    """The regions of one kind: where publish writes, the 3 replication targets, the scale set's."""

    kind: str
    publish: str
    targets: tuple[str, str, str]
    deploy: str

    @property
    def definition(self) -> str:
        """The image definition published into :attr:`publish` (the local kind's is the source's)."""
        return IMAGE if self.kind == "local" else f"pub-{self.kind}"

    def target_tokens(self) -> list[str]:
        return [f"{region}={TARGET_REPLICAS}" for region in self.targets]


LAYOUTS: Final = {
    "local": KindLayout("local", SOURCE, ("eastus2", "westeurope", "southeastasia"), "southcentralus"),
    "s3": KindLayout("s3", "s3pub", ("s3t1", "s3t2", "s3t3"), "s3deploy"),
    "azure": KindLayout("azure", "azpub", ("azt1", "azt2", "azt3"), "azdeploy"),
}


def version_id(version: str = V1) -> str:
    return f"/galleries/{GALLERY}/images/{IMAGE}/versions/{version}"


def stored_under(replica: str) -> str:
    """The gallery's directory (or object prefix) under a replica's: its packs, chunk objects
    and manifests, what a replica of the version holds."""
    return f"{replica}/galleries/{GALLERY}"


# --- obstore, directly: the baselines, listing and cleanup ----------------------------------


@functools.cache
def backend(kind: str, bucket: str) -> S3Store | AzureStore:
    """obstore's own client for the bucket or container, configured from the environment."""
    # obstore's runtime threads may still be handing a result back when the interpreter
    # finalizes, which aborts the process on CPython 3.11; a short sleep at exit lets them end.
    atexit.register(time.sleep, 0.05)
    return S3Store(bucket) if kind == "s3" else AzureStore(bucket)


async def prefix_bytes(kind: str, bucket: str, prefix: str) -> tuple[int, int]:
    """(objects, bytes) under ``prefix`` (a directory-like prefix, no trailing slash)."""
    objects = size = 0
    async for page in obstore.list(backend(kind, bucket), prefix + "/", chunk_size=1000):
        objects += len(page)
        size += sum(meta["size"] for meta in page)
    return objects, size


async def delete_prefix(kind: str, bucket: str, prefix: str) -> int:
    """Delete every object under ``prefix``; how many there were."""
    store = backend(kind, bucket)
    paths = [meta["path"] async for page in obstore.list(store, prefix + "/") for meta in page]
    limiter = anyio.CapacityLimiter(8)

    async def some(batch: list[str]) -> None:
        async with limiter:
            await obstore.delete_async(store, batch)

    async with anyio.create_task_group() as group:
        for start in range(0, len(paths), 200):
            group.start_soon(some, paths[start : start + 200])
    return len(paths)


def _child_delete(spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """Remove the run's objects under each (kind, bucket, prefix)."""

    async def go() -> dict[str, Any]:
        deleted = {}
        for kind, bucket, prefix in spec["prefixes"]:
            deleted[f"{kind}:{prefix}"] = await delete_prefix(kind, bucket, prefix)
        return deleted

    started = time.perf_counter()
    deleted = anyio.run(go)
    return time.perf_counter() - started, {"deleted": deleted}


def _child_put(spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """obstore's own bulk upload of a replica's chunk files to each destination prefix.

    ``mode`` "put": every file is put to every destination. "copy": put to the first, then
    copied inside the service to the others. ``tasks`` files are in flight at once (each read
    once), with at most ``requests`` puts and copies in flight over all of them.
    """
    root = Path(spec["root"])
    files = sorted(path for path in root.rglob("*") if path.is_file())
    names = [path.relative_to(root).as_posix() for path in files]
    destinations: list[str] = spec["destinations"]
    store = backend(spec["kind"], spec["bucket"])
    copy = spec["mode"] == "copy"

    async def go() -> float:
        requests = anyio.CapacityLimiter(spec["requests"])
        send, receive = anyio.create_memory_object_stream[int](0)

        async def put(destination: str, name: str, data: bytes) -> None:
            async with requests:
                await obstore.put_async(store, f"{destination}/{name}", data, use_multipart=False)

        async def server_copy(destination: str, name: str) -> None:
            async with requests:
                await obstore.copy_async(store, f"{destinations[0]}/{name}", f"{destination}/{name}")

        async def worker(jobs: MemoryObjectReceiveStream[int]) -> None:
            async with jobs:
                async for index in jobs:
                    data = await anyio.to_thread.run_sync(files[index].read_bytes)
                    first = destinations[:1] if copy else destinations
                    async with anyio.create_task_group() as group:
                        for destination in first:
                            group.start_soon(put, destination, names[index], data)
                    if copy:
                        async with anyio.create_task_group() as group:
                            for destination in destinations[1:]:
                                group.start_soon(server_copy, destination, names[index])

        started = time.perf_counter()
        async with anyio.create_task_group() as workers:
            for _ in range(spec["tasks"]):
                workers.start_soon(worker, receive.clone())
            receive.close()
            async with send:
                for index in range(len(files)):
                    await send.send(index)
        return time.perf_counter() - started

    seconds = anyio.run(go)
    stored = sum(path.stat().st_size for path in files)
    return seconds, {
        "objects": len(files),
        "stored_bytes": stored,
        "written_bytes": stored * len(destinations),
        "puts": len(files) * (1 if copy else len(destinations)),
        "server_copies": len(files) * (len(destinations) - 1) if copy else 0,
        "mode": spec["mode"],
        "tasks": spec["tasks"],
        "requests_in_flight": spec["requests"],
    }


# --- blobrep: publish, replicate, deploy ------------------------------------------------------


def _statuses(version: Any) -> list[dict[str, Any]]:
    return [
        {
            "region": status.region,
            "state": str(status.state),
            "completed_replicas": status.completed_replicas,
            "target_replicas": status.target_replicas,
            "details": status.details,
        }
        for status in version.regions
    ]


async def _setup(service: GalleryService, setup: dict[str, Any]) -> None:
    """A fresh home's regions (object ones by URL), gallery and definitions."""
    admin = service.bootstrap_admin
    for name, url in setup["regions"]:
        await service.add_region(admin, name, url=url)
    await service.create_gallery(admin, GALLERY, location=SOURCE)
    for definition in setup["definitions"]:
        fields = DefinitionFields(publisher="bench", offer="synthetic", sku=definition, os_type="Linux")
        await service.create_definition(admin, GALLERY, definition, fields)


def _child_publish(spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """``create_version`` of ``definition``/``version`` from the image into ``location``."""

    async def go() -> tuple[float, dict[str, Any]]:
        async with await GalleryService.open(spec["home"]) as service:
            if spec.get("setup"):
                await _setup(service, spec["setup"])
            published: list[PublishResult] = []
            started = time.perf_counter()
            version = await service.create_version(
                service.bootstrap_admin,
                GALLERY,
                spec["definition"],
                spec["version"],
                source=spec["source"],
                location=spec["location"],
                options=VersionOptions(target_regions=spec["targets"]),
                on_published=published.append,
            )
            seconds = time.perf_counter() - started
        result = dataclasses.asdict(published[0])
        return seconds, {
            key: result[key]
            for key in ("size", "chunks", "zero_chunks", "distinct_chunks", "stored_bytes", "written_bytes")
        } | {"regions": _statuses(version)}

    return anyio.run(go)


async def replica_chunk_bytes(service: GalleryService, region: str, replicas: int) -> dict[str, int]:
    """Stored bytes under the chunk directory or prefix of each replica of ``region``."""
    info = await service.show_region(service.bootstrap_admin, region)
    found: dict[str, int] = {}
    for number in range(1, replicas + 1):
        if info.path is not None:
            where = stored_under(str(info.path / f"replica-{number}"))
            found[f"{region}/replica-{number}"] = await anyio.to_thread.run_sync(tree_bytes, Path(where))
        else:
            assert info.url is not None
            url = ObjectUrl.parse(info.url)
            _, size = await prefix_bytes(url.kind, url.bucket, stored_under(f"{url.prefix}/replica-{number}"))
            found[f"{region}/replica-{number}"] = size
    return found


def _child_replicate(spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """``replicate_version`` into ``regions``; then (untimed) the chunk bytes each replica holds."""

    async def go() -> tuple[float, dict[str, Any]]:
        async with await GalleryService.open(spec["home"]) as service:
            done: dict[str, int] = {}
            started = time.perf_counter()
            version = await service.replicate_version(
                service.bootstrap_admin,
                GALLERY,
                IMAGE,
                spec["version"],
                regions=spec["regions"],
                progress=lambda update: done.__setitem__(update.region, update.done_bytes),
            )
            seconds = time.perf_counter() - started
            held: dict[str, int] = {}
            for region in spec["regions"]:
                held |= await replica_chunk_bytes(service, region, spec["replicas"])
        return seconds, {"regions": _statuses(version), "reported_bytes": done, "chunk_bytes": held}

    return anyio.run(go)


def _child_deploy_setup(spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """The scale-set home: 1.0.0 in the source, replicated into each kind's 5-replica region."""

    async def go() -> tuple[float, dict[str, Any]]:
        async with await GalleryService.open(spec["home"]) as service:
            await _setup(service, spec["setup"])
            admin = service.bootstrap_admin
            regions: list[str] = spec["regions"]
            started = time.perf_counter()
            published: list[PublishResult] = []
            targets = [SOURCE, *(f"{region}={DEPLOY_REPLICAS}" for region in regions)]
            await service.create_version(
                admin,
                GALLERY,
                IMAGE,
                V1,
                source=spec["source"],
                options=VersionOptions(target_regions=targets),
                on_published=published.append,
            )
            version = await service.replicate_version(admin, GALLERY, IMAGE, V1, regions=regions)
            seconds = time.perf_counter() - started
            async with service.open_version(admin, version_id(), location=SOURCE) as reader:
                chunks = reader.manifest.chunks
                read_bytes = sum(chunk.stored_length for chunk in chunks if not chunk.is_zero)
                zero_chunks = sum(1 for chunk in chunks if chunk.is_zero)
        first = published[0]
        return seconds, {
            "regions": _statuses(version),
            "size": first.size,
            "chunks": first.chunks,
            "zero_chunks": zero_chunks,
            "stored_bytes": first.stored_bytes,
            "read_bytes_per_deployment": read_bytes,
        }

    return anyio.run(go)


def _throttle(region: str, bandwidth: float) -> StoreWrapper | None:
    """Each replica of ``region`` in a token bucket of its own at ``bandwidth`` (none if 0)."""
    if bandwidth <= 0:
        return None

    def wrap(name: str, number: int, store: Store) -> Store:
        return ThrottledStore(store, bandwidth) if name == region else store

    return wrap


def _spread(served: Sequence[int]) -> float | None:
    return max(served) / min(served) if served and min(served) > 0 else None


def _child_deploy(spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """``deploy_scale_set`` of ``vms`` deployments from ``region`` (read and discard); its makespan."""

    async def go() -> tuple[float, dict[str, Any]]:
        wrap = _throttle(spec["region"], float(spec["bandwidth"]))
        async with await GalleryService.open(spec["home"], wrap_store=wrap) as service:
            cpu = time.process_time()
            summary = await service.deploy_scale_set(
                service.bootstrap_admin,
                version_id(),
                spec["vms"],
                location=spec["region"],
                policy=Policy.LEAST_LOADED,
            )
            cpu = time.process_time() - cpu
        stats = summary.statistics
        served = {name: replica.bytes_served for name, replica in sorted(stats.replicas.items())}
        spread = _spread(list(served.values()))
        return summary.makespan, {
            "vms": summary.count,
            "succeeded": summary.succeeded,
            "errors": summary.errors,
            "failures": list(summary.failures[:5]),
            "makespan_s": round(summary.makespan, 4),
            "p50_s": None if summary.p50 is None else round(summary.p50, 4),
            "p99_s": None if summary.p99 is None else round(summary.p99, 4),
            "cpu_s": round(cpu, 3),
            "bytes_served": served,
            "spread": None if spread is None else round(spread, 4),
            "failovers": stats.failovers,
            "repairs": stats.repairs,
        }

    return anyio.run(go)


CHILD_OPERATIONS: Final = {
    "publish": _child_publish,
    "replicate": _child_replicate,
    "put": _child_put,
    "delete": _child_delete,
    "deploy_setup": _child_deploy_setup,
    "deploy": _child_deploy,
}
