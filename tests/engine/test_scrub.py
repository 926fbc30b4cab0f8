"""Scrub finds every missing or corrupt chunk and damaged manifest in a region's replicas,
changes nothing unless asked to repair, and repairs from healthy siblings so that a second
scrub is clean; what no replica can supply is reported as unrepairable."""

from __future__ import annotations

from pathlib import Path

import pytest

from blobrep.core.keys import manifest_key
from blobrep.engine.scrub import ReplicaSummary, ScrubReport, scrub_region
from blobrep.engine.verify import verify
from blobrep.errors import InvalidParameterError
from blobrep.storage import Fault, FaultyStore, LocalStore, Store
from tests.engine.helpers import GALLERY, tree
from tests.engine.scrub_helpers import (
    V1,
    V2,
    LeaseWatchingStore,
    Region,
    build_region,
    chunk_path,
    corrupt,
    manifest_file,
    remove,
    truncate,
)


@pytest.fixture
async def region(tmp_path: Path, image_8m: Path) -> Region:
    built = await build_region(tmp_path, image_8m)
    assert built.shared and built.only_v1 and built.only_v2, "the versions must share some chunks, not all"
    return built


def found(report: ScrubReport) -> set[tuple[str, str, str]]:
    """(replica, kind, digest or manifest key) of every problem."""
    return {(problem.replica, problem.kind, problem.key_or_digest) for problem in report.problems}


async def assert_every_replica_verifies(stores: list[LocalStore]) -> None:
    for store in stores:
        for blob in (V1, V2):
            report = await verify(store, GALLERY, blob)
            assert report.ok, report.problems


def damage(region: Region) -> set[tuple[str, str, str]]:
    """Corrupt two chunks in replica 1 and delete two in replica 2; one chunk is hit in both.

    Returns the problems a scrub must report.
    """
    one, two, _ = region.stores
    both, only_v2, only_v1 = region.shared[0], region.only_v2[0], region.only_v1[0]
    corrupt(one, both, only_v2)
    remove(two, both, only_v1)
    return {
        ("eastus/replica-1", "corrupt", both),
        ("eastus/replica-1", "corrupt", only_v2),
        ("eastus/replica-2", "missing", both),
        ("eastus/replica-2", "missing", only_v1),
    }


async def test_a_healthy_region_scrubs_ok_and_checks_each_shared_chunk_once(region: Region) -> None:
    chunks = region.chunks
    before = [tree(store.root) for store in region.stores]

    report = await scrub_region(region.stores, GALLERY, repair=True)

    assert report.ok
    assert (report.problems, report.repaired, report.unrepairable) == ((), 0, 0)
    assert len(chunks) < len(region.v1) + len(region.v2)
    checked_bytes = sum(chunk.length for chunk in chunks.values())
    assert report.replicas == tuple(
        ReplicaSummary(store.name, 2, len(chunks), checked_bytes, 0) for store in region.stores
    )
    # Nothing to repair: nothing was written, not even a lease.
    assert [tree(store.root) for store in region.stores] == before


async def test_scrub_reports_exactly_the_damage_and_changes_nothing(region: Region) -> None:
    expected = damage(region)
    before = [tree(store.root) for store in region.stores]

    report = await scrub_region(region.stores, GALLERY)

    assert not report.ok
    assert found(report) == expected
    assert len(report.problems) == len(expected)  # a chunk both versions share is reported once
    assert not any(problem.repaired for problem in report.problems)
    assert (report.repaired, report.unrepairable) == (0, 0)
    assert [summary.problems for summary in report.replicas] == [2, 2, 0]
    assert all(summary.chunks_checked == len(region.chunks) for summary in report.replicas)
    for problem in report.problems:
        if problem.kind == "missing":
            assert f"chunk {problem.key_or_digest} is missing in replica {problem.replica}" in problem.detail
    assert [tree(store.root) for store in region.stores] == before


