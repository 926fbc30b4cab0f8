"""Galleries and image definitions: round trips, conflicts, not-found errors, delete rules."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime

import pytest

from blobrep.catalog import Catalog
from blobrep.core.gallery import Gallery, ImageDefinition, ImageIdentifier
from blobrep.errors import AlreadyExistsError, InvalidParameterError, PreconditionError, ResourceNotFoundError
from tests.catalog.helpers import definition, exactly, full_definition, full_gallery, gallery, v, version

# --- galleries --------------------------------------------------------------------------------


@pytest.mark.parametrize("stored", [gallery("g"), full_gallery("g")], ids=["defaults", "all-fields"])
async def test_a_gallery_reads_back_as_it_was_created(catalog: Catalog, stored: Gallery) -> None:
    await catalog.create_gallery(stored)
    assert await catalog.get_gallery("g") == stored
    assert await catalog.list_galleries() == [stored]


async def test_galleries_are_listed_by_name(catalog: Catalog) -> None:
    for name in ("prod", "Dev", "archive", "dev2"):
        await catalog.create_gallery(gallery(name))
    assert [g.name for g in await catalog.list_galleries()] == ["Dev", "archive", "dev2", "prod"]


async def test_creating_an_existing_gallery_is_a_conflict_not_an_overwrite(catalog: Catalog) -> None:
    await catalog.create_gallery(full_gallery("g"))
    with pytest.raises(AlreadyExistsError, match=exactly("gallery 'g' already exists")):
        await catalog.create_gallery(gallery("g"))
    assert await catalog.get_gallery("g") == full_gallery("g")


async def test_a_missing_gallery_is_not_found(catalog: Catalog) -> None:
    with pytest.raises(ResourceNotFoundError, match=exactly("gallery 'nope' not found")):
        await catalog.get_gallery("nope")
    with pytest.raises(ResourceNotFoundError, match=exactly("gallery 'nope' not found")):
        await catalog.update_gallery(gallery("nope"))
    with pytest.raises(ResourceNotFoundError, match=exactly("gallery 'nope' not found")):
        await catalog.delete_gallery("nope")
    assert await catalog.list_galleries() == []


async def test_updating_a_gallery_replaces_its_fields(catalog: Catalog) -> None:
    await catalog.create_gallery(gallery("g"))
    await catalog.update_gallery(full_gallery("g"))
    assert await catalog.get_gallery("g") == full_gallery("g")


async def test_a_deleted_gallery_is_gone_and_its_name_free(catalog: Catalog) -> None:
    await catalog.create_gallery(full_gallery("g"))
    await catalog.delete_gallery("g")
    with pytest.raises(ResourceNotFoundError):
        await catalog.get_gallery("g")
    await catalog.create_gallery(gallery("g"))
    assert await catalog.get_gallery("g") == gallery("g")


async def test_a_gallery_with_definitions_cannot_be_deleted(catalog: Catalog) -> None:
    await catalog.create_gallery(gallery("g"))
    await catalog.create_definition(definition("one"))
    with pytest.raises(
        PreconditionError, match=exactly("gallery 'g' still has 1 image definition; delete them first")
    ):
        await catalog.delete_gallery("g")
    await catalog.create_definition(definition("two"))
    with pytest.raises(
        PreconditionError, match=exactly("gallery 'g' still has 2 image definitions; delete them first")
    ):
        await catalog.delete_gallery("g")
    assert await catalog.get_gallery("g") == gallery("g")


# --- image definitions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stored", [definition("img"), full_definition("img")], ids=["defaults", "all-fields"]
)
async def test_a_definition_reads_back_as_it_was_created(catalog: Catalog, stored: ImageDefinition) -> None:
    await catalog.create_gallery(gallery("g"))
    await catalog.create_definition(stored)
    assert await catalog.get_definition("g", "img") == stored
    assert await catalog.list_definitions("g") == [stored]


async def test_an_end_of_life_in_any_zone_reads_back_as_the_same_instant_in_utc(catalog: Catalog) -> None:
    await catalog.create_gallery(gallery("g"))
    stored = full_definition("img")
    await catalog.create_definition(stored)
    end_of_life = (await catalog.get_definition("g", "img")).end_of_life
    assert end_of_life == stored.end_of_life
    assert end_of_life is not None and end_of_life.tzinfo == UTC


async def test_a_time_without_a_zone_is_refused(catalog: Catalog) -> None:
    await catalog.create_gallery(gallery("g"))
    naive = dataclasses.replace(definition("img"), end_of_life=datetime(2030, 1, 1))
    with pytest.raises(InvalidParameterError, match="end of life 2030-01-01T00:00:00 has no time zone"):
        await catalog.create_definition(naive)
    assert await catalog.list_definitions("g") == []


async def test_definitions_are_listed_by_name_within_their_gallery(catalog: Catalog) -> None:
    for name in ("g", "other"):
        await catalog.create_gallery(gallery(name))
    for name in ("ubuntu", "debian", "windows"):
        await catalog.create_definition(definition(name, "g"))
    await catalog.create_definition(definition("alpine", "other"))
    assert [d.name for d in await catalog.list_definitions("g")] == ["debian", "ubuntu", "windows"]
    assert [d.name for d in await catalog.list_definitions("other")] == ["alpine"]


async def test_a_definition_needs_its_gallery(catalog: Catalog) -> None:
    with pytest.raises(ResourceNotFoundError, match=exactly("gallery 'nope' not found")):
        await catalog.create_definition(definition("img", "nope"))
    with pytest.raises(ResourceNotFoundError, match=exactly("gallery 'nope' not found")):
        await catalog.list_definitions("nope")
    with pytest.raises(ResourceNotFoundError, match=exactly("gallery 'nope' not found")):
        await catalog.get_definition("nope", "img")


async def test_a_missing_definition_is_not_found_naming_its_gallery(catalog: Catalog) -> None:
    await catalog.create_gallery(gallery("g"))
    message = exactly("image definition 'img' not found in gallery 'g'")
    with pytest.raises(ResourceNotFoundError, match=message):
        await catalog.get_definition("g", "img")
    with pytest.raises(ResourceNotFoundError, match=message):
        await catalog.update_definition(definition("img"))
    with pytest.raises(ResourceNotFoundError, match=message):
        await catalog.delete_definition("g", "img")


async def test_a_definition_name_is_taken_once_per_gallery(catalog: Catalog) -> None:
    for name in ("g", "other"):
        await catalog.create_gallery(gallery(name))
    await catalog.create_definition(full_definition("img"))
    with pytest.raises(
        AlreadyExistsError, match=exactly("image definition 'img' already exists in gallery 'g'")
    ):
        await catalog.create_definition(definition("img", sku="another-sku"))
    assert await catalog.get_definition("g", "img") == full_definition("img")
    await catalog.create_definition(full_definition("img", "other"))


async def test_an_identifier_is_unique_within_a_gallery_and_the_error_names_its_holder(
    catalog: Catalog,
) -> None:
    for name in ("g", "other"):
        await catalog.create_gallery(gallery(name))
    await catalog.create_definition(definition("ubuntu", sku="22.04"))
    with pytest.raises(
        AlreadyExistsError,
        match=re.escape(
            "image definition 'ubuntu' in gallery 'g' already has publisher 'contoso', offer 'ubuntu'"
            " and sku '22.04'"
        ),
    ):
        await catalog.create_definition(definition("ubuntu-copy", sku="22.04"))
    assert [d.name for d in await catalog.list_definitions("g")] == ["ubuntu"]
    await catalog.create_definition(definition("ubuntu", "other", sku="22.04"))


async def test_updating_a_definition_replaces_its_fields(catalog: Catalog) -> None:
    await catalog.create_gallery(gallery("g"))
    await catalog.create_definition(definition("img"))
    await catalog.update_definition(full_definition("img"))
    assert await catalog.get_definition("g", "img") == full_definition("img")


async def test_an_update_cannot_take_another_definitions_identifier(catalog: Catalog) -> None:
    await catalog.create_gallery(gallery("g"))
    await catalog.create_definition(definition("a", sku="one"))
    await catalog.create_definition(definition("b", sku="two"))
    taken = dataclasses.replace(definition("b"), identifier=ImageIdentifier("contoso", "ubuntu", "one"))
    with pytest.raises(AlreadyExistsError, match="image definition 'a' in gallery 'g' already has"):
        await catalog.update_definition(taken)
    assert await catalog.get_definition("g", "b") == definition("b", sku="two")
    # Keeping its own identifier is not a conflict with itself.
    await catalog.update_definition(dataclasses.replace(definition("b", sku="two"), description="kept"))


async def test_a_definition_with_versions_cannot_be_deleted(with_image: Catalog) -> None:
    await with_image.create_version(version("1.0.0"))
    with pytest.raises(
        PreconditionError,
        match=exactly("image definition 'img' in gallery 'g' still has 1 version; delete them first"),
    ):
        await with_image.delete_definition("g", "img")
    await with_image.create_version(version("1.0.1"))
    with pytest.raises(PreconditionError, match="still has 2 versions"):
        await with_image.delete_definition("g", "img")
    await with_image.delete_version("g", "img", v("1.0.0"))
    await with_image.delete_version("g", "img", v("1.0.1"))
    await with_image.delete_definition("g", "img")
    assert await with_image.list_definitions("g") == []


async def test_a_name_that_differs_only_in_case_is_not_found_but_named_as_the_likely_meaning(
    catalog: Catalog,
) -> None:
    await catalog.create_gallery(gallery("gal"))
    await catalog.create_definition(dataclasses.replace(definition(), gallery="gal", name="Ubuntu"))
    with pytest.raises(
        ResourceNotFoundError,
        match=exactly("gallery 'GAL' not found (names are matched exactly: did you mean 'gal'?)"),
    ):
        await catalog.get_gallery("GAL")
    with pytest.raises(
        ResourceNotFoundError,
        match=exactly(
            "image definition 'ubuntu' not found in gallery 'gal'"
            " (names are matched exactly: did you mean 'Ubuntu'?)"
        ),
    ):
        await catalog.get_definition("gal", "ubuntu")
    with pytest.raises(ResourceNotFoundError, match=exactly("gallery 'other' not found")):
        await catalog.get_gallery("other")
