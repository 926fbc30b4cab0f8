"""The gallery lifecycle on the command line, on a home and through a daemon alike:
``image-definition update --keep-global/--home-region/--exclude-end-of-life-from-latest``,
``image-version create --block-deletion-before-end-of-life``, end-of-life dates marked
``(past)`` in listings, and the seed's scenario (versions 1.0.0 .. 1.0.5 in three regions,
two kept global) on local regions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from blobrep.core.definitions import format_datetime
from blobrep.service import SyntheticImage
from tests.cli.helpers import assert_one_line_error, blobrep
from tests.cli.remote_twins import DEFINITION, Twins, both, comparable, prepare_twins, same, same_failure

FUTURE = format_datetime(datetime.now(UTC) + timedelta(days=40))
PAST = format_datetime(datetime.now(UTC) - timedelta(days=2))


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twins]:
    yield from prepare_twins(tmp_path_factory)


def created(twins: Twins, *args: str | Path) -> dict[str, object]:
    """Create a version both ways; the documents must agree but for the publish's timings."""
    there, here = both(twins, *args)
    assert (there.returncode, there.stderr) == (here.returncode, here.stderr) == (0, ""), here.stderr
    documents = [json.loads(comparable(result.stdout)) for result in (there, here)]
    for document in documents:
        document.pop("publish")
    assert documents[0] == documents[1]
    made: dict[str, object] = documents[1]
    return made


def test_a_retention_policy_is_set_shown_and_removed_alike_on_a_home_and_a_daemon(twins: Twins) -> None:
    update = ("sig", "image-definition", "update", *DEFINITION)
    shown = json.loads(same(twins, *update, "--keep-global", "2", "--home-region", "West Central US").stdout)
    assert shown["retentionPolicy"] == {"keepGlobal": 2, "homeRegion": "westcentralus"}
    table = same(twins, "-o", "table", "sig", "image-definition", "show", *DEFINITION).stdout
    assert "keep 2 global, then westcentralus" in table
    line = same_failure(twins, *update, "--home-region", "mars", code=2)
    assert "unknown region 'mars'" in line
    assert json.loads(same(twins, *update, "--keep-global", "0").stdout)["retentionPolicy"] is None
    assert "from 0 to 1000" in same_failure(twins, *update, "--keep-global", "-1", code=2)


def test_a_guarded_version_is_not_deleted_before_its_end_of_life_anywhere(twins: Twins) -> None:
    create = ("sig", "image-version", "create", *DEFINITION, "-e", "2.0.0", "--source", twins.image)
    guard = ("--end-of-life-date", FUTURE, "--block-deletion-before-end-of-life")
    made = created(twins, *create, *guard)
    assert made["safetyProfile"] == {
        "allowDeletionOfReplicatedLocations": False,
        "blockDeletionBeforeEndOfLife": True,
    }
    line = same_failure(twins, "sig", "image-version", "delete", *DEFINITION, "-e", "2.0.0", code=1)
    assert f"before its end of life, {FUTURE}" in line
    lift = ("sig", "image-version", "update", *DEFINITION, "-e", "2.0.0")
    same(twins, *lift, "--block-deletion-before-end-of-life", "false")
    same(twins, "sig", "image-version", "delete", *DEFINITION, "-e", "2.0.0")
    bare = ("sig", "image-version", "create", *DEFINITION, "-e", "2.0.1", "--source", str(twins.image))
    line = same_failure(twins, *bare, "--block-deletion-before-end-of-life", code=2)
    assert "no end-of-life date" in line


def test_a_past_end_of_life_shows_as_such_and_latest_skips_it_when_asked(twins: Twins) -> None:
    create = ("sig", "image-version", "create", *DEFINITION, "-e", "3.0.0", "--source", twins.image)
    created(twins, *create, "--end-of-life-date", PAST)
    listing = same(twins, "-o", "table", "sig", "image-version", "list", *DEFINITION).stdout
    row = next(line for line in listing.splitlines() if line.startswith("3.0.0"))
    assert f"{PAST} (past)" in row
    latest = ("sig", "image-version", "show", *DEFINITION, "-e", "latest")
    assert json.loads(same(twins, *latest).stdout)["name"] == "3.0.0"
    update = ("sig", "image-definition", "update", *DEFINITION, "--exclude-end-of-life-from-latest")
    assert json.loads(same(twins, *update).stdout)["excludeEndOfLifeFromLatest"] is True
    assert json.loads(same(twins, *latest).stdout)["name"] != "3.0.0"