async def test_repair_fixes_the_damage_from_healthy_siblings_and_a_second_scrub_is_ok(
    region: Region,
) -> None:
    expected = damage(region)
    one, two, three = region.stores

    report = await scrub_region(region.stores, GALLERY, repair=True)

    assert report.ok
    assert found(report) == expected
    assert all(problem.repaired for problem in report.problems)
    assert (report.repaired, report.unrepairable) == (4, 0)
    # The chunk bad in replicas 1 and 2 could only come from replica 3.
    both = region.shared[0]
    for store in (one, two):
        assert chunk_path(store, both).read_bytes() == chunk_path(three, both).read_bytes()
    assert all(
        "eastus/replica-3" in problem.detail for problem in report.problems if problem.key_or_digest == both
    )
    again = await scrub_region(region.stores, GALLERY)
    assert again.ok
    assert again.problems == ()
    await assert_every_replica_verifies(region.stores)


async def test_a_chunk_bad_in_every_replica_is_reported_unrepairable(region: Region) -> None:
    one, two, three = region.stores
    lost, fine = region.shared[0], region.shared[1]
    corrupt(one, lost)
    remove(two, lost)
    remove(three, lost)
    corrupt(two, fine)

    report = await scrub_region(region.stores, GALLERY, repair=True)

    assert not report.ok
    assert (report.repaired, report.unrepairable) == (1, 3)
    unrepaired = [problem for problem in report.problems if not problem.repaired]
    assert {(problem.replica, problem.key_or_digest) for problem in unrepaired} == {
        (store.name, lost) for store in region.stores
    }
    for problem in unrepaired:
        assert "not repaired: no healthy copy in any replica of the region" in problem.detail
        assert "source region" in problem.detail
    # The repairable chunk was still repaired, and the lost one is still reported next time.
    again = await scrub_region(region.stores, GALLERY)
    assert found(again) == {
        ("eastus/replica-1", "corrupt", lost),
        ("eastus/replica-2", "missing", lost),
        ("eastus/replica-3", "missing", lost),
    }


async def test_a_truncated_manifest_is_reported_and_repaired_from_a_sibling(region: Region) -> None:
    one, two, _ = region.stores
    damaged = manifest_file(two, V1)
    truncate(damaged)
    torn = damaged.read_bytes()
    key = manifest_key(GALLERY, V1)

    report = await scrub_region(region.stores, GALLERY)

    assert found(report) == {("eastus/replica-2", "manifest", key)}
    assert "does not parse" in report.problems[0].detail
    assert report.replicas[1].manifests == 2
    assert damaged.read_bytes() == torn

    repaired = await scrub_region(region.stores, GALLERY, repair=True)

    assert repaired.ok
    assert (repaired.repaired, repaired.unrepairable) == (1, 0)
    assert damaged.read_bytes() == manifest_file(one, V1).read_bytes()
    assert (await scrub_region(region.stores, GALLERY)).problems == ()
    await assert_every_replica_verifies(region.stores)


async def test_chunks_named_only_by_a_damaged_manifest_are_checked_and_repaired_first(
    region: Region,
) -> None:
    _, two, _ = region.stores
    truncate(manifest_file(two, V1))
    only_v1 = region.only_v1[0]
    remove(two, only_v1)

    report = await scrub_region(region.stores, GALLERY)

    # The replica promised that chunk: the siblings' manifest says it belongs there.
    assert found(report) == {
        ("eastus/replica-2", "manifest", manifest_key(GALLERY, V1)),
        ("eastus/replica-2", "missing", only_v1),
    }

    repaired = await scrub_region(region.stores, GALLERY, repair=True)

    assert repaired.ok
    assert repaired.repaired == 2
    assert (await scrub_region(region.stores, GALLERY)).ok
    await assert_every_replica_verifies(region.stores)


async def test_a_manifest_damaged_in_every_replica_is_unrepairable(region: Region) -> None:
    for store in region.stores:
        truncate(manifest_file(store, V1))

    report = await scrub_region(region.stores, GALLERY, repair=True)

    assert found(report) == {(store.name, "manifest", manifest_key(GALLERY, V1)) for store in region.stores}
    assert (report.repaired, report.unrepairable) == (0, 3)
    for problem in report.problems:
        assert "no other replica of the region holds a manifest for this blob that parses" in problem.detail


