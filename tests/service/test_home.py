"""A fresh home works with no configuration, and its configuration is validated like input."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from blobrep.errors import (
    AlreadyExistsError,
    InvalidParameterError,
    InvalidRegionError,
    ResourceNotFoundError,
    StorageError,
)
from blobrep.service import GalleryService
from blobrep.service.home import Home, RegionConfig, parse_config, render_config

DEFAULTS = {"eastus2", "southcentralus", "southeastasia", "westcentralus", "westeurope"}


async def test_fresh_home_has_default_local_regions_and_a_bootstrap_admin(tmp_path: Path) -> None:
    async with await GalleryService.open(tmp_path / "home") as service:
        regions = await service.list_regions(service.bootstrap_admin)
        assert {region.name for region in regions} == DEFAULTS
        assert all(region.kind == "local" and region.replicas == 0 for region in regions)
        assert all(
            region.path is not None and region.path.is_relative_to(tmp_path / "home" / "regions")
            for region in regions
        )
        assert service.bootstrap_admin == "admin"
    assert (tmp_path / "home" / "blobrep.toml").is_file()
    assert (tmp_path / "home" / "catalog.db").is_file()


async def test_reopening_a_home_keeps_its_regions_and_admin(tmp_path: Path) -> None:
    async with await GalleryService.open(tmp_path) as service:
        await service.add_region("admin", "North Europe")
    async with await GalleryService.open(tmp_path) as service:
        names = {region.name for region in await service.list_regions("admin")}
        assert names == DEFAULTS | {"northeurope"}
        shown = await service.show_region("admin", "north europe")
        assert shown.display_name == "North Europe"


async def test_adding_an_existing_region_is_a_conflict_under_any_spelling(service: GalleryService) -> None:
    with pytest.raises(AlreadyExistsError, match=r"eastus2"):
        await service.add_region("admin", "East US 2")


async def test_region_add_with_an_explicit_path(service: GalleryService, tmp_path: Path) -> None:
    region = await service.add_region("admin", "japaneast", path=tmp_path / "elsewhere")
    assert region.path == tmp_path / "elsewhere"
    assert (await service.show_region("admin", "japaneast")).path == tmp_path / "elsewhere"


async def test_unknown_region_is_named_with_the_known_ones(service: GalleryService) -> None:
    with pytest.raises(ResourceNotFoundError, match=r"'mars'.*eastus2"):
        await service.show_region("admin", "mars")


async def test_a_malformed_region_name_is_refused(service: GalleryService) -> None:
    with pytest.raises(InvalidRegionError):
        await service.add_region("admin", "west/us")


def test_config_renders_and_parses_back(tmp_path: Path) -> None:
    home = Home(tmp_path)
    regions = home.default_regions()
    text = render_config(regions, home.root)
    assert parse_config(text, home.root, home.config_path) == regions
    assert 'path = "regions/eastus2"' in text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[regions.eastus2\n", "not valid TOML"),
        ("[other]\nx = 1\n", "unknown section"),
        ('[regions.eastus2]\ndisplay_name = "East US 2"\nkind = "ftp"\npath = "x"\n', "kind 'ftp'"),
        (
            '[regions.eastus2]\ndisplay_name = "East US 2"\nkind = "s3"\npath = "x"\n',
            r"unknown key.*'path'.*s3 region",
        ),
        ('[regions.eastus2]\ndisplay_name = "East US 2"\nkind = "s3"\n', "'url' must be"),
        (
            '[regions.eastus2]\ndisplay_name = "East US 2"\nkind = "s3"\nurl = "az://images/p"\n',
            "s3://BUCKET",
        ),
        (
            '[regions.eastus2]\ndisplay_name = "East US 2"\nkind = "azure"\nurl = "az://images/p"\n'
            'profile = "lab"\n',
            r"profile 'lab' is not a \[profiles.NAME\].*profiles: none",
        ),
        (
            '[regions.eastus2]\ndisplay_name = "East US 2"\nkind = "s3"\nurl = "s3://images"\n'
            'profile = "lab"\n[profiles.lab]\naccount_key = "k"\n',
            r"unknown key.*'account_key'.*s3 region",
        ),
        ("[profiles.lab]\nendpoint = 5\n", "must be a string or true/false"),
        ('[regions.eastus2]\ndisplay_name = "West US"\nkind = "local"\npath = "x"\n', "does not spell"),
        ('[regions.eastus2]\ndisplay_name = "East US 2"\nkind = "local"\n', "'path'"),
        ('[regions.EastUS2]\ndisplay_name = "East US 2"\nkind = "local"\npath = "x"\n', "short name"),
        (
            '[regions.eastus2]\ndisplay_name = "East US 2"\nkind = "local"\npath = "x"\ncolor = 1\n',
            "unknown key",
        ),
    ],
)
def test_a_bad_configuration_says_what_is_wrong(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(InvalidParameterError, match=fragment):
        parse_config(text, tmp_path, tmp_path / "blobrep.toml")


async def test_a_configuration_that_is_not_text_is_named_in_words(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    home.ensure()
    home.config_path.write_bytes(b'[regions.eastus]\nkind = "local\xff"\n')
    with pytest.raises(StorageError) as caught:
        home.load_regions()
    assert str(caught.value).startswith(f"cannot read {home.config_path}: it is not UTF-8 text (byte ")
    home.config_path.unlink()
    home.config_path.mkdir()
    with pytest.raises(StorageError) as directory:
        home.load_regions()
    assert str(directory.value) == f"cannot read {home.config_path}: it is a directory"


# --- a configuration read once, and read again when it changes ----------------------------------------


def test_an_edited_configuration_is_seen_at_once_by_a_home_that_read_it(tmp_path: Path) -> None:
    """A daemon keeps one Home: an edit of blobrep.toml beside it takes effect on the next call."""
    home = Home(tmp_path)
    home.ensure()
    assert set(home.load_regions()) == DEFAULTS
    regions = home.load_regions()
    regions["northeurope"] = RegionConfig("northeurope", "North Europe", "local", tmp_path / "ne")
    Home(tmp_path).save_regions(regions)  # another process writes the file
    assert set(home.load_regions()) == DEFAULTS | {"northeurope"}
    home.config_path.write_text("not = [toml", encoding="utf-8")
    with pytest.raises(InvalidParameterError, match=r"blobrep\.toml"):
        home.load_regions()


def test_a_region_directory_swapped_for_a_link_is_refused_once_the_paths_are_checked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file unchanged, the paths are resolved again after REVALIDATE_AFTER seconds."""
    from blobrep.service import home as home_module

    assert home_module.REVALIDATE_AFTER <= 5, "a swapped directory is seen within seconds"
    home = Home(tmp_path)
    home.ensure()
    regions = home.load_regions()
    east, west = regions["eastus2"].path, regions["westeurope"].path
    assert east is not None and west is not None
    west.mkdir(parents=True)
    east.parent.mkdir(parents=True, exist_ok=True)
    east.symlink_to(west)  # eastus2 now stores into westeurope's directory
    assert set(home.load_regions()) == DEFAULTS, "within the interval, the checked paths are reused"
    later = time.monotonic() + home_module.REVALIDATE_AFTER + 1
    monkeypatch.setattr(time, "monotonic", lambda: later)
    with pytest.raises(
        InvalidParameterError,
        match=r"region 'eastus2'.*region 'westeurope'|region 'westeurope'.*region 'eastus2'",
    ):
        home.load_regions()
