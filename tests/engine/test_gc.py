"""Garbage collection: deletes exactly what no manifest references, keeps young chunks, never
deletes under a publish, stops before deleting anything when a manifest is unreadable, removes
what killed processes left behind, and can free a replica that is full.

The versions here are published with each chunk stored as an object of its own (``pack_size``
None), since most tests count chunk files; collecting packs is tested in test_packed_gc.py.
The tests whose subject is the same with packs and not tested there (races with a publish,
leases, busy and full replicas, other galleries) run on both layouts, the packs small enough
(:data:`SMALL_PACKS`) that some of v1's packs hold only chunks v2 does not use.
"""

from __future__ import annotations

import builtins
import dataclasses
import os
import random
import shutil
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Final

import anyio
import pytest

from blobrep.core.keys import chunk_key, manifest_key
from blobrep.core.manifest import ChunkRef, Manifest
from blobrep.core.names import BlobName
from blobrep.engine.gc import GcReport, collect_garbage, gc_gallery
from blobrep.engine.leases import hold_lease, leases_prefix
from blobrep.engine.manifests import delete_manifest, read_manifest
from blobrep.engine.publish import PublishResult, publish
from blobrep.engine.verify import verify
from blobrep.errors import BusyError, InvalidParameterError, ManifestError, StorageFullError
from blobrep.service import rewrite_runs
from blobrep.storage.base import ObjectInfo, Store
from blobrep.storage.faulty import Fault, FaultyStore
from blobrep.storage.local import LocalStore
from blobrep.storage.processes import this_process
from tests.engine.helpers import (
    GALLERY,
    SMALL_CHUNKS,
    apply_edits,
    chunk_files,
    manifest_path,
    object_files,
    tree,
)
from tests.engine.test_lease_holders import finished_pid, holder_process, kill_hard, plant_owned_lease
from tests.engine.test_leases import AgedStore, GatedStore, lease_keys, plant_lease

V1: Final = BlobName.parse("img/versions/1.0.0")
V2: Final = BlobName.parse("img/versions/2.0.0")
V3: Final = BlobName.parse("img/versions/3.0.0")
HOUR: Final = 3600.0
#: Packs of 64 KiB, a chunk or two each: the edits of v2 leave some packs of v1 that v2 does
#: not name (with 4 MiB packs, v2 names every pack of v1 and a deleted v1 leaves no garbage).
SMALL_PACKS: Final = 64 * 1024
#: Runs a test on each chunk stored alone, and on packs.
BOTH_LAYOUTS: Final = pytest.mark.parametrize("pack_size", [None, SMALL_PACKS], ids=["lone", "packs"])


@dataclass(frozen=True)
class Versions:
    """Two published versions sharing most chunks; ``v1`` and ``v2`` map digest -> chunk;
    ``v1_manifest`` and ``v2_manifest`` say which objects (chunks alone, packs) hold them."""

    v1_image: Path
    v1: dict[str, ChunkRef]
    v2: dict[str, ChunkRef]
    v1_manifest: Manifest
    v2_manifest: Manifest

    @property
    def only_v1(self) -> set[str]:
        return set(self.v1) - set(self.v2)

    @property
    def v1_objects(self) -> set[str]:
        return set(self.v1_manifest.objects(GALLERY))

    @property
    def v2_objects(self) -> set[str]:
        return set(self.v2_manifest.objects(GALLERY))

    @property
    def only_v1_objects(self) -> set[str]:
        """Keys of the objects v1 names and v2 does not: what gc deletes once v1 is deleted."""
        return self.v1_objects - self.v2_objects


def names(keys: set[str]) -> set[str]:
    """The file names of object keys (a chunk's or a pack's digest), as object_files has them."""
    return {key.rpartition("/")[2] for key in keys}


def packs_among(keys: set[str]) -> int:
    return sum(1 for key in keys if "/packs/" in key)


