"""``latest`` resolves per region, among versions Completed there and not excluded."""

from __future__ import annotations

from pathlib import Path

import pytest

from blobrep.errors import InvalidNameError, ResourceNotFoundError
from blobrep.service import GalleryService, VersionOptions
from tests.service.conftest import ADMIN, GALLERY


async def test_latest_is_the_highest_completed_version_numerically(
    service: GalleryService, definition: str, source: Path
) -> None:
    for number in ("1.0.9", "1.0.12", "1.0.10"):
        await service.create_version(ADMIN, GALLERY, definition, number, source=source)
    latest = await service.show_version(ADMIN, GALLERY, definition, "latest")
    assert str(latest.version) == "1.0.12"


async def test_latest_skips_excluded_versions_and_the_regional_flag_wins(
    service: GalleryService, definition: str, source: Path
) -> None:
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source)
    await service.create_version(
        ADMIN, GALLERY, definition, "2.0.0", source=source, options=VersionOptions(exclude_from_latest=True)
    )
    assert str((await service.show_version(ADMIN, GALLERY, definition, "latest")).version) == "1.0.0"
    await service.update_version(
        ADMIN,
        GALLERY,
        definition,
        "2.0.0",
        VersionOptions(regional_exclude_from_latest={"West Central US": False}),
    )
    assert str((await service.show_version(ADMIN, GALLERY, definition, "latest")).version) == "2.0.0"


async def test_latest_never_names_a_version_the_region_cannot_serve(
    service: GalleryService, definition: str, source: Path
) -> None:
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source, location="eastus2")
    options = VersionOptions(target_regions=["westcentralus", "eastus2"])
    await service.create_version(ADMIN, GALLERY, definition, "1.1.0", source=source, options=options)
    # 1.1.0 is Completed in its source region only; eastus2 is still waiting for it.
    in_eastus2 = await service.show_version(ADMIN, GALLERY, definition, "latest", location="East US 2")
    assert str(in_eastus2.version) == "1.0.0"
    in_home = await service.show_version(ADMIN, GALLERY, definition, "latest")
    assert str(in_home.version) == "1.1.0"


async def test_no_usable_version_says_why_each_was_skipped(
    service: GalleryService, definition: str, source: Path
) -> None:
    await service.create_version(
        ADMIN, GALLERY, definition, "1.0.0", source=source, options=VersionOptions(exclude_from_latest=True)
    )
    with pytest.raises(ResourceNotFoundError, match=r"1.0.0.*exclude"):
        await service.show_version(ADMIN, GALLERY, definition, "latest")
    with pytest.raises(ResourceNotFoundError, match=r"westeurope"):
        await service.show_version(ADMIN, GALLERY, definition, "latest", location="westeurope")


async def test_a_definition_id_and_its_latest_form_both_resolve_to_latest(
    service: GalleryService, definition: str, source: Path
) -> None:
    for number in ("1.0.0", "1.2.0"):
        await service.create_version(ADMIN, GALLERY, definition, number, source=source)
    base = f"/galleries/{GALLERY}/images/{definition}"
    for reference in (base, f"{base}/versions/latest"):
        resolved = await service.resolve_image(ADMIN, reference, location="westcentralus")
        assert str(resolved.version) == "1.2.0"
    pinned = await service.resolve_image(ADMIN, f"{base}/versions/1.0.0")
    assert str(pinned.version) == "1.0.0"


async def test_an_image_reference_must_name_an_image(service: GalleryService, definition: str) -> None:
    with pytest.raises(InvalidNameError, match="names a gallery"):
        await service.resolve_image(ADMIN, f"/galleries/{GALLERY}")
    with pytest.raises(InvalidNameError, match="resource id"):
        await service.resolve_image(ADMIN, "ubuntu")
