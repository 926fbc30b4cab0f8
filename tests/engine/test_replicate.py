"""Replication: a version published once appears, verified, in every replica of every target
region; only missing chunks move; one region failing leaves the others complete.

The source replicas hold the blob as publish writes it by default, in packs. The tests whose
subject holds for both layouts run on each: every chunk an object of its own (``lone``), and
packs small enough to be many (:data:`SMALL_PACKS`). The tests that damage single chunk
objects keep chunks on their own; their counterparts for packs are in
test_packed_replication.py.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Final

import anyio
import pytest

from blobrep.core.names import BlobName
from blobrep.core.packs import DEFAULT_PACK_SIZE
from blobrep.engine.publish import PublishResult, publish
from blobrep.engine.replicate import RegionOutcome, RegionProgress, RegionTarget, replicate
from blobrep.engine.restore import restore
from blobrep.engine.verify import verify
from blobrep.errors import ManifestNotFoundError
from blobrep.storage import Fault, FaultyStore, LocalStore, Store
from tests.engine.helpers import (
    GALLERY,
    SMALL_CHUNKS,
    apply_edits,
    chunk_files,
    flip_byte,
    manifest_path,
    pack_files,
    same_file,
    tree,
    write_synthetic,
)
from tests.engine.pack_helpers import objects
from tests.engine.replication_helpers import (
    BLOB,
    REGIONS,
    CountingStore,
    Gauge,
    InterruptingStore,
    assert_committed_replicas_verify,
    held_chunks,
    region_stores,
    targets_of,
)

Layout = dict[str, list[LocalStore]]

#: Packs of 256 KiB: the 8 MiB image fills about twenty, so that faults, interruptions and the
#: bound on reads in flight fall among many packs (packs of 4 MiB would be two).
SMALL_PACKS: Final = 256 * 1024
#: Runs a test on each chunk stored alone, and on packs.
BOTH_LAYOUTS: Final = pytest.mark.parametrize("pack_size", [None, SMALL_PACKS], ids=["lone", "packs"])
#: Runs a test on chunks stored alone only: it damages single chunk objects.
LONE: Final = pytest.mark.parametrize("pack_size", [None], ids=["lone"])


@pytest.fixture
def pack_size() -> int | None:
    """How the source replicas store the blob's chunks: in packs, as publish does by default."""
    return DEFAULT_PACK_SIZE


@pytest.fixture
async def sources(
    tmp_path: Path, image_8m: Path, pack_size: int | None
) -> tuple[list[LocalStore], PublishResult]:
    """Two replicas of the source region holding the published blob."""
    stores = region_stores(tmp_path, "source")
    result = await publish(image_8m, stores, GALLERY, BLOB, chunking=SMALL_CHUNKS, pack_size=pack_size)
    return stores, result


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    """Three target regions of two empty replicas each."""
    return {region: region_stores(tmp_path, region) for region in REGIONS}


def everything(layout: Layout) -> list[LocalStore]:
    return [store for stores in layout.values() for store in stores]


def ok(outcome: RegionOutcome) -> bool:
    return outcome.error is None and outcome.completed_replicas == outcome.target_replicas == 2


# --- the happy path ---------------------------------------------------------------------------


@BOTH_LAYOUTS
async def test_every_replica_of_every_region_verifies_and_restores_byte_exact(
    sources: tuple[list[LocalStore], PublishResult],
    layout: Layout,
    image_8m: Path,
    out_dir: Path,
    pack_size: int | None,
) -> None:
    stores, published = sources
    if pack_size is None:
        moved = published.stored_bytes  # every chunk's frame, each an object of its own
    else:  # every pack whole: its chunks' frames and the table of contents after them
        packs = pack_files(stores[0])
        assert len(packs) == published.new_packs > 1 and not chunk_files(stores[0])
        moved = sum(path.stat().st_size for path in packs.values())

    outcomes = await replicate(stores, targets_of(layout), GALLERY, BLOB)

    assert [outcome.region for outcome in outcomes] == list(REGIONS)
    for outcome in outcomes:
        assert ok(outcome), outcome
        assert outcome.copied_chunks == 2 * published.distinct_chunks
        assert outcome.copied_bytes == 2 * moved
    for store in everything(layout):
        report = await verify(store, GALLERY, BLOB)
        assert report.ok and report.checked_chunks == published.distinct_chunks
        assert manifest_path(store).read_bytes() == manifest_path(stores[0]).read_bytes()
        assert objects(store) == objects(stores[0])
    target = layout["northeurope"][1]
    await restore(target, GALLERY, BLOB, out_dir / "restored.raw")
    assert same_file(image_8m, out_dir / "restored.raw")