async def publish_to(
    source: Path, store: Store, blob: BlobName, gallery: str = GALLERY, *, pack_size: int | None
) -> PublishResult:
    return await publish(source, [store], gallery, blob, chunking=SMALL_CHUNKS, pack_size=pack_size)


@pytest.fixture
def pack_size() -> int | None:
    """How the versions store their chunks: each alone, unless a test runs on both layouts."""
    return None


@pytest.fixture
async def versions(store: LocalStore, image_8m: Path, tmp_path: Path, pack_size: int | None) -> Versions:
    edited = tmp_path / "image-v2.raw"
    shutil.copyfile(image_8m, edited)
    apply_edits(edited, rewrite_runs(edited.stat().st_size, fraction=0.02, runs=6, seed=5))
    await publish_to(image_8m, store, V1, pack_size=pack_size)
    await publish_to(edited, store, V2, pack_size=pack_size)
    manifests = await read_manifest(store, GALLERY, V1), await read_manifest(store, GALLERY, V2)
    found = Versions(image_8m, manifests[0].stored_digests(), manifests[1].stored_digests(), *manifests)
    assert found.only_v1 and set(found.v1) & set(found.v2), "the versions must share some chunks, not all"
    assert found.only_v1_objects, "and v1 must name objects v2 does not"
    every = found.v1_objects | found.v2_objects
    if pack_size is None:  # an object per chunk: the counts of objects below are of chunks
        assert packs_among(every) == 0
        assert (names(found.v1_objects), names(found.v2_objects)) == (set(found.v1), set(found.v2))
    else:  # every chunk of either version is new in a pack
        assert packs_among(every) == len(every)
    return found


# --- what is deleted ------------------------------------------------------------------


async def test_gc_deletes_exactly_the_chunks_only_a_deleted_version_used(
    store: LocalStore, versions: Versions
) -> None:
    assert await delete_manifest(store, GALLERY, V1)

    report = await collect_garbage(store, GALLERY, grace=0)

    assert set(chunk_files(store)) == set(versions.v2)
    assert report == GcReport(
        replica="replica-1",
        gallery=GALLERY,
        manifests=1,
        chunks_seen=len(set(versions.v1) | set(versions.v2)),
        referenced_chunks=len(versions.v2),
        deleted_chunks=len(versions.only_v1),
        deleted_bytes=sum(versions.v1[digest].stored_length for digest in versions.only_v1),
        kept_young=0,
        stale_leases_removed=0,
        dry_run=False,
    )
    assert (await verify(store, GALLERY, V2)).ok
    assert await lease_keys(store) == []


async def test_gc_with_every_version_present_deletes_nothing(store: LocalStore, versions: Versions) -> None:
    before = tree(store.root)

    report = await collect_garbage(store, GALLERY, grace=0)

    assert (report.manifests, report.deleted_chunks, report.kept_young) == (2, 0, 0)
    assert report.referenced_chunks == report.chunks_seen == len(set(versions.v1) | set(versions.v2))
    assert {key: value for key, value in tree(store.root).items() if "/leases/" not in key} == before


@BOTH_LAYOUTS
async def test_gc_leaves_other_galleries_and_foreign_keys_alone(
    store: LocalStore, versions: Versions, image_8m: Path, pack_size: int | None
) -> None:
    await publish_to(image_8m, store, V1, gallery="other", pack_size=pack_size)
    stray = f"galleries/{GALLERY}/chunks/notes.txt"
    await store.put(stray, b"not a chunk")
    await delete_manifest(store, GALLERY, V1)
    await delete_manifest(store, GALLERY, V2)

    report = await collect_garbage(store, GALLERY, grace=0)

    # Every object either version named: its chunks (lone) or its packs.
    every = versions.v1_objects | versions.v2_objects
    assert (report.deleted_chunks, report.deleted_packs) == (len(every), packs_among(every))
    assert object_files(store) == {"notes.txt": store.root / stray}
    # The same image in another gallery: the same chunks, in the same packs.
    assert set(object_files(store, "other")) == names(versions.v1_objects)
    assert (await verify(store, "other", V1)).ok


