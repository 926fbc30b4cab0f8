"""Image versions, their target regions and their regional status."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blobrep.catalog import Catalog
from blobrep.core.gallery import (
    BlobInfo,
    GalleryImageVersion,
    ProvisioningState,
    PublishingProfile,
    RegionStatus,
    ReplicationState,
    SafetyProfile,
    TargetRegion,
)
from blobrep.core.version import ImageVersion
from blobrep.errors import AlreadyExistsError, InvalidParameterError, ResourceNotFoundError
from tests.catalog.helpers import definition, exactly, full_version, v, version
from tests.catalog.strategies import gallery_image_versions
from tests.core.strategies import versions

# One catalog serves every example of a test; each example removes what it created.
SHARED_CATALOG = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SHARED_CATALOG
@given(stored=gallery_image_versions())
async def test_every_field_of_a_version_survives_the_round_trip(
    with_image: Catalog, stored: GalleryImageVersion
) -> None:
    await with_image.create_version(stored)
    try:
        assert await with_image.get_version("g", "img", stored.version) == stored
        assert await with_image.list_versions("g", "img") == [stored]
    finally:
        await with_image.delete_version("g", "img", stored.version)


@SHARED_CATALOG
@given(numbers=st.lists(versions, min_size=1, max_size=8, unique=True))
async def test_versions_are_listed_in_numeric_order(with_image: Catalog, numbers: list[ImageVersion]) -> None:
    for number in numbers:
        await with_image.create_version(dataclasses.replace(version(), version=number))
    try:
        listed = [found.version for found in await with_image.list_versions("g", "img")]
        assert listed == sorted(numbers)
    finally:
        for number in numbers:
            await with_image.delete_version("g", "img", number)


@pytest.mark.parametrize(
    "stored", [version("1.0.0", targets=()), full_version("1.0.0")], ids=["bare", "full"]
)
async def test_a_version_reads_back_as_it_was_created(
    with_image: Catalog, stored: GalleryImageVersion
) -> None:
    await with_image.create_version(stored)
    assert await with_image.get_version("g", "img", v("1.0.0")) == stored


async def test_version_parts_order_as_numbers_not_text(with_image: Catalog) -> None:
    for text in ("1.0.10", "10.0.0", "1.0.9", "2.0.0", "1.10.0", "1.9.99"):
        await with_image.create_version(version(text))
    listed = [str(found.version) for found in await with_image.list_versions("g", "img")]
    assert listed == ["1.0.9", "1.0.10", "1.9.99", "1.10.0", "2.0.0", "10.0.0"]


async def test_versions_of_another_definition_are_not_listed(with_image: Catalog) -> None:
    await with_image.create_definition(definition("other"))
    await with_image.create_version(version("1.0.0"))
    await with_image.create_version(version("2.0.0", image="other"))
    assert [str(found.version) for found in await with_image.list_versions("g", "img")] == ["1.0.0"]
    assert [str(found.version) for found in await with_image.list_versions("g", "other")] == ["2.0.0"]


async def test_creating_an_existing_version_is_a_conflict_not_an_overwrite(with_image: Catalog) -> None:
    await with_image.create_version(full_version("1.0.0"))
    with pytest.raises(
        AlreadyExistsError,
        match=exactly("image version '1.0.0' already exists in image definition 'img' of gallery 'g'"),
    ):
        await with_image.create_version(version("1.0.0"))
    assert await with_image.get_version("g", "img", v("1.0.0")) == full_version("1.0.0")


async def test_a_region_listed_twice_is_refused_and_nothing_is_stored(with_image: Catalog) -> None:
    with pytest.raises(InvalidParameterError, match="target region 'westus' is listed twice"):
        await with_image.create_version(version("1.0.0", targets=("westus", "eastus", "westus")))
    twice = version("1.0.0", regions=(RegionStatus("westus"), RegionStatus("westus")))
    with pytest.raises(InvalidParameterError, match="status of region 'westus' is listed twice"):
        await with_image.create_version(twice)
    assert await with_image.list_versions("g", "img") == []


async def test_each_missing_level_is_named(with_image: Catalog) -> None:
    one = v("1.0.0")
    with pytest.raises(ResourceNotFoundError, match=exactly("gallery 'nope' not found")):
        await with_image.get_version("nope", "img", one)
    with pytest.raises(ResourceNotFoundError, match=exactly("gallery 'nope' not found")):
        await with_image.create_version(version("1.0.0", gallery="nope"))
    definition_missing = exactly("image definition 'nope' not found in gallery 'g'")
    with pytest.raises(ResourceNotFoundError, match=definition_missing):
        await with_image.get_version("g", "nope", one)
    with pytest.raises(ResourceNotFoundError, match=definition_missing):
        await with_image.list_versions("g", "nope")
    with pytest.raises(ResourceNotFoundError, match=definition_missing):
        await with_image.create_version(version("1.0.0", image="nope"))
    version_missing = exactly("image version '1.0.0' not found in image definition 'img' of gallery 'g'")
    with pytest.raises(ResourceNotFoundError, match=version_missing):
        await with_image.get_version("g", "img", one)
    with pytest.raises(ResourceNotFoundError, match=version_missing):
        await with_image.update_version(version("1.0.0"))
    with pytest.raises(ResourceNotFoundError, match=version_missing):
        await with_image.delete_version("g", "img", one)
    with pytest.raises(ResourceNotFoundError, match=version_missing):
        await with_image.set_region_status("g", "img", one, RegionStatus("westus"))
    with pytest.raises(ResourceNotFoundError, match=version_missing):
        await with_image.delete_region_status("g", "img", one, "westus")


async def test_an_update_replaces_the_profile_but_keeps_the_regional_status(with_image: Catalog) -> None:
    original = full_version("1.0.0")
    await with_image.create_version(original)
    changed = GalleryImageVersion(
        gallery="g",
        image="img",
        version=v("1.0.0"),
        location="eastus",
        publishing_profile=PublishingProfile(
            (TargetRegion("japaneast", 5), TargetRegion("eastus"), TargetRegion("westeurope")),
            replica_count=4,
        ),
        safety_profile=SafetyProfile(False),
        provisioning_state=ProvisioningState.SUCCEEDED,
        blob=BlobInfo(1, "f" * 32, 1, 1),
        regions=(RegionStatus("ignored", ReplicationState.COMPLETED),),
    )
    await with_image.update_version(changed)
    # The status rows are those replication wrote, now in the new target order.
    by_region = {status.region: status for status in original.regions}
    expected = dataclasses.replace(
        changed, regions=(by_region["japaneast"], by_region["eastus"], by_region["westeurope"])
    )
    assert await with_image.get_version("g", "img", v("1.0.0")) == expected


async def test_an_update_can_unpublish_and_clear_every_optional_field(with_image: Catalog) -> None:
    await with_image.create_version(full_version("1.0.0"))
    bare = version("1.0.0", targets=())
    await with_image.update_version(bare)
    found = await with_image.get_version("g", "img", v("1.0.0"))
    assert dataclasses.replace(found, regions=()) == bare
    assert [status.region for status in found.regions] == ["eastus", "japaneast", "westeurope"]


async def test_region_status_is_inserted_then_replaced(with_image: Catalog) -> None:
    one = v("1.0.0")
    await with_image.create_version(version("1.0.0", targets=("westus", "eastus")))
    await with_image.set_region_status(
        "g", "img", one, RegionStatus("eastus", ReplicationState.REPLICATING, 10)
    )
    await with_image.set_region_status(
        "g", "img", one, RegionStatus("westus", ReplicationState.REPLICATING, 50)
    )
    done = RegionStatus("eastus", ReplicationState.COMPLETED, 100, 1, 1, "")
    await with_image.set_region_status("g", "img", one, done)
    found = await with_image.get_version("g", "img", one)
    assert found.regions == (RegionStatus("westus", ReplicationState.REPLICATING, 50), done)
    assert found.is_completed_in("eastus")
    assert not found.is_completed_in("westus")


async def test_status_of_regions_no_longer_targeted_follows_the_targets_by_name(with_image: Catalog) -> None:
    one = v("1.0.0")
    await with_image.create_version(version("1.0.0", targets=("westus",)))
    for region in ("zanzibar", "westus", "alaska"):
        await with_image.set_region_status("g", "img", one, RegionStatus(region, ReplicationState.COMPLETED))
    found = await with_image.get_version("g", "img", one)
    assert [status.region for status in found.regions] == ["westus", "alaska", "zanzibar"]


async def test_deleting_region_status_forgets_that_region_and_may_be_repeated(with_image: Catalog) -> None:
    one = v("1.0.0")
    await with_image.create_version(full_version("1.0.0"))
    await with_image.delete_region_status("g", "img", one, "westeurope")
    await with_image.delete_region_status("g", "img", one, "westeurope")
    await with_image.delete_region_status("g", "img", one, "never-reported")
    found = await with_image.get_version("g", "img", one)
    assert [status.region for status in found.regions] == ["eastus", "japaneast"]
    assert found.publishing_profile == full_version("1.0.0").publishing_profile


async def test_a_version_recreated_after_deletion_starts_clean(with_image: Catalog) -> None:
    one = v("1.0.0")
    await with_image.create_version(full_version("1.0.0"))
    await with_image.set_region_status("g", "img", one, RegionStatus("elsewhere"))
    await with_image.delete_version("g", "img", one)
    assert await with_image.list_versions("g", "img") == []
    await with_image.create_version(version("1.0.0", targets=("westus",)))
    assert await with_image.get_version("g", "img", one) == version("1.0.0", targets=("westus",))