async def test_a_second_run_copies_nothing_and_touches_no_file(
    sources: tuple[list[LocalStore], PublishResult], layout: Layout
) -> None:
    await replicate(sources[0], targets_of(layout), GALLERY, BLOB)
    before = {store.name: tree(store.root) for store in everything(layout)}

    again = await replicate(sources[0], targets_of(layout), GALLERY, BLOB)

    assert all(ok(outcome) for outcome in again)
    assert [(outcome.copied_chunks, outcome.copied_bytes) for outcome in again] == [(0, 0)] * 3
    assert {store.name: tree(store.root) for store in everything(layout)} == before


async def test_a_new_version_copies_only_its_new_chunks(
    sources: tuple[list[LocalStore], PublishResult],
    layout: Layout,
    image_8m: Path,
    tmp_path: Path,
    out_dir: Path,
) -> None:
    stores, published = sources
    await replicate(stores, targets_of(layout), GALLERY, BLOB)
    edited = tmp_path / "v2.raw"
    shutil.copyfile(image_8m, edited)
    apply_edits(edited, [(1_000_000, b"new bytes" * 50), (5_000_000, b"\x01" * 4096)])
    v2 = BlobName.parse("img/versions/1.0.1")
    second = await publish(edited, stores, GALLERY, v2, chunking=SMALL_CHUNKS)
    assert 0 < second.new_chunks < published.distinct_chunks // 4

    outcomes = await replicate(stores, targets_of(layout), GALLERY, v2)

    for outcome in outcomes:
        assert ok(outcome), outcome
        assert outcome.copied_chunks == 2 * second.new_chunks
    for store in everything(layout):
        assert (await verify(store, GALLERY, v2)).ok
        assert (await verify(store, GALLERY, BLOB)).ok
    await restore(layout["westus"][0], GALLERY, v2, out_dir / "v2.raw")
    assert same_file(edited, out_dir / "v2.raw")


@BOTH_LAYOUTS
async def test_each_chunk_is_read_once_with_at_most_copy_tasks_reads_in_flight(
    sources: tuple[list[LocalStore], PublishResult], layout: Layout, pack_size: int | None
) -> None:
    stores, published = sources
    gauge = Gauge()
    counted = [CountingStore(store, gauge) for store in stores]
    # Each object once: every chunk stored alone, or every pack (read whole).
    objects_read = published.distinct_chunks if pack_size is None else published.new_packs
    assert objects_read > 3

    outcomes = await replicate(counted, targets_of(layout), GALLERY, BLOB, copy_tasks=3)

    assert all(ok(outcome) for outcome in outcomes)
    assert gauge.total == objects_read  # one read feeds all six replicas
    assert 2 <= gauge.peak <= 3
    assert all(store.calls["get"] > 1 for store in counted), "the load is spread over both sources"


async def test_a_source_replica_without_the_manifest_is_passed_over(
    sources: tuple[list[LocalStore], PublishResult], layout: Layout, tmp_path: Path
) -> None:
    empty = region_stores(tmp_path, "elsewhere", 1)[0]

    outcomes = await replicate([empty, sources[0][1]], targets_of(layout), GALLERY, BLOB)

    assert all(ok(outcome) for outcome in outcomes)
    with pytest.raises(ManifestNotFoundError, match="no blob"):
        await replicate([empty], targets_of(layout), GALLERY, BLOB)


# --- failing regions ------------------------------------------------------------------------


