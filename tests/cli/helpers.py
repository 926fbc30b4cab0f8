"""Running the real ``blobrep`` command and looking at what it left on disk."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Final

GALLERY: Final = "gallery1"
NAME: Final = "img/versions/1.0.0"


def blobrep(
    *args: str | Path, cwd: Path, timeout: float = 60, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m blobrep ARGS`` in ``cwd`` and capture its output.

    No ``BLOBREP_*`` variable of the caller's environment reaches the command; ``env`` adds
    variables (``BLOBREP_AS`` for one) on top of what is left.
    """
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("BLOBREP_")}
    return subprocess.run(
        [sys.executable, "-m", "blobrep", *(str(arg) for arg in args)],
        cwd=cwd,
        env={**inherited, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    """The command failed with ``code`` and said why in one line on stderr, and nothing else."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("blobrep: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert result.stdout == ""
    return lines[0]


def files_under(root: Path) -> dict[str, int]:
    """Every file under ``root`` (relative path -> size)."""
    found: dict[str, int] = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            found[str(path.relative_to(root))] = path.stat().st_size
    return found


def _files_named(base: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory, _, names in os.walk(base):
        for name in names:
            found[name] = Path(directory) / name
    return found


def chunk_files(store: Path, gallery: str = GALLERY) -> dict[str, Path]:
    """Every file under the gallery's chunks directory of a replica, by file name."""
    return _files_named(store / "galleries" / gallery / "chunks")


def pack_files(store: Path, gallery: str = GALLERY) -> dict[str, Path]:
    """Every file under the gallery's packs directory of a replica, by file name."""
    return _files_named(store / "galleries" / gallery / "packs")


def manifest_file(store: Path, name: str = NAME, gallery: str = GALLERY) -> Path:
    image, _, version = name.split("/")
    return store / "galleries" / gallery / "images" / image / "versions" / version / "manifest.json"


def home_with_a_version(tmp_path: Path, image: Path) -> Path:
    """A home whose gallery ``gal`` has version 1.0.0 of ``disk`` in westcentralus and eastus2."""
    home = tmp_path / "home"
    for args in (
        ("sig", "create", "-r", "gal", "-l", "westcentralus"),
        ("sig", "image-definition", "create", "-r", "gal", "-i", "disk", "--publisher", "p", "--offer", "o",
         "--sku", "s", "--os-type", "Linux"),
        ("sig", "image-version", "create", "-r", "gal", "-i", "disk", "-e", "1.0.0", "--source", image,
         "--target-regions", "westcentralus", "eastus2"),
    ):  # fmt: skip
        result = blobrep("--home", home, *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    return home