async def test_grace_keeps_unreferenced_chunks_written_recently(
    store: LocalStore, versions: Versions
) -> None:
    await delete_manifest(store, GALLERY, V1)
    young = sorted(versions.only_v1)[0]
    # Every chunk but one looks two hours old.
    aged = AgedStore(store, 2 * HOUR, ["/chunks/"])
    aged.aged = [key for key in [chunk_key(GALLERY, digest) for digest in versions.v1] if young not in key]

    kept = await collect_garbage(store, GALLERY, grace=3 * HOUR)
    assert (kept.deleted_chunks, kept.kept_young) == (0, len(versions.only_v1))
    assert set(versions.only_v1) <= set(chunk_files(store))

    report = await collect_garbage(aged, GALLERY, grace=HOUR)
    assert (report.deleted_chunks, report.kept_young) == (len(versions.only_v1) - 1, 1)
    assert set(chunk_files(store)) == set(versions.v2) | {young}


async def test_a_dry_run_deletes_nothing_and_reports_what_a_real_run_does(
    store: LocalStore, versions: Versions
) -> None:
    await delete_manifest(store, GALLERY, V1)
    stale = await plant_lease(store, exclusive=False, holder="a crashed publish")
    aged = AgedStore(store, HOUR, [stale])
    before = tree(store.root)

    dry = await collect_garbage(aged, GALLERY, grace=0, dry_run=True)

    assert tree(store.root) == before
    assert dry.dry_run and dry.deleted_chunks == len(versions.only_v1) and dry.stale_leases_removed == 1
    done = await collect_garbage(aged, GALLERY, grace=0)
    assert dataclasses.replace(dry, dry_run=False) == done
    assert set(chunk_files(store)) == set(versions.v2)
    assert await lease_keys(store) == []


@BOTH_LAYOUTS
async def test_progress_counts_every_chunk(store: LocalStore, versions: Versions) -> None:
    calls: list[tuple[int, int]] = []

    report = await collect_garbage(
        store, GALLERY, grace=0, progress=lambda done, total: calls.append((done, total))
    )

    assert calls and calls[-1] == (report.chunks_seen, report.chunks_seen)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


async def test_gc_of_an_empty_replica_reports_nothing_to_do(store: LocalStore) -> None:
    report = await collect_garbage(store, GALLERY, grace=0)

    assert report == GcReport("replica-1", GALLERY)
    assert report.ok


async def test_negative_grace_is_refused(store: LocalStore) -> None:
    with pytest.raises(InvalidParameterError, match="grace"):
        await collect_garbage(store, GALLERY, grace=-1)
    with pytest.raises(InvalidParameterError, match="grace"):
        await gc_gallery([store], GALLERY, grace=float("nan"))


# --- what stops it ---------------------------------------------------------------------


@BOTH_LAYOUTS
async def test_a_corrupt_manifest_stops_gc_before_it_deletes_anything(
    store: LocalStore, versions: Versions
) -> None:
    await delete_manifest(store, GALLERY, V1)
    manifest_path(store, str(V2)).write_bytes(b'{"format": "blobrep.manifest/1", "size": "huge"}')
    before = tree(store.root)

    with pytest.raises(ManifestError) as raised:
        await collect_garbage(store, GALLERY, grace=0)

    message = str(raised.value)
    assert manifest_key(GALLERY, V2) in message and "replica-1" in message
    assert "before deleting anything" in message
    assert tree(store.root) == before
    assert await lease_keys(store) == []


@BOTH_LAYOUTS
async def test_gc_refuses_a_replica_while_a_publish_holds_a_lease(
    store: LocalStore, versions: Versions
) -> None:
    await delete_manifest(store, GALLERY, V1)
    before = tree(store.root)

    async with hold_lease(store, GALLERY, exclusive=False, holder="publish of img/versions/9.0.0") as lease:
        with pytest.raises(BusyError, match=r"replica-1 is busy.*publish of img/versions/9\.0\.0"):
            await collect_garbage(store, GALLERY, grace=0)
        assert await lease_keys(store) == [lease.key]

    assert {key: value for key, value in tree(store.root).items() if "/leases/" not in key} == before


