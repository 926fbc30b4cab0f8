"""``blobrep demo``: the quick start's main job works end to end and says what it did."""

from __future__ import annotations

import json
from pathlib import Path

from blobrep.service import BlobService, LocalStore
from tests.cli.helpers import blobrep


def test_the_demo_publishes_restores_and_verifies_in_its_home(tmp_path: Path) -> None:
    home = tmp_path / "home"

    result = blobrep("--home", home, "-o", "json", "demo", "--size", "24MiB", cwd=tmp_path, timeout=120)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    steps = [row["step"] for row in report["steps"]]
    assert steps == [
        "make image 1.0.0",
        "publish 1.0.0",
        "restore 1.0.0",
        "verify 1.0.0",
        "make image 1.0.1",
        "publish 1.0.1",
        "resolve latest",
    ]
    latest = report["steps"][-1]["result"]
    assert latest.endswith("latest in westcentralus is 1.0.1")
    restored = home / "demo" / "restored-1.0.0.img"
    assert restored.read_bytes() == (home / "demo" / "ubuntu-server-1.0.0.img").read_bytes()


async def test_what_the_demo_publishes_is_an_ordinary_verified_blob(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = blobrep("--home", home, "demo", "--size", "8MiB", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "publish 1.0.1" in result.stdout  # a table for people by default

    replica = LocalStore(home / "regions" / "westcentralus" / "replica-1")
    for version in ("1.0.0", "1.0.1"):
        report = await BlobService().verify(replica, "demo_gallery", f"ubuntu-server/versions/{version}")
        assert report.ok
        assert report.checked_chunks > 0


def test_running_the_demo_again_writes_nothing_new(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = blobrep("--home", home, "-o", "json", "demo", "--size", "8MiB", cwd=tmp_path, timeout=120)
    assert first.returncode == 0, first.stderr

    again = blobrep("--home", home, "-o", "json", "demo", "--size", "8MiB", cwd=tmp_path, timeout=120)

    assert again.returncode == 0, again.stderr
    rows = {row["step"]: row for row in json.loads(again.stdout)["steps"]}
    assert "make image 1.0.0" not in rows  # the image is reused
    assert rows["publish 1.0.0"]["result"].endswith("wrote 0 B")
