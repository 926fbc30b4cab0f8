"""A damaged only replica: ``vm create`` says so in one line, exits 1 and leaves no output."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.cli.helpers import assert_one_line_error, blobrep
from tests.stored_frames import frames

REPLICA = "regions/westcentralus/replica-1"
VERSIONS = f"{REPLICA}/galleries/gal/images/disk/versions"


@pytest.fixture
def home(tmp_path: Path, image: Path) -> Path:
    home = tmp_path / "home"
    other = tmp_path / "other.raw"
    data = bytearray(image.read_bytes())
    data[: 1 << 20] = os.urandom(1 << 20)
    other.write_bytes(bytes(data))
    for args in (
        ("sig", "create", "-r", "gal", "-l", "westcentralus"),
        ("sig", "image-definition", "create", "-r", "gal", "-i", "disk", "--publisher", "p", "--offer", "o",
         "--sku", "s", "--os-type", "Linux"),
        ("sig", "image-version", "create", "-r", "gal", "-i", "disk", "-e", "1.0.0", "--source", image),
        ("sig", "image-version", "create", "-r", "gal", "-i", "disk", "-e", "1.0.1", "--source", other),
    ):  # fmt: skip
        result = blobrep("--home", home, *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    return home


def _pack(home: Path) -> Path:
    """The pack holding the first chunk version 1.0.0 names (1.0.1 has chunks of its own)."""
    frame = next(iter(frames(home / REPLICA, "gal", home / VERSIONS / "1.0.0" / "manifest.json").values()))
    assert frame.packed
    return frame.path


@pytest.mark.parametrize("fault", ["swapped manifest", "linked version", "fifo manifest", "fifo pack"])
def test_vm_create_from_a_damaged_only_replica_fails_in_one_line_and_writes_nothing(
    home: Path, tmp_path: Path, fault: str
) -> None:
    versions = home / VERSIONS
    if fault == "swapped manifest":
        shutil.copyfile(versions / "1.0.1" / "manifest.json", versions / "1.0.0" / "manifest.json")
    elif fault == "linked version":
        shutil.rmtree(versions / "1.0.0")
        (versions / "1.0.0").symlink_to(versions / "1.0.1")
    elif fault == "fifo manifest":
        (versions / "1.0.0" / "manifest.json").unlink()
        os.mkfifo(versions / "1.0.0" / "manifest.json")
    else:
        pack = _pack(home)
        pack.unlink()
        os.mkfifo(pack)
    output = tmp_path / "out" / "vm.img"
    output.parent.mkdir()

    result = blobrep(
        "--home", home, "vm", "create", "--image", "/galleries/gal/images/disk/versions/1.0.0",
        "--output", output, cwd=tmp_path, timeout=60,
    )  # fmt: skip

    assert_one_line_error(result, 1, "westcentralus/replica-1")
    assert list(output.parent.iterdir()) == []