@BOTH_LAYOUTS
async def test_gc_gallery_reports_a_busy_replica_and_collects_the_others(
    store: LocalStore, tmp_path: Path, versions: Versions, pack_size: int | None
) -> None:
    other = LocalStore(tmp_path / "replica-2", name="replica-2", create=True)
    await publish_to(versions.v1_image, other, V1, pack_size=pack_size)
    await delete_manifest(other, GALLERY, V1)
    await delete_manifest(store, GALLERY, V1)

    async with hold_lease(store, GALLERY, exclusive=False, holder="replication of img/versions/2.0.0"):
        reports = await gc_gallery([store, other], GALLERY, grace=0)

    assert [report.replica for report in reports] == ["replica-1", "replica-2"]
    busy, collected = reports
    assert busy.error is not None and "replication of img/versions/2.0.0" in busy.error
    assert busy.deleted_chunks == 0 and not busy.ok
    # replica-2 held v1 alone: every object of v1 (each chunk, or each pack) goes.
    assert collected.ok and collected.deleted_chunks == len(versions.v1_objects)
    assert collected.deleted_packs == packs_among(versions.v1_objects)
    assert object_files(other) == {}
    assert names(versions.only_v1_objects) <= set(object_files(store))


@BOTH_LAYOUTS
async def test_gc_removes_the_leases_of_crashed_holders(store: LocalStore, versions: Versions) -> None:
    stale = await plant_lease(store, exclusive=False, holder="a crashed publish")
    aged = AgedStore(store, HOUR, [stale])

    report = await collect_garbage(aged, GALLERY, grace=0)

    assert report.stale_leases_removed == 1
    assert await lease_keys(store) == []


@BOTH_LAYOUTS
async def test_a_publish_waits_while_gc_holds_the_replica(
    store: LocalStore, versions: Versions, pack_size: int | None
) -> None:
    await delete_manifest(store, GALLERY, V1)
    published: list[PublishResult] = []

    async def publish_v3() -> None:
        published.append(await publish_to(versions.v1_image, store, V3, pack_size=pack_size))

    async with (
        anyio.create_task_group() as group,
        hold_lease(store, GALLERY, exclusive=True, holder="garbage collection of gallery1"),
    ):
        group.start_soon(publish_v3)
        await anyio.sleep(0.3)
        assert published == [] and not manifest_path(store, str(V3)).exists()
    # Released before the group waits: the publish gets its lease on its next try.
    assert published[0].committed
    assert (await verify(store, GALLERY, V3)).ok


@BOTH_LAYOUTS
async def test_a_publish_cancelled_while_waiting_for_gc_leaves_nothing(
    store: LocalStore, versions: Versions, pack_size: int | None
) -> None:
    async with hold_lease(store, GALLERY, exclusive=True, holder="garbage collection of gallery1") as lease:
        before = tree(store.root)
        with anyio.move_on_after(0.3) as scope:
            await publish_to(versions.v1_image, store, V3, pack_size=pack_size)
        assert scope.cancelled_caught
        assert tree(store.root) == before
        assert await lease_keys(store) == [lease.key]


# --- the race --------------------------------------------------------------------------