def _put_fault(kind: str) -> Callable[[LocalStore, str], Store]:
    """A replica whose fourth put of a chunk or pack (under ``where``) and later ones fail."""
    return lambda store, where: FaultyStore(
        store, [Fault("put", "error" if kind == "error" else "full", where, 3)]
    )


@pytest.mark.parametrize(
    ("breaks", "reason"),
    [
        pytest.param(_put_fault("error"), "injected fault", id="store-raises"),
        pytest.param(_put_fault("full"), "out of space", id="disk-full"),
        pytest.param(
            lambda store, _: LocalStore(store.root, name=store.name, create=False),
            "does not exist",
            id="missing-directory",
        ),
    ],
)
@BOTH_LAYOUTS
async def test_a_failing_region_fails_alone_and_a_retry_copies_only_what_is_missing(
    sources: tuple[list[LocalStore], PublishResult],
    layout: Layout,
    breaks: Callable[[LocalStore, str], Store],
    reason: str,
    pack_size: int | None,
) -> None:
    stores, published = sources
    west = layout["westus"]
    where = "/chunks/" if pack_size is None else "/packs/"
    broken = [
        RegionTarget(region, [breaks(s, where) if s is west[1] else s for s in layout[region]])
        for region in layout
    ]

    outcomes = await replicate(stores, broken, GALLERY, BLOB)

    east, failed, north = outcomes
    assert ok(east) and ok(north)
    assert failed.error is not None and reason in failed.error and "westus/replica-2" in failed.error
    assert failed.completed_replicas < 2 and not manifest_path(west[1]).exists()
    assert failed.completed_replicas == await assert_committed_replicas_verify(west)
    missing = sum(published.distinct_chunks - len(held_chunks(store)) for store in west)
    assert missing > 0

    retried = await replicate(stores, targets_of(layout), GALLERY, BLOB)

    assert all(ok(outcome) for outcome in retried)
    assert [outcome.copied_chunks for outcome in retried] == [0, missing, 0]
    assert await assert_committed_replicas_verify(everything(layout)) == 6


async def test_a_sync_failure_fails_the_region_without_writing_its_manifest(
    sources: tuple[list[LocalStore], PublishResult], layout: Layout
) -> None:
    north = layout["northeurope"]
    flaky = FaultyStore(north[0], [Fault("sync", "error")])
    targets = [*targets_of(layout)[:2], RegionTarget("northeurope", [flaky, north[1]])]

    outcomes = await replicate(sources[0], targets, GALLERY, BLOB)

    assert ok(outcomes[0]) and ok(outcomes[1])
    assert outcomes[2].error is not None and "sync" in outcomes[2].error
    assert not manifest_path(north[0]).exists()


async def test_a_target_holding_other_content_under_the_name_fails_with_a_conflict(
    sources: tuple[list[LocalStore], PublishResult], layout: Layout, tmp_path: Path
) -> None:
    other = write_synthetic(tmp_path / "other.raw", 1024 * 1024, seed=77)
    north = layout["northeurope"]
    await publish(other, [north[0]], GALLERY, BLOB, chunking=SMALL_CHUNKS)
    theirs = manifest_path(north[0]).read_bytes()

    outcomes = await replicate(sources[0], targets_of(layout), GALLERY, BLOB)

    assert ok(outcomes[0]) and ok(outcomes[1])
    assert outcomes[2].error is not None and "already exists in northeurope/replica-1" in outcomes[2].error
    assert (outcomes[2].completed_replicas, outcomes[2].copied_chunks) == (0, 0)
    assert manifest_path(north[0]).read_bytes() == theirs
    assert not manifest_path(north[1]).exists()


# --- bad source copies ----------------------------------------------------------------------


