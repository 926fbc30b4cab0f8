"""Two regions never share storage, and no region holds the home.

Removing a region from a version's targets deletes that region's replicas; if another region
kept its replicas in the same directory, the data it serves would go with them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from blobrep.errors import InvalidParameterError
from blobrep.service import GalleryService
from blobrep.service.home import Home, Place, storage_problem
from tests.service.conftest import ADMIN


async def region_path(service: GalleryService, name: str) -> Path:
    path = (await service.show_region(ADMIN, name)).path
    assert path is not None, f"{name} is a local region"
    return path


async def region_names(service: GalleryService) -> set[str]:
    return {region.name for region in await service.list_regions(ADMIN)}


async def test_a_region_on_another_regions_directory_is_refused(service: GalleryService) -> None:
    taken = await region_path(service, "westcentralus")
    before = (service.home / "blobrep.toml").read_text()
    with pytest.raises(
        InvalidParameterError,
        match=rf"cannot add region 'northeurope': region 'northeurope' at {re.escape(str(taken))} is the same"
        rf" directory as region 'westcentralus' at {re.escape(str(taken))}: two regions never share storage",
    ):
        await service.add_region(ADMIN, "North Europe", path=taken)
    assert "northeurope" not in await region_names(service)
    assert (service.home / "blobrep.toml").read_text() == before
    # A sibling whose name starts the same is a directory of its own.
    await service.add_region(ADMIN, "North Europe", path=taken.with_name("westcentral"))
    assert "northeurope" in await region_names(service)


async def test_a_region_inside_another_regions_directory_is_refused(service: GalleryService) -> None:
    taken = await region_path(service, "eastus2")
    with pytest.raises(
        InvalidParameterError,
        match=rf"region 'japaneast' at {re.escape(str(taken / 'nested'))} is inside region 'eastus2' at",
    ):
        await service.add_region(ADMIN, "japaneast", path=taken / "nested")
    assert "japaneast" not in await region_names(service)


async def test_a_region_containing_another_regions_directory_is_refused(
    service: GalleryService, tmp_path: Path
) -> None:
    await service.add_region(ADMIN, "japaneast", path=tmp_path / "outer" / "japan")
    with pytest.raises(
        InvalidParameterError,
        match=rf"region 'ukwest' at {re.escape(str(tmp_path / 'outer'))} contains region 'japaneast' at"
        rf" {re.escape(str(tmp_path / 'outer' / 'japan'))}",
    ):
        await service.add_region(ADMIN, "ukwest", path=tmp_path / "outer")
    with pytest.raises(InvalidParameterError, match=r"region 'ukwest' at .* contains region '"):
        await service.add_region(ADMIN, "ukwest", path=service.home / "regions")
    assert "ukwest" not in await region_names(service)


async def test_a_symbolic_link_to_another_regions_directory_is_refused(
    service: GalleryService, tmp_path: Path
) -> None:
    taken = await region_path(service, "westeurope")
    taken.mkdir(parents=True)
    link = tmp_path / "looks-new"
    link.symlink_to(taken, target_is_directory=True)
    with pytest.raises(
        InvalidParameterError,
        match=rf"region 'northeurope' at {re.escape(f'{link} (which is {taken})')} is the same directory as"
        " region 'westeurope'",
    ):
        await service.add_region(ADMIN, "northeurope", path=link)
    parent = tmp_path / "regions-link"
    parent.symlink_to(taken.parent, target_is_directory=True)
    with pytest.raises(InvalidParameterError, match=r"region 'northeurope' at .* region 'westeurope'"):
        await service.add_region(ADMIN, "northeurope", path=parent / "westeurope" / "sub")
    assert "northeurope" not in await region_names(service)


async def test_a_region_may_not_hold_the_home(service: GalleryService) -> None:
    home = service.home
    with pytest.raises(
        InvalidParameterError, match=rf"region 'japaneast' at {re.escape(str(home.parent))} contains the home"
    ):
        await service.add_region(ADMIN, "japaneast", path=home.parent)
    with pytest.raises(
        InvalidParameterError, match=rf"region 'japaneast' at {re.escape(str(home))} is the home directory"
    ):
        await service.add_region(ADMIN, "japaneast", path=home)
    with pytest.raises(InvalidParameterError, match=r"is the home's file .*catalog\.db"):
        await service.add_region(ADMIN, "japaneast", path=home / "catalog.db")
    with pytest.raises(InvalidParameterError, match=r"is inside the home's file .*catalog\.db"):
        await service.add_region(ADMIN, "japaneast", path=home / "catalog.db" / "x")
    assert "japaneast" not in await region_names(service)


CONFIG = """\
[regions.westcentralus]
display_name = "West Central US"
kind = "local"
path = "regions/westcentralus"