@BOTH_LAYOUTS
async def test_gc_cannot_delete_chunks_a_paused_publish_found_present(
    store: LocalStore, versions: Versions, pack_size: int | None
) -> None:
    """The publish finds v1's chunks present and skips them; gc, seeing no manifest name them,
    would delete them before the publish commits a manifest that names them."""
    await delete_manifest(store, GALLERY, V1)
    if pack_size is not None:
        # A publish finds a packed chunk through a manifest placing it or the table of a
        # pack no manifest names: with v2 gone too, every pack of v1 is such a pack (v2
        # names some of them for its own chunks), and garbage.
        await delete_manifest(store, GALLERY, V2)
    # Paused once it found them: a chunk looked up alone, or the packs it will reuse checked
    # present in the replica.
    gated = GatedStore(store, stat_many_of="/chunks/" if pack_size is None else "/packs/")
    published: list[PublishResult] = []
    refused: list[str] = []

    async def publish_v3() -> None:
        published.append(await publish_to(versions.v1_image, gated, V3, pack_size=pack_size))

    async with anyio.create_task_group() as group:
        group.start_soon(publish_v3)
        await gated.reached.wait()  # the publish is inside its chunk lookup
        try:
            await collect_garbage(store, GALLERY, grace=0)
        except BusyError as exc:
            refused.append(str(exc))
        reports = await gc_gallery([store], GALLERY, grace=0)
        gated.resume.set()

    assert len(refused) == 1 and "publish of img/versions/3.0.0" in refused[0]
    assert reports[0].error is not None and "publish of img/versions/3.0.0" in reports[0].error
    assert published[0].new_chunks == 0, "the publish reused every chunk it found"
    report = await verify(store, GALLERY, V3)
    assert report.ok and report.checked_chunks == len(versions.v1)


@BOTH_LAYOUTS
async def test_a_publish_that_starts_during_gc_waits_and_rewrites_what_gc_deleted(
    store: LocalStore, versions: Versions, pack_size: int | None
) -> None:
    await delete_manifest(store, GALLERY, V1)
    await delete_manifest(store, GALLERY, V2)
    gated = GatedStore(store, list_of="/chunks/")
    publisher = GatedStore(store, put_of=".shared")
    published: list[PublishResult] = []
    collected: list[GcReport] = []

    async def collect() -> None:
        collected.append(await collect_garbage(gated, GALLERY, grace=0))

    async def publish_v3() -> None:
        published.append(await publish_to(versions.v1_image, publisher, V3, pack_size=pack_size))

    async with anyio.create_task_group() as group:
        group.start_soon(collect)
        await gated.reached.wait()  # gc holds its lease and is about to sweep
        group.start_soon(publish_v3)
        with anyio.fail_after(10):
            await publisher.put_seen.wait()  # the publish has tried for its lease
        await anyio.sleep(0.1)
        assert published == [] and not any("/chunks/" in key or "/packs/" in key for key in publisher.puts)
        gated.resume.set()

    every = versions.v1_objects | versions.v2_objects
    assert (collected[0].deleted_chunks, collected[0].deleted_packs) == (len(every), packs_among(every))
    assert published[0].new_chunks == len(versions.v1), "every chunk gc deleted was written again"
    assert (await verify(store, GALLERY, V3)).ok


@BOTH_LAYOUTS
@pytest.mark.parametrize("seed", range(6))
async def test_gc_and_publish_racing_in_any_order_leave_a_readable_version(
    tmp_path: Path, image_8m: Path, seed: int, pack_size: int | None
) -> None:
    store = LocalStore(tmp_path / f"replica-{seed}", name="replica", create=True)
    await publish_to(image_8m, store, V1, pack_size=pack_size)
    await delete_manifest(store, GALLERY, V1)
    rng = random.Random(seed)
    outcomes: list[str] = []

    async def collect() -> None:
        await anyio.sleep(rng.uniform(0, 0.05))
        try:
            report = await collect_garbage(store, GALLERY, grace=0)
        except BusyError:
            outcomes.append("refused")
        else:
            outcomes.append(f"deleted {report.deleted_chunks}")

    async with anyio.create_task_group() as group:
        group.start_soon(collect)
        group.start_soon(partial(publish_to, image_8m, store, V2, pack_size=pack_size))

    assert len(outcomes) == 1
    report = await verify(store, GALLERY, V2)
    assert report.ok, f"gc {outcomes[0]}: {report.problems}"
    assert await lease_keys(store) == []
    assert [key async for key in store.list(leases_prefix(GALLERY))] == []