@LONE
async def test_chunks_bad_in_one_source_replica_are_read_from_the_other(
    sources: tuple[list[LocalStore], PublishResult], layout: Layout
) -> None:
    stores, _ = sources
    digests = sorted(chunk_files(stores[0]))
    # The first source has only one good chunk, the one the second source lacks.
    chunk_files(stores[1])[digests[1]].unlink()
    all_corrupt = FaultyStore(stores[0], [Fault("get", "corrupt", d) for d in digests if d != digests[1]])

    outcomes = await replicate([all_corrupt, stores[1]], targets_of(layout), GALLERY, BLOB)

    assert all(ok(outcome) for outcome in outcomes)
    assert sum(fault.fired for fault in all_corrupt.faults) > 0
    assert await assert_committed_replicas_verify(everything(layout)) == 6


@LONE
async def test_a_chunk_bad_in_every_source_replica_fails_the_regions_naming_it(
    sources: tuple[list[LocalStore], PublishResult], layout: Layout
) -> None:
    stores, _ = sources
    digest = sorted(chunk_files(stores[0]))[3]
    flip_byte(chunk_files(stores[0])[digest])
    chunk_files(stores[1])[digest].unlink()

    outcomes = await replicate(stores, targets_of(layout), GALLERY, BLOB)

    for outcome in outcomes:
        assert outcome.error is not None and f"chunk {digest} has no good copy" in outcome.error
        assert "corrupt in replica source/replica-1" in outcome.error
        assert "missing in replica source/replica-2" in outcome.error
        assert outcome.completed_replicas == 0
    for store in everything(layout):
        assert not manifest_path(store).exists()
        assert digest not in held_chunks(store)


# --- progress and interruption --------------------------------------------------------------


@BOTH_LAYOUTS
async def test_progress_is_batched_per_region_and_ends_at_done_equal_total(
    sources: tuple[list[LocalStore], PublishResult], layout: Layout
) -> None:
    reports: list[RegionProgress] = []
    started = anyio.current_time()

    outcomes = await replicate(sources[0], targets_of(layout), GALLERY, BLOB, progress=reports.append)

    elapsed = anyio.current_time() - started
    for outcome in outcomes:
        mine = [report for report in reports if report.region == outcome.region]
        assert 2 <= len(mine) <= 2 + math.ceil(elapsed / 0.25)
        assert len(mine) < outcome.copied_chunks / 4, "not a report per chunk"
        assert [r.done_bytes for r in mine] == sorted(r.done_bytes for r in mine)
        assert {r.total_bytes for r in mine} == {outcome.copied_bytes}
        assert (mine[-1].done_bytes, mine[-1].completed_replicas, mine[-1].target_replicas) == (
            outcome.copied_bytes,
            2,
            2,
        )

    reports.clear()
    await replicate(sources[0], targets_of(layout), GALLERY, BLOB, progress=reports.append)
    assert sorted(reports, key=lambda r: r.region) == [RegionProgress(r, 0, 0, 2, 2) for r in sorted(REGIONS)]


@pytest.mark.parametrize(
    ("pack_size", "limit"),
    # Puts of objects in all: 6 x 85 chunks alone; 6 x about 20 packs.
    [pytest.param(None, limit, id=f"lone-{limit}") for limit in (1, 100, 300, 500)]
    + [pytest.param(SMALL_PACKS, limit, id=f"packs-{limit}") for limit in (1, 30, 70, 110)],
)
async def test_an_interrupted_replication_resumes_copying_only_what_is_missing(
    sources: tuple[list[LocalStore], PublishResult], layout: Layout, limit: int
) -> None:
    stores, published = sources
    puts = [0]
    with anyio.CancelScope() as scope:
        stopping = [
            RegionTarget(region, [InterruptingStore(s, scope, puts, limit) for s in layout[region]])
            for region in layout
        ]
        await replicate(stores, stopping, GALLERY, BLOB)
    assert scope.cancelled_caught
    # No manifest names a chunk that is not there.
    await assert_committed_replicas_verify(everything(layout))
    missing = {
        region: sum(published.distinct_chunks - len(held_chunks(s)) for s in layout[region])
        for region in layout
    }

    outcomes = await replicate(stores, targets_of(layout), GALLERY, BLOB)

    assert all(ok(outcome) for outcome in outcomes)
    assert {outcome.region: outcome.copied_chunks for outcome in outcomes} == missing
    assert await assert_committed_replicas_verify(everything(layout)) == 6