async def test_a_version_missing_from_one_replica_is_not_a_scrub_problem(region: Region) -> None:
    _, _, three = region.stores
    manifest_file(three, V2).unlink()

    report = await scrub_region(region.stores, GALLERY)

    assert report.ok
    assert report.problems == ()
    assert (report.replicas[2].manifests, report.replicas[2].chunks_checked) == (1, len(region.v1))


async def test_progress_reaches_the_total_bytes_checked(region: Region) -> None:
    seen: list[tuple[int, int]] = []

    report = await scrub_region(
        region.stores, GALLERY, progress=lambda done, total: seen.append((done, total))
    )

    total = sum(summary.bytes_checked for summary in report.replicas)
    assert total == 3 * sum(chunk.length for chunk in region.chunks.values())
    assert seen[-1] == (total, total)
    assert all(seen_total == total for _, seen_total in seen)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


async def test_repair_writes_only_under_a_shared_scrub_lease(region: Region) -> None:
    damage(region)
    one, two, three = region.stores
    watched = [LeaseWatchingStore(one), LeaseWatchingStore(two)]

    report = await scrub_region([*watched, three], GALLERY, repair=True)

    assert report.ok
    writes = [write for store in watched for write in store.seen]
    assert len(writes) == 4
    for key, leases in writes:
        assert [(lease.exclusive, lease.holder) for lease in leases] == [
            (False, f"scrub repair of {GALLERY}")
        ], key
    # Released afterwards: garbage collection is not kept waiting.
    assert [list((store.root / "galleries" / GALLERY / "leases").glob("*")) for store in region.stores] == [
        [],
        [],
        [],
    ]


async def test_a_replica_that_cannot_be_written_keeps_its_problems_and_the_others_are_repaired(
    region: Region,
) -> None:
    one, two, three = region.stores
    bad_one, bad_two = region.shared[0], region.shared[1]
    corrupt(one, bad_one)
    remove(two, bad_two)
    full = FaultyStore(one, [Fault("put", "full", key_contains="/chunks/")])
    stores: list[Store] = [full, two, three]

    report = await scrub_region(stores, GALLERY, repair=True)

    assert (report.repaired, report.unrepairable) == (1, 1)
    (failed,) = [problem for problem in report.problems if not problem.repaired]
    assert (failed.replica, failed.key_or_digest) == ("eastus/replica-1", bad_one)
    assert "repair failed" in failed.detail
    assert "out of space" in failed.detail
    again = await scrub_region(region.stores, GALLERY)
    assert found(again) == {("eastus/replica-1", "corrupt", bad_one)}


async def test_scrubbing_no_replicas_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="at least one replica"):
        await scrub_region([], GALLERY)


async def test_repair_never_writes_a_manifest_before_its_chunks(region: Region) -> None:
    _, two, _ = region.stores
    damaged = manifest_file(two, V1)
    truncate(damaged)
    torn = damaged.read_bytes()
    lost = region.only_v1[0]
    for store in region.stores:
        remove(store, lost)

    report = await scrub_region(region.stores, GALLERY, repair=True)

    assert (report.repaired, report.unrepairable) == (0, 4)
    (manifest,) = [problem for problem in report.problems if problem.kind == "manifest"]
    assert "chunks it names are still bad in this replica" in manifest.detail
    # The replica does not claim a version whose chunks it lacks.
    assert damaged.read_bytes() == torn


async def test_repair_skips_a_sibling_copy_that_went_bad_since_it_was_checked(region: Region) -> None:
    one, two, three = region.stores
    lost = region.shared[0]
    remove(one, lost)
    # Replica 3's copy reads fine when checked, then corrupt when the repair reads it.
    rotting = FaultyStore(three, [Fault("get", "corrupt", key_contains=lost, after=1)])

    report = await scrub_region([one, rotting, two], GALLERY, repair=True)

    assert report.ok
    (problem,) = report.problems
    assert problem.detail.endswith("repaired from a verified copy in eastus/replica-2")
    assert chunk_path(one, lost).read_bytes() == chunk_path(two, lost).read_bytes()
    await assert_every_replica_verifies(region.stores)