# --- the seed's scenario, end to end on local regions ----------------------------------------------


def run(cwd: Path, *args: str | Path) -> str:
    result = blobrep(*args, cwd=cwd, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_seed_scenario_on_the_command_line(tmp_path: Path) -> None:
    run(tmp_path, "sig", "create", "-r", "gal", "--location", "westcentralus")
    fields = ("--publisher", "p", "--offer", "o", "--sku", "s", "--os-type", "Linux")
    run(
        tmp_path, "sig", "image-definition", "create", "-r", "gal", "-i", "img", *fields, "--keep-global", "2"
    )
    targets = ("--target-regions", "westcentralus", "eastus2", "westeurope")
    sources: dict[str, bytes] = {}
    for patch in range(6):
        number = f"1.0.{patch}"
        source = tmp_path / f"{number}.raw"
        sources[number] = b"".join(SyntheticImage(1024 * 1024, seed=300 + patch).blocks())
        source.write_bytes(sources[number])
        create = (
            "sig",
            "image-version",
            "create",
            "-r",
            "gal",
            "-i",
            "img",
            "-e",
            number,
            "--source",
            source,
        )
        run(tmp_path, *create, *targets, "--allow-replicated-location-deletion")
    listing = json.loads(run(tmp_path, "sig", "image-version", "list", "-r", "gal", "-i", "img"))
    regions = {
        version["name"]: [target["name"] for target in version["publishingProfile"]["targetRegions"]]
        for version in listing
    }
    everywhere = ["westcentralus", "eastus2", "westeurope"]
    assert regions == {
        **{f"1.0.{patch}": ["westcentralus"] for patch in range(4)},
        "1.0.4": everywhere,
        "1.0.5": everywhere,
    }
    assert all(version["retention"]["shrunk"] for version in listing if version["name"] < "1.0.4")
    table = run(tmp_path, "-o", "table", "sig", "image-version", "list", "-r", "gal", "-i", "img")
    assert table.count("shrunk to westcentralus (keep-global 2") == 4
    for region in everywhere:
        latest = ("sig", "image-version", "show", "-r", "gal", "-i", "img", "-e", "latest", "-l", region)
        assert json.loads(run(tmp_path, *latest))["name"] == "1.0.5"
    for number, data in sources.items():
        disk = tmp_path / f"vm-{number}.img"
        image = f"/galleries/gal/images/img/versions/{number}"
        run(tmp_path, "vm", "create", "--image", image, "-l", "westcentralus", "--output", disk)
        assert disk.read_bytes() == data, number
    old = blobrep(
        "vm", "create", "--image", "/galleries/gal/images/img/versions/1.0.0", "-l", "eastus2", cwd=tmp_path
    )
    assert_one_line_error(old, 1, "eastus2")
    assert json.loads(run(tmp_path, "fsck"))["ok"] is True

    # 1.0.5 is withdrawn: 1.0.3 is among the two newest again, grown back and replicated by
    # the same command, and deploys exact where it had been removed.
    run(tmp_path, "sig", "image-version", "delete", "-r", "gal", "-i", "img", "-e", "1.0.5")
    show = (
        "sig",
        "image-version",
        "show",
        "-r",
        "gal",
        "-i",
        "img",
        "-e",
        "1.0.3",
        "--expand",
        "ReplicationStatus",
    )
    grown = json.loads(run(tmp_path, *show))
    assert [target["name"] for target in grown["publishingProfile"]["targetRegions"]] == everywhere
    assert grown["replicationStatus"]["aggregatedState"] == "Completed"
    assert grown["retention"]["details"].startswith("grown back to eastus2, westeurope (keep-global 2")
    for region in everywhere:
        latest = ("sig", "image-version", "show", "-r", "gal", "-i", "img", "-e", "latest", "-l", region)
        assert json.loads(run(tmp_path, *latest))["name"] == "1.0.4"
    disk = tmp_path / "vm-grown.img"
    run(
        tmp_path,
        "vm",
        "create",
        "--image",
        "/galleries/gal/images/img/versions/1.0.3",
        "-l",
        "westeurope",
        "--output",
        disk,
    )
    assert disk.read_bytes() == sources["1.0.3"]
    assert json.loads(run(tmp_path, "fsck"))["ok"] is True