[regions.eastus2]
display_name = "East US 2"
kind = "local"
path = "{path}"
"""


@pytest.mark.parametrize(
    ("path", "relation"),
    [
        ("regions/westcentralus", "is the same directory as"),
        ("regions/../regions/westcentralus", "is the same directory as"),
        ("regions/westcentralus/eastus2", "is inside"),
        ("regions", "contains"),
    ],
)
async def test_a_hand_edited_configuration_sharing_a_directory_is_refused_on_open(
    tmp_path: Path, path: str, relation: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "blobrep.toml").write_text(CONFIG.format(path=path))
    with pytest.raises(
        InvalidParameterError,
        match=rf"blobrep\.toml: region 'eastus2' at .* {relation} region 'westcentralus' at"
        rf" {re.escape(str(home / 'regions' / 'westcentralus'))}",
    ):
        Home(home).load_regions()
    async with await GalleryService.open(home) as service:
        with pytest.raises(InvalidParameterError, match=r"'eastus2' .* 'westcentralus'"):
            await service.list_regions(ADMIN)


async def test_a_configured_symbolic_link_into_another_region_is_refused_on_open(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "regions" / "westcentralus").mkdir(parents=True)
    (tmp_path / "link").symlink_to(home / "regions" / "westcentralus", target_is_directory=True)
    (home / "blobrep.toml").write_text(CONFIG.format(path=tmp_path / "link"))
    with pytest.raises(
        InvalidParameterError,
        match=rf"region 'eastus2' at {re.escape(str(tmp_path / 'link'))} \(which is .*westcentralus\) is the"
        " same directory as region 'westcentralus'",
    ):
        Home(home).load_regions()


def place(text: str) -> Place:
    return Place(Path(text), Path(text))


@pytest.mark.parametrize(
    ("paths", "found"),
    [
        ({"a": "/r/a", "b": "/r/b"}, None),
        ({"east": "/r/east", "eastus2": "/r/eastus2"}, None),
        ({"a": "/r/a", "b": "/r/a"}, "region 'b' at /r/a is the same directory as region 'a' at /r/a"),
        ({"a": "/r/a", "b": "/r/a/b"}, "region 'b' at /r/a/b is inside region 'a' at /r/a"),
        ({"a": "/r/a", "b": "/r"}, "region 'b' at /r contains region 'a' at /r/a"),
        ({"a": "/"}, "region 'a' at / contains the home directory /h"),
        ({"a": "/h/catalog.db"}, "region 'a' at /h/catalog.db is the home's file /h/catalog.db"),
    ],
)
def test_storage_problems_are_decided_from_resolved_paths(paths: dict[str, str], found: str | None) -> None:
    regions = {name: place(path) for name, path in paths.items()}
    problem = storage_problem(regions, place("/h"), [place("/h/blobrep.toml"), place("/h/catalog.db")])
    if found is None:
        assert problem is None
    else:
        assert problem is not None and problem.startswith(found)


def test_a_link_resolving_to_another_region_is_named_with_both_spellings() -> None:
    regions = {"a": place("/r/a"), "b": Place(Path("/links/b"), Path("/r/a"))}
    problem = storage_problem(regions, place("/h"), [])
    assert problem is not None
    assert problem.startswith(
        "region 'b' at /links/b (which is /r/a) is the same directory as region 'a' at /r/a"
    )
