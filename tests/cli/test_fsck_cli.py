"""``blobrep fsck``: exit 1 with one line while problems are left, 0 once repaired."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.helpers import assert_one_line_error, blobrep, home_with_a_version


def test_fsck_fails_with_one_line_until_repair_fixes_a_lost_manifest(tmp_path: Path, image: Path) -> None:
    home = home_with_a_version(tmp_path, image)
    assert blobrep("--home", home, "fsck", cwd=tmp_path).returncode == 0
    manifest = home / "regions/westcentralus/replica-1/galleries/gal/images/disk/versions/1.0.0/manifest.json"
    manifest.unlink()

    found = blobrep("--home", home, "-o", "json", "fsck", "-r", "gal", cwd=tmp_path)
    assert found.returncode == 1
    assert found.stderr.splitlines() == [found.stderr.strip()]
    assert found.stderr.startswith("blobrep: error: 1 problem(s) left")
    document = json.loads(found.stdout)
    assert [(p["kind"], p["replica"]) for p in document["problems"]] == [
        ("manifest", "westcentralus/replica-1")
    ]

    repaired = blobrep("--home", home, "fsck", "-r", "gal", "--repair", cwd=tmp_path)
    assert repaired.returncode == 0, repaired.stderr
    assert manifest.exists()
    assert blobrep("--home", home, "fsck", cwd=tmp_path).returncode == 0


def test_fsck_of_an_unknown_gallery_or_region_is_refused(tmp_path: Path, image: Path) -> None:
    home = home_with_a_version(tmp_path, image)
    assert_one_line_error(blobrep("--home", home, "fsck", "-r", "nope", cwd=tmp_path), 1, "nope")
    assert_one_line_error(blobrep("--home", home, "fsck", "-l", "nowhere", cwd=tmp_path), 1, "nowhere")
