"""Operations: who owns a version's non-terminal state, and the recovery queries beside them."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

import blobrep.catalog.operations as operations_module
from blobrep.catalog import Catalog
from blobrep.core.gallery import (
    BlobInfo,
    GalleryImageVersion,
    ProvisioningState,
    PublishingProfile,
    RegionStatus,
    ReplicationState,
    TargetRegion,
)
from blobrep.core.holders import ProcessIdentity
from blobrep.core.operations import UNKNOWN_OWNER, Operation, OperationKind, heartbeat_expired
from blobrep.core.pins import ManifestPin
from blobrep.errors import InvalidParameterError, PreconditionError, ResourceNotFoundError
from tests.catalog.helpers import PLUS_0530, definition, exactly, full_version, gallery, v, version

ALICE = ProcessIdentity("host-a", "boot-1", "pid:[4026531836]", 12, 3456)
BOB = ProcessIdentity("host-b", "boot-2", "pid:[4026531836]", 34, 7890)
CAROL = ProcessIdentity("host-a", "boot-1", "pid:[4026531836]", 56, None)

REPLICATE = OperationKind.REPLICATE
CREATE = OperationKind.CREATE


@pytest.fixture
async def with_version(with_image: Catalog) -> Catalog:
    """The catalog holding version 1.0.0 of g/img."""
    await with_image.create_version(version("1.0.0", targets=("westus", "eastus")))
    return with_image


async def the_operation(catalog: Catalog) -> Operation:
    [operation] = await catalog.list_operations()
    return operation


# --- begin ------------------------------------------------------------------------------------


async def test_begin_records_the_owner_and_the_time(with_version: Catalog) -> None:
    before = datetime.now(UTC)
    assert await with_version.begin_operation("g", "img", v("1.0.0"), "eastus", REPLICATE, ALICE) is None
    after = datetime.now(UTC)
    operation = await the_operation(with_version)
    assert (operation.gallery, operation.image, operation.version) == ("g", "img", v("1.0.0"))
    assert (operation.region, operation.kind, operation.owner) == ("eastus", REPLICATE, ALICE)
    assert before <= operation.started == operation.heartbeat <= after
    assert operation.heartbeat.utcoffset() == timedelta(0)


async def test_begin_where_an_operation_runs_returns_it_and_changes_nothing(with_version: Catalog) -> None:
    await with_version.begin_operation("g", "img", v("1.0.0"), "eastus", REPLICATE, ALICE)
    running = await the_operation(with_version)
    for owner in (BOB, ALICE):
        assert (
            await with_version.begin_operation("g", "img", v("1.0.0"), "eastus", REPLICATE, owner) == running
        )
    assert await with_version.list_operations() == [running]


async def test_the_provisioning_operation_and_each_regions_replication_are_separate(
    with_version: Catalog,
) -> None:
    key = ("g", "img", v("1.0.0"))
    assert await with_version.begin_operation(*key, "", OperationKind.UPDATE, ALICE) is None
    assert await with_version.begin_operation(*key, "westus", REPLICATE, BOB) is None
    assert await with_version.begin_operation(*key, "eastus", REPLICATE, CAROL) is None
    listed = [(op.region, op.kind, op.owner) for op in await with_version.list_operations()]
    assert listed == [
        ("", OperationKind.UPDATE, ALICE),
        ("eastus", REPLICATE, CAROL),
        ("westus", REPLICATE, BOB),
    ]


async def test_begin_on_a_missing_version_names_what_is_missing(with_version: Catalog) -> None:
    message = "image version '9.9.9' not found in image definition 'img' of gallery 'g'"
    with pytest.raises(ResourceNotFoundError, match=exactly(message)):
        await with_version.begin_operation("g", "img", v("9.9.9"), "", CREATE, ALICE)
    with pytest.raises(ResourceNotFoundError, match="'nope'"):
        await with_version.begin_operation("nope", "img", v("1.0.0"), "", CREATE, ALICE)
    assert await with_version.list_operations() == []


async def test_a_replication_without_a_region_is_refused(with_version: Catalog) -> None:
    message = "a replication operation needs the region it replicates into"
    with pytest.raises(InvalidParameterError, match=exactly(message)):
        await with_version.begin_operation("g", "img", v("1.0.0"), "", REPLICATE, ALICE)
    assert await with_version.list_operations() == []


# --- take over --------------------------------------------------------------------------------


async def test_of_two_takeovers_of_the_same_operation_exactly_one_wins(with_version: Catalog) -> None:
    await with_version.begin_operation("g", "img", v("1.0.0"), "", CREATE, ALICE)
    abandoned = await the_operation(with_version)
    won = {
        owner: await with_version.take_over_operation(abandoned, OperationKind.DELETE, owner)
        for owner in (BOB, CAROL)
    }
    assert won == {BOB: True, CAROL: False}
    now = await the_operation(with_version)
    assert (now.kind, now.owner) == (OperationKind.DELETE, BOB)
    assert now.started == now.heartbeat > abandoned.heartbeat


async def test_concurrent_takeovers_from_two_catalogs_have_one_winner(
    with_version: Catalog, db_path: Path
) -> None:
    await with_version.begin_operation("g", "img", v("1.0.0"), "eastus", REPLICATE, ALICE)
    abandoned = await the_operation(with_version)
    results: dict[ProcessIdentity, bool] = {}
    async with await Catalog.open(db_path) as other:

        async def take(catalog: Catalog, owner: ProcessIdentity) -> None:
            results[owner] = await catalog.take_over_operation(abandoned, REPLICATE, owner)

        async with anyio.create_task_group() as group:
            group.start_soon(take, with_version, BOB)
            group.start_soon(take, other, CAROL)
    assert sorted(results.values()) == [False, True]
    [winner] = [owner for owner, won in results.items() if won]
    assert (await the_operation(with_version)).owner == winner


async def test_a_takeover_fails_once_the_owner_sent_a_heartbeat(with_version: Catalog) -> None:
    await with_version.begin_operation("g", "img", v("1.0.0"), "eastus", REPLICATE, ALICE)
    judged = await the_operation(with_version)
    assert await with_version.heartbeat_operation("g", "img", v("1.0.0"), "eastus", ALICE)
    assert not await with_version.take_over_operation(judged, REPLICATE, BOB)
    assert (await the_operation(with_version)).owner == ALICE


async def test_a_heartbeat_changes_the_row_even_if_the_clock_stands_still(
    with_version: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen = "2030-01-01T00:00:00.000000+00:00"
    monkeypatch.setattr(operations_module, "now", lambda: frozen)
    await with_version.begin_operation("g", "img", v("1.0.0"), "eastus", REPLICATE, ALICE)
    judged = await the_operation(with_version)
    assert await with_version.heartbeat_operation("g", "img", v("1.0.0"), "eastus", ALICE)
    assert (await the_operation(with_version)).heartbeat == datetime(2030, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    assert not await with_version.take_over_operation(judged, REPLICATE, BOB), "a live owner was taken over"


async def test_a_takeover_of_an_operation_that_is_gone_fails(with_version: Catalog) -> None:
    await with_version.begin_operation("g", "img", v("1.0.0"), "eastus", REPLICATE, ALICE)
    finished = await the_operation(with_version)
    await with_version.end_operation("g", "img", v("1.0.0"), "eastus", ALICE)
    assert not await with_version.take_over_operation(finished, REPLICATE, BOB)
    await with_version.delete_version("g", "img", v("1.0.0"))
    assert not await with_version.take_over_operation(finished, REPLICATE, BOB)
    assert await with_version.list_operations() == []


# --- heartbeat and end ------------------------------------------------------------------------


async def test_the_owners_heartbeat_moves_the_time_on(with_version: Catalog) -> None:
    await with_version.begin_operation("g", "img", v("1.0.0"), "", CREATE, ALICE)
    first = await the_operation(with_version)
    assert await with_version.heartbeat_operation("g", "img", v("1.0.0"), "", ALICE)
    second = await the_operation(with_version)
    assert second.heartbeat > first.heartbeat
    assert second == dataclasses.replace(first, heartbeat=second.heartbeat)


async def test_a_heartbeat_by_another_process_is_refused_and_changes_nothing(with_version: Catalog) -> None:
    await with_version.begin_operation("g", "img", v("1.0.0"), "", CREATE, ALICE)
    running = await the_operation(with_version)
    assert not await with_version.heartbeat_operation("g", "img", v("1.0.0"), "", BOB)
    assert not await with_version.heartbeat_operation("g", "img", v("1.0.0"), "westus", ALICE)
    assert await with_version.list_operations() == [running]


async def test_an_owner_that_was_taken_over_learns_it_at_its_next_heartbeat(with_version: Catalog) -> None:
    await with_version.begin_operation("g", "img", v("1.0.0"), "", CREATE, ALICE)
    assert await with_version.take_over_operation(await the_operation(with_version), CREATE, BOB)
    assert not await with_version.heartbeat_operation("g", "img", v("1.0.0"), "", ALICE)
    await with_version.end_operation("g", "img", v("1.0.0"), "", ALICE)
    assert (await the_operation(with_version)).owner == BOB, "the old owner ended the new owner's operation"


async def test_a_heartbeat_for_a_finished_operation_or_a_deleted_version_is_refused(
    with_version: Catalog,
) -> None:
    await with_version.begin_operation("g", "img", v("1.0.0"), "", CREATE, ALICE)
    await with_version.end_operation("g", "img", v("1.0.0"), "", ALICE)
    assert not await with_version.heartbeat_operation("g", "img", v("1.0.0"), "", ALICE)
    await with_version.delete_version("g", "img", v("1.0.0"))
    assert not await with_version.heartbeat_operation("g", "img", v("1.0.0"), "", ALICE)


async def test_end_forgets_the_operation_and_may_be_repeated(with_version: Catalog) -> None:
    key = ("g", "img", v("1.0.0"))
    await with_version.begin_operation(*key, "", CREATE, ALICE)
    await with_version.begin_operation(*key, "eastus", REPLICATE, ALICE)
    await with_version.end_operation(*key, "", ALICE)
    assert [op.region for op in await with_version.list_operations()] == ["eastus"]
    await with_version.end_operation(*key, "", ALICE)
    await with_version.end_operation("g", "img", v("7.0.0"), "", ALICE)
    assert await with_version.begin_operation(*key, "", CREATE, BOB) is None
    assert [op.owner for op in await with_version.list_operations()] == [BOB, ALICE]


async def test_deleting_a_version_deletes_its_operations(with_version: Catalog) -> None:
    key = ("g", "img", v("1.0.0"))
    await with_version.create_version(version("2.0.0"))
    await with_version.begin_operation(*key, "", OperationKind.DELETE, ALICE)
    await with_version.begin_operation(*key, "eastus", REPLICATE, BOB)
    await with_version.begin_operation("g", "img", v("2.0.0"), "westus", REPLICATE, BOB)
    await with_version.delete_version(*key)
    assert [op.version for op in await with_version.list_operations()] == [v("2.0.0")]
    await with_version.create_version(version("1.0.0"))
    assert await with_version.begin_operation(*key, "", CREATE, CAROL) is None, (
        "the deleted one's row survived"
    )


# --- listing ----------------------------------------------------------------------------------


async def test_operations_are_listed_by_gallery_image_number_and_region(with_version: Catalog) -> None:
    await with_version.create_gallery(gallery("a"))
    await with_version.create_definition(definition("img", "a"))
    await with_version.create_version(version("1.0.10"))
    await with_version.create_version(version("1.0.0", gallery="a"))
    await with_version.begin_operation("g", "img", v("1.0.10"), "", CREATE, ALICE)
    await with_version.begin_operation("g", "img", v("1.0.0"), "westus", REPLICATE, ALICE)
    await with_version.begin_operation("g", "img", v("1.0.0"), "eastus", REPLICATE, ALICE)
    await with_version.begin_operation("a", "img", v("1.0.0"), "", CREATE, ALICE)
    listed = [(op.gallery, str(op.version), op.region) for op in await with_version.list_operations()]
    assert listed == [
        ("a", "1.0.0", ""),
        ("g", "1.0.0", "eastus"),
        ("g", "1.0.0", "westus"),
        ("g", "1.0.10", ""),
    ]


@pytest.mark.parametrize(
    "owner", ["not json", "[1, 2]", '{"host": "h", "boot_id": "b", "pid": "12"}', "{" * 5000]
)
async def test_an_unreadable_owner_is_listed_as_unknown_and_can_be_taken_over(
    with_version: Catalog, db_path: Path, owner: str
) -> None:
    await with_version.begin_operation("g", "img", v("1.0.0"), "eastus", REPLICATE, ALICE)
    connection = sqlite3.connect(db_path)
    try:
        connection.execute("UPDATE operations SET owner = ?", (owner,))
        connection.commit()
    finally:
        connection.close()
    unknown = await the_operation(with_version)
    assert unknown.owner == UNKNOWN_OWNER
    assert (
        unknown.describe()
        == "replication of /galleries/g/images/img/versions/1.0.0 in eastus by an unknown process"
    )
    assert await with_version.begin_operation("g", "img", v("1.0.0"), "eastus", REPLICATE, BOB) == unknown
    assert await with_version.take_over_operation(unknown, REPLICATE, BOB)
    assert (await the_operation(with_version)).owner == BOB


# --- the values -------------------------------------------------------------------------------


def an_operation(kind: OperationKind, region: str, owner: ProcessIdentity = ALICE) -> Operation:
    time = datetime(2030, 1, 1, tzinfo=UTC)
    return Operation("g", "img", v("1.0.0"), region, kind, owner, time, time)


@pytest.mark.parametrize(
    ("operation", "text"),
    [
        (
            an_operation(REPLICATE, "eastus2"),
            "replication of /galleries/g/images/img/versions/1.0.0 in eastus2 by pid 12 on host-a",
        ),
        (an_operation(CREATE, ""), "creation of /galleries/g/images/img/versions/1.0.0 by pid 12 on host-a"),
        (
            an_operation(OperationKind.UPDATE, "", BOB),
            "update of /galleries/g/images/img/versions/1.0.0 by pid 34 on host-b",
        ),
        (
            an_operation(OperationKind.DELETE, ""),
            "deletion of /galleries/g/images/img/versions/1.0.0 by pid 12 on host-a",
        ),
    ],
    ids=["replicate", "create", "update", "delete"],
)
def test_an_operation_describes_what_where_and_who(operation: Operation, text: str) -> None:
    assert operation.describe() == text


def test_a_heartbeat_expires_when_it_is_ttl_old() -> None:
    operation = an_operation(CREATE, "")
    ttl = timedelta(seconds=30)
    assert not heartbeat_expired(operation, operation.heartbeat, ttl)
    assert not heartbeat_expired(operation, operation.heartbeat + ttl - timedelta(microseconds=1), ttl)
    assert heartbeat_expired(operation, operation.heartbeat + ttl, ttl)
    later_elsewhere = (operation.heartbeat + ttl).astimezone(PLUS_0530)
    assert heartbeat_expired(operation, later_elsewhere, ttl)


# --- recovery queries on versions -------------------------------------------------------------


def in_state(
    text: str,
    state: ProvisioningState,
    *states: ReplicationState,
    gallery: str = "g",
    image: str = "img",
) -> GalleryImageVersion:
    regions = ("westus", "eastus", "japaneast")[: len(states)]
    stored = version(
        text,
        targets=regions or ("westus",),
        regions=tuple(RegionStatus(region, s) for region, s in zip(regions, states, strict=True)),
        gallery=gallery,
        image=image,
    )
    return dataclasses.replace(stored, provisioning_state=state)


async def test_unfinished_versions_are_those_mid_operation_in_every_gallery(with_image: Catalog) -> None:
    await with_image.create_gallery(gallery("other"))
    await with_image.create_definition(definition("os", "other"))
    done = ReplicationState.COMPLETED
    replicating = ReplicationState.REPLICATING
    stored = [
        in_state("1.0.0", ProvisioningState.SUCCEEDED, done, done),
        in_state("1.0.1", ProvisioningState.CREATING),
        in_state("1.0.2", ProvisioningState.UPDATING, done),
        in_state("1.0.3", ProvisioningState.DELETING, ReplicationState.FAILED),
        in_state("1.0.4", ProvisioningState.FAILED, ReplicationState.FAILED, ReplicationState.UNKNOWN),
        in_state("1.0.5", ProvisioningState.SUCCEEDED, done, replicating),
        in_state("1.0.6", ProvisioningState.SUCCEEDED, ReplicationState.UNKNOWN),
        in_state("1.0.7", ProvisioningState.FAILED, replicating),
        in_state("2.0.0", ProvisioningState.CREATING, replicating, replicating, gallery="other", image="os"),
        in_state("3.0.0", ProvisioningState.SUCCEEDED, done, gallery="other", image="os"),
    ]
    for stored_version in reversed(stored):
        await with_image.create_version(stored_version)
    unfinished = await with_image.unfinished_versions()
    assert [f"{found.gallery}/{found.version}" for found in unfinished] == [
        "g/1.0.1",
        "g/1.0.2",
        "g/1.0.3",
        "g/1.0.5",
        "g/1.0.7",
        "other/2.0.0",
    ]
    assert unfinished == [stored[i] for i in (1, 2, 3, 5, 7, 8)]


async def test_a_catalog_with_nothing_unfinished_says_so(with_image: Catalog) -> None:
    assert await with_image.unfinished_versions() == []
    await with_image.create_version(
        in_state("1.0.0", ProvisioningState.SUCCEEDED, ReplicationState.COMPLETED)
    )
    assert await with_image.unfinished_versions() == []


async def test_reset_replaces_profile_blob_and_every_region_status(with_image: Catalog) -> None:
    failed = dataclasses.replace(full_version("1.0.0"), provisioning_state=ProvisioningState.FAILED)
    await with_image.create_version(failed)
    redo = GalleryImageVersion(
        gallery="g",
        image="img",
        version=v("1.0.0"),
        location="northeurope",
        publishing_profile=PublishingProfile((TargetRegion("northeurope"), TargetRegion("westeurope", 2))),
        provisioning_state=ProvisioningState.CREATING,
        blob=BlobInfo(10, "fedcba9876543210fedcba9876543210", 5, 1, ManifestPin(300, "ab" * 32)),
        regions=(
            RegionStatus("northeurope", ReplicationState.REPLICATING, 3, 0, 1),
            RegionStatus("westeurope"),
        ),
    )
    await with_image.reset_version(redo, expected=ProvisioningState.FAILED)
    assert await with_image.get_version("g", "img", v("1.0.0")) == redo


async def test_reset_can_clear_the_blob_and_every_status(with_image: Catalog) -> None:
    await with_image.create_version(
        dataclasses.replace(full_version("1.0.0"), provisioning_state=ProvisioningState.FAILED)
    )
    bare = dataclasses.replace(version("1.0.0"), provisioning_state=ProvisioningState.CREATING)
    await with_image.reset_version(bare, expected=ProvisioningState.FAILED)
    assert await with_image.get_version("g", "img", v("1.0.0")) == bare


async def test_reset_refuses_a_version_in_another_state_and_changes_nothing(with_image: Catalog) -> None:
    stored = full_version("1.0.0")  # Creating
    await with_image.create_version(stored)
    redo = dataclasses.replace(version("1.0.0"), provisioning_state=ProvisioningState.CREATING)
    message = (
        "image version '1.0.0' in image definition 'img' of gallery 'g' is Creating, not Failed;"
        " it was not replaced"
    )
    with pytest.raises(PreconditionError, match=exactly(message)):
        await with_image.reset_version(redo, expected=ProvisioningState.FAILED)
    assert await with_image.get_version("g", "img", v("1.0.0")) == stored


async def test_reset_of_a_missing_version_names_it(with_image: Catalog) -> None:
    message = "image version '1.0.0' not found in image definition 'img' of gallery 'g'"
    with pytest.raises(ResourceNotFoundError, match=exactly(message)):
        await with_image.reset_version(version("1.0.0"), expected=ProvisioningState.FAILED)


async def test_reset_with_a_region_twice_changes_nothing(with_image: Catalog) -> None:
    failed = dataclasses.replace(full_version("1.0.0"), provisioning_state=ProvisioningState.FAILED)
    await with_image.create_version(failed)
    twice = dataclasses.replace(version("1.0.0"), regions=(RegionStatus("westus"), RegionStatus("westus")))
    with pytest.raises(InvalidParameterError, match=exactly("status of region 'westus' is listed twice")):
        await with_image.reset_version(twice, expected=ProvisioningState.FAILED)
    assert await with_image.get_version("g", "img", v("1.0.0")) == failed


async def test_reset_keeps_the_versions_operations(with_image: Catalog) -> None:
    failed = dataclasses.replace(version("1.0.0"), provisioning_state=ProvisioningState.FAILED)
    await with_image.create_version(failed)
    await with_image.begin_operation("g", "img", v("1.0.0"), "", CREATE, ALICE)
    running = await with_image.list_operations()
    await with_image.reset_version(failed, expected=ProvisioningState.FAILED)
    assert await with_image.list_operations() == running
