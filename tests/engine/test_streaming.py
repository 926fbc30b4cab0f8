"""Publishing streams: memory stays flat however large the image is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from blobrep.core.manifest import parse_manifest
from blobrep.service import LocalStore
from tests.engine.helpers import GALLERY, MIB, NAME, manifest_path, write_synthetic

# Runs the command given in its arguments and prints the peak RSS of that child (KiB on Linux).
_MEASURE = (
    "import resource, subprocess, sys\n"
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


@pytest.mark.slow
def test_publishing_a_large_image_keeps_memory_bounded(tmp_path: Path) -> None:
    size = 256 * MIB
    image = write_synthetic(tmp_path / "image-256m.raw", size, seed=256)
    store = LocalStore(tmp_path / "replica-1")
    command = [sys.executable, "-m", "blobrep", "blob", "publish", str(image)]
    command += ["--store", str(store.root), "--gallery", GALLERY, "--name", NAME]

    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE, *command], capture_output=True, text=True, timeout=120, check=True
    )

    peak_bytes = int(measured.stdout) * 1024
    assert peak_bytes < 200 * MIB, f"publishing {size} bytes peaked at {peak_bytes / MIB:.0f} MiB"
    assert parse_manifest(manifest_path(store).read_bytes()).size == size