# --- what killed processes leave behind -------------------------------------------------


@BOTH_LAYOUTS
async def test_gc_is_not_blocked_by_a_killed_publish_and_removes_its_lease(
    store: LocalStore, versions: Versions
) -> None:
    await delete_manifest(store, GALLERY, V1)
    async with holder_process(store, exclusive=False, holder="publish of img/versions/9.0.0") as child:
        await kill_hard(child)

    with anyio.fail_after(5):  # its lease is fresh (TTL 600 s); only its dead holder lets gc in
        report = await collect_garbage(store, GALLERY, grace=0)

    assert report.stale_leases_removed == 1
    assert report.deleted_chunks == len(versions.only_v1_objects)
    assert report.deleted_packs == packs_among(versions.only_v1_objects)
    assert await lease_keys(store) == []


def plant_temporary(store: LocalStore, key: str, size: int, age: float) -> str:
    """A temporary file as a put killed midway leaves it beside ``key``, last written ``age`` ago."""
    path = store.root / f"{key}~tmp~0123456789ab"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"t" * size)
    then = time.time() - age
    os.utime(path, (then, then))
    return str(path.relative_to(store.root))


@BOTH_LAYOUTS
async def test_gc_removes_old_temporaries_of_the_gallery_and_reports_them(
    store: LocalStore, versions: Versions
) -> None:
    digest = sorted(versions.v2)[0]
    old_chunk = plant_temporary(store, chunk_key(GALLERY, "0" * 32), 1000, 2 * HOUR)
    old_manifest = plant_temporary(store, manifest_key(GALLERY, V3), 300, 2 * HOUR)
    young = plant_temporary(store, chunk_key(GALLERY, digest), 50, 0)
    elsewhere = plant_temporary(store, chunk_key("other", "0" * 32), 70, 2 * HOUR)
    before = tree(store.root)

    dry = await collect_garbage(store, GALLERY, grace=HOUR, dry_run=True)

    assert (dry.temporaries_removed, dry.temporary_bytes) == (2, 1300)
    assert tree(store.root) == before
    done = await collect_garbage(store, GALLERY, grace=HOUR)
    assert dataclasses.replace(dry, dry_run=False) == done
    assert not (store.root / old_chunk).exists() and not (store.root / old_manifest).exists()
    assert (store.root / young).exists(), "a younger temporary may belong to a put still running"
    assert (store.root / elsewhere).exists(), "other galleries are not collected"
    # Lease puts of waiting acquirers go on under gc's lease: a fresh lease temporary stays even
    # with no grace. No chunk writer is live under it, so a chunk temporary goes.
    lease = plant_temporary(store, f"galleries/{GALLERY}/leases/{'1' * 32}.shared", 40, 0)
    assert (await collect_garbage(store, GALLERY, grace=0)).temporaries_removed == 1
    assert not (store.root / young).exists()
    assert (store.root / lease).exists()
    assert (await verify(store, GALLERY, V2)).ok


# --- a full replica ----------------------------------------------------------------------


