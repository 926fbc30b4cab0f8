"""``blobrep region add`` never lets two regions share a directory, and an edited home is checked."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.helpers import assert_one_line_error, blobrep


def ok(cwd: Path, *args: str | Path) -> str:
    result = blobrep(*args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_region_add_on_another_regions_directory_exits_2_and_changes_nothing(tmp_path: Path) -> None:
    taken = Path(json.loads(ok(tmp_path, "region", "show", "--name", "westcentralus"))["path"])
    config = tmp_path / ".blobrep" / "blobrep.toml"
    before = config.read_text()
    for path, relation in ((taken, "is the same directory as"), (taken / "inside", "is inside")):
        result = blobrep("region", "add", "--name", "North Europe", "--path", path, cwd=tmp_path)
        assert_one_line_error(
            result,
            2,
            f"cannot add region 'northeurope': region 'northeurope' at {path} {relation}",
            f"region 'westcentralus' at {taken}:",
        )
    around = blobrep("region", "add", "--name", "North Europe", "--path", taken.parent, cwd=tmp_path)
    assert_one_line_error(around, 2, f"region 'northeurope' at {taken.parent} contains region '")
    assert config.read_text() == before
    link = tmp_path / "link"
    link.symlink_to(taken.parent, target_is_directory=True)
    linked = blobrep("region", "add", "--name", "northeurope", "--path", link / "westcentralus", cwd=tmp_path)
    assert_one_line_error(linked, 2, f"(which is {taken})", "is the same directory as region 'westcentralus'")
    home = blobrep("region", "add", "--name", "northeurope", "--path", tmp_path, cwd=tmp_path)
    assert_one_line_error(home, 2, "contains the home directory")
    assert config.read_text() == before


def test_a_hand_edited_configuration_with_two_regions_on_one_directory_is_refused(tmp_path: Path) -> None:
    ok(tmp_path, "region", "list")
    config = tmp_path / ".blobrep" / "blobrep.toml"
    text = config.read_text()
    assert 'path = "regions/eastus2"' in text
    config.write_text(text.replace('path = "regions/eastus2"', 'path = "regions/westcentralus"'))
    result = blobrep("region", "list", cwd=tmp_path)
    assert_one_line_error(
        result, 2, "blobrep.toml: region '", "'eastus2'", "'westcentralus'", "is the same directory as region"
    )
