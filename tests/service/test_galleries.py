"""Galleries and image definitions through the service, as the admin."""

from __future__ import annotations

import pytest

from blobrep.core.gallery import Architecture, HyperVGeneration, OsState, OsType, ResourceRange
from blobrep.errors import (
    AlreadyExistsError,
    ImmutableFieldError,
    InvalidNameError,
    InvalidParameterError,
    PreconditionError,
    ResourceNotFoundError,
)
from blobrep.service import DefinitionFields, GalleryService
from tests.service.conftest import ADMIN, GALLERY, IMAGE


async def test_gallery_lifecycle(service: GalleryService) -> None:
    created = await service.create_gallery(ADMIN, GALLERY, location="West Europe", description="base images")
    assert created.location == "westeurope"
    assert [gallery.name for gallery in await service.list_galleries(ADMIN)] == [GALLERY]
    updated = await service.update_gallery(ADMIN, GALLERY, description="golden images")
    assert (await service.show_gallery(ADMIN, GALLERY)).description == "golden images" == updated.description
    await service.delete_gallery(ADMIN, GALLERY)
    assert await service.list_galleries(ADMIN) == []
    with pytest.raises(ResourceNotFoundError, match=GALLERY):
        await service.show_gallery(ADMIN, GALLERY)


async def test_a_gallery_defaults_to_a_region_of_the_home(service: GalleryService) -> None:
    gallery = await service.create_gallery(ADMIN, GALLERY)
    assert gallery.location in {region.name for region in await service.list_regions(ADMIN)}


async def test_gallery_name_taken_is_a_conflict(service: GalleryService) -> None:
    await service.create_gallery(ADMIN, GALLERY)
    with pytest.raises(AlreadyExistsError, match=GALLERY):
        await service.create_gallery(ADMIN, GALLERY)


async def test_gallery_in_an_unknown_region_is_refused(service: GalleryService) -> None:
    with pytest.raises(ResourceNotFoundError, match=r"'moon'"):
        await service.create_gallery(ADMIN, GALLERY, location="moon")
    assert await service.list_galleries(ADMIN) == []


async def test_bad_gallery_name_is_refused(service: GalleryService) -> None:
    with pytest.raises(InvalidNameError, match=r"my-gallery"):
        await service.create_gallery(ADMIN, "my-gallery")


async def test_a_gallery_with_definitions_cannot_be_deleted(service: GalleryService, definition: str) -> None:
    with pytest.raises(PreconditionError, match=r"definition"):
        await service.delete_gallery(ADMIN, GALLERY)
    await service.delete_definition(ADMIN, GALLERY, definition)
    await service.delete_gallery(ADMIN, GALLERY)


async def test_definition_with_every_field(service: GalleryService) -> None:
    await service.create_gallery(ADMIN, GALLERY)
    fields = DefinitionFields(
        publisher="contoso",
        offer="windows",
        sku="2022-dc",
        os_type="windows",
        os_state="specialized",
        hyper_v_generation="v2",
        architecture="arm64",
        min_vcpus=2,
        max_vcpus=16,
        min_memory_gib=4,
        max_memory_gib=64,
        end_of_life="2030-01-31",
        description="Windows Server",
    )
    await service.create_definition(ADMIN, GALLERY, "win", fields)
    shown = await service.show_definition(ADMIN, GALLERY, "win")
    assert (shown.os_type, shown.os_state) == (OsType.WINDOWS, OsState.SPECIALIZED)
    assert (shown.hyper_v_generation, shown.architecture) == (HyperVGeneration.V2, Architecture.ARM64)
    assert shown.recommended_vcpus == ResourceRange(2, 16)
    assert shown.recommended_memory_gib == ResourceRange(4, 64)
    assert shown.end_of_life is not None and shown.end_of_life.isoformat() == "2030-01-31T00:00:00+00:00"
    assert shown.identifier.sku == "2022-dc"


async def test_definition_defaults(service: GalleryService, definition: str) -> None:
    shown = await service.show_definition(ADMIN, GALLERY, definition)
    assert (shown.os_state, shown.hyper_v_generation, shown.architecture) == (
        OsState.GENERALIZED,
        HyperVGeneration.V1,
        Architecture.X64,
    )


async def test_same_identifier_twice_in_a_gallery_is_a_conflict(
    service: GalleryService, definition: str
) -> None:
    again = DefinitionFields(publisher="contoso", offer="ubuntu", sku="22_04", os_type="Linux")
    with pytest.raises(AlreadyExistsError, match=IMAGE):
        await service.create_definition(ADMIN, GALLERY, "ubuntu-copy", again)


async def test_definition_needs_its_identifier_and_os_type(service: GalleryService) -> None:
    await service.create_gallery(ADMIN, GALLERY)
    with pytest.raises(InvalidParameterError, match=r"offer, sku"):
        await service.create_definition(ADMIN, GALLERY, "x", DefinitionFields(publisher="p", os_type="Linux"))


async def test_bad_os_type_lists_the_choices(service: GalleryService) -> None:
    await service.create_gallery(ADMIN, GALLERY)
    fields = DefinitionFields(publisher="p", offer="o", sku="s", os_type="BeOS")
    with pytest.raises(InvalidParameterError, match=r"Linux, Windows"):
        await service.create_definition(ADMIN, GALLERY, "x", fields)


async def test_updatable_definition_fields_change(service: GalleryService, definition: str) -> None:
    updated = await service.update_definition(
        ADMIN, GALLERY, definition, DefinitionFields(max_vcpus=8, description="LTS", end_of_life="2031-06-30")
    )
    assert updated.recommended_vcpus == ResourceRange(None, 8)
    assert (await service.show_definition(ADMIN, GALLERY, definition)).description == "LTS"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (DefinitionFields(os_type="Windows"), "osType"),
        (DefinitionFields(os_state="Specialized"), "osState"),
        (DefinitionFields(hyper_v_generation="V2"), "hyperVGeneration"),
        (DefinitionFields(architecture="Arm64"), "architecture"),
        (DefinitionFields(sku="24_04"), "identifier"),
    ],
)
async def test_fixed_definition_fields_cannot_change(
    service: GalleryService, definition: str, fields: DefinitionFields, field: str
) -> None:
    with pytest.raises(ImmutableFieldError, match=field):
        await service.update_definition(ADMIN, GALLERY, definition, fields)
    assert (await service.show_definition(ADMIN, GALLERY, definition)).os_type is OsType.LINUX


async def test_giving_a_fixed_field_its_current_value_is_fine(
    service: GalleryService, definition: str
) -> None:
    same = DefinitionFields(os_type="linux", publisher="contoso", description="same identity")
    assert (await service.update_definition(ADMIN, GALLERY, definition, same)).description == "same identity"


async def test_inverted_recommended_range_is_refused(service: GalleryService, definition: str) -> None:
    with pytest.raises(InvalidParameterError, match=r"vCPU"):
        await service.update_definition(
            ADMIN, GALLERY, definition, DefinitionFields(min_vcpus=8, max_vcpus=2)
        )


async def test_names_differing_only_in_case_clash(service: GalleryService, definition: str) -> None:
    with pytest.raises(AlreadyExistsError, match=r"'Gallery1'.*'gallery1'"):
        await service.create_gallery(ADMIN, "Gallery1")
    fields = DefinitionFields(publisher="contoso", offer="other", sku="1", os_type="Linux")
    with pytest.raises(AlreadyExistsError, match=r"'UBUNTU'.*'ubuntu'"):
        await service.create_definition(ADMIN, GALLERY, "UBUNTU", fields)
