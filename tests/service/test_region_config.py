"""Object regions in ``blobrep.toml``: parsed, rendered back, profiles kept, secrets never shown."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from blobrep.errors import InvalidParameterError
from blobrep.service.home import Home, object_storage_problem
from blobrep.service.region_config import RegionConfig, parse_config, parse_profiles, render_config
from blobrep.storage.object_url import ObjectUrl

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"

CONFIG = f"""
[regions.northeurope]
display_name = "North Europe"
kind = "s3"
url = "s3://images/blobrep"
profile = "lab"

[regions.westus]
display_name = "West US"
kind = "azure"
url = "az://disks"

[regions.eastus2]
display_name = "East US 2"
kind = "local"
path = "regions/eastus2"

[profiles.lab]
endpoint = "http://127.0.0.1:8333"
access_key_id = "lab"
secret_access_key = "{SECRET}"
allow_http = true
"""


def test_object_regions_parse_with_their_profile_resolved(tmp_path: Path) -> None:
    regions = parse_config(CONFIG, tmp_path, tmp_path / "blobrep.toml")
    north = regions["northeurope"]
    assert (north.kind, north.path, north.url) == ("s3", None, ObjectUrl.parse("s3://images/blobrep"))
    assert north.options == {
        "endpoint": "http://127.0.0.1:8333",
        "access_key_id": "lab",
        "secret_access_key": SECRET,
        "allow_http": "true",
    }
    assert north.location == "s3://images/blobrep"
    assert regions["westus"].options == {} and regions["westus"].profile is None
    assert regions["eastus2"].path == tmp_path / "regions" / "eastus2"


def test_a_region_never_shows_its_profiles_secrets(tmp_path: Path) -> None:
    north = parse_config(CONFIG, tmp_path, tmp_path / "blobrep.toml")["northeurope"]
    assert SECRET not in repr(north)
    assert SECRET not in str(north)


def test_object_regions_and_profiles_render_and_parse_back(tmp_path: Path) -> None:
    source = tmp_path / "blobrep.toml"
    regions = parse_config(CONFIG, tmp_path, source)
    profiles = parse_profiles(CONFIG, source)
    text = render_config(regions, tmp_path, profiles)
    assert parse_config(text, tmp_path, source) == regions
    assert parse_profiles(text, source) == profiles


def test_adding_a_region_keeps_the_profiles_and_makes_the_file_private(tmp_path: Path) -> None:
    home = Home(tmp_path)
    home.ensure()
    home.config_path.write_text(CONFIG)
    regions = home.load_regions()
    regions["japaneast"] = RegionConfig("japaneast", "Japan East", "local", tmp_path / "japan")
    home.save_regions(regions)
    assert set(home.load_regions()) == {"northeurope", "westus", "eastus2", "japaneast"}
    assert home.load_regions()["northeurope"].options["secret_access_key"] == SECRET
    assert stat.S_IMODE(home.config_path.stat().st_mode) == 0o600, "a file with credentials is its owner's"


def _object(name: str, url: str, *, profile: str | None = None, endpoint: str | None = None) -> RegionConfig:
    parsed = ObjectUrl.parse(url)
    options = {} if endpoint is None else {"endpoint": endpoint}
    return RegionConfig(name, name, parsed.kind, None, parsed, profile, options)


@pytest.mark.parametrize(
    ("first", "second", "relation"),
    [
        ("s3://images/a", "s3://images/a", "is the same place as"),
        ("s3://images/a", "s3://images/a/b", "overlaps"),
        ("s3://images/a/b", "s3://images", "overlaps"),
        ("az://disks", "az://disks/x", "overlaps"),
    ],
)
def test_two_object_regions_never_share_a_prefix(first: str, second: str, relation: str) -> None:
    regions = {"one": _object("one", first), "two": _object("two", second)}
    problem = object_storage_problem(regions)
    assert problem is not None
    assert f"region 'two' at {ObjectUrl.parse(second)} {relation} region 'one'" in problem


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (_object("one", "s3://images/a"), _object("two", "s3://images/ab")),  # a sibling, not inside
        (_object("one", "s3://images/a"), _object("two", "s3://other/a")),
        (_object("one", "s3://images/a"), _object("two", "az://images/a")),
        (_object("one", "s3://images/a"), _object("two", "s3://images/a", endpoint="http://elsewhere:9000")),
    ],
)
def test_object_regions_on_different_places_may_coexist(first: RegionConfig, second: RegionConfig) -> None:
    assert object_storage_problem({"one": first, "two": second}) is None


def test_a_home_refuses_two_object_regions_on_one_prefix(tmp_path: Path) -> None:
    home = Home(tmp_path)
    home.ensure()
    home.config_path.write_text(
        '[regions.northeurope]\ndisplay_name = "North Europe"\nkind = "s3"\nurl = "s3://images/x"\n'
        '[regions.westus]\ndisplay_name = "West US"\nkind = "s3"\nurl = "s3://images/x/y"\n'
    )
    with pytest.raises(InvalidParameterError, match=r"westus.*overlaps region 'northeurope'"):
        home.load_regions()