class FullStore(FaultyStore):
    """A replica with no space left: every put fails with StorageFullError until a delete frees
    room (a chunk or a pack, or a temporary removed by a sweep). Records what was deleted while
    full."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner, [Fault("put", "full")])
        self.freed_while_full: list[str] = []

    def _freed(self, key: str) -> None:
        if self.faults:
            self.freed_while_full.append(key)
            self.faults.clear()

    async def delete(self, key: str) -> bool:
        full = bool(self.faults)
        deleted = await super().delete(key)
        if deleted and full and ("/chunks/" in key or "/packs/" in key):
            self._freed(key)
        return deleted

    async def sweep_temporaries(
        self, prefix: str = "", *, older_than: float, dry_run: bool = False
    ) -> builtins.list[ObjectInfo]:
        swept = await super().sweep_temporaries(prefix, older_than=older_than, dry_run=dry_run)
        if swept and not dry_run:
            self._freed(swept[0].key)
        return swept


async def test_gc_frees_a_full_replica_deleting_one_chunk_before_it_can_take_its_lease(
    store: LocalStore, versions: Versions
) -> None:
    await delete_manifest(store, GALLERY, V1)
    # The gc that was killed on its way to free this replica left its exclusive lease behind.
    me = await anyio.to_thread.run_sync(this_process)
    killed = dataclasses.replace(me, pid=await finished_pid(), started=None)
    await plant_owned_lease(store, killed, holder="garbage collection of gallery1", exclusive=True)
    full = FullStore(store)

    report = await collect_garbage(full, GALLERY, grace=0)

    [first] = full.freed_while_full
    assert first in {chunk_key(GALLERY, digest) for digest in versions.only_v1}
    assert report.deleted_chunks == len(versions.only_v1)
    assert report.deleted_bytes == sum(versions.v1[digest].stored_length for digest in versions.only_v1)
    assert report.chunks_seen == len(set(versions.v1) | set(versions.v2))
    assert report.stale_leases_removed == 1
    assert set(chunk_files(store)) == set(versions.v2)
    assert (await verify(store, GALLERY, V2)).ok
    assert await lease_keys(store) == []


@BOTH_LAYOUTS
async def test_gc_on_a_full_replica_frees_old_temporaries_before_any_chunk(
    store: LocalStore, versions: Versions
) -> None:
    await delete_manifest(store, GALLERY, V1)
    temporary = plant_temporary(store, chunk_key(GALLERY, "0" * 32), 4096, 2 * HOUR)
    full = FullStore(store)

    report = await collect_garbage(full, GALLERY, grace=0)

    assert full.freed_while_full == [temporary], "no chunk was deleted without the lease"
    assert (report.temporaries_removed, report.temporary_bytes) == (1, 4096)
    only_v1 = versions.only_v1_objects
    assert (report.deleted_chunks, report.deleted_packs) == (len(only_v1), packs_among(only_v1))
    assert set(object_files(store)) == names(versions.v2_objects)
    assert await lease_keys(store) == []


@BOTH_LAYOUTS
async def test_gc_on_a_full_replica_gives_up_while_a_writer_holds_a_lease(
    store: LocalStore, versions: Versions
) -> None:
    await delete_manifest(store, GALLERY, V1)
    plant_temporary(store, chunk_key(GALLERY, "0" * 32), 4096, 2 * HOUR)
    full = FullStore(store)
    before = tree(store.root)

    async with hold_lease(store, GALLERY, exclusive=False, holder="publish of img/versions/9.0.0") as lease:
        with pytest.raises(
            BusyError, match=r"replica-1 is full and busy.*publish of img/versions/9\.0\.0.*retry"
        ):
            await collect_garbage(full, GALLERY, grace=0)
        assert await lease_keys(store) == [lease.key]

    assert full.freed_while_full == []
    assert {key: value for key, value in tree(store.root).items() if "/leases/" not in key} == before


@BOTH_LAYOUTS
async def test_gc_on_a_full_replica_with_nothing_old_enough_deletes_nothing_and_says_so(
    store: LocalStore, versions: Versions, pack_size: int | None
) -> None:
    await delete_manifest(store, GALLERY, V1)
    full = FullStore(store)
    before = tree(store.root)

    with pytest.raises(StorageFullError, match=r"replica-1 is full.*found nothing it may delete") as raised:
        await collect_garbage(full, GALLERY, grace=HOUR)
    # v1's chunks (lone), or v1's packs that v2 does not name.
    young = len(versions.only_v1_objects)
    if pack_size is None:
        assert f"{young} unreferenced chunks are younger than the grace" in str(raised.value)
    else:
        said = f"0 unreferenced chunks and {young} unreferenced packs are younger than the grace"
        assert said in str(raised.value)
    with pytest.raises(StorageFullError, match="a dry run deletes nothing"):
        await collect_garbage(full, GALLERY, grace=0, dry_run=True)

    assert tree(store.root) == before
