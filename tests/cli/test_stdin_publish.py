"""``blobrep blob publish -`` and ``sig image-version create --source -``: an image piped in
(``qemu-img convert ... | blobrep blob publish - ...``) is published as if it were a file."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
import xxhash

from blobrep.cli.progress import ProgressBar
from tests.cli.helpers import GALLERY, NAME, assert_one_line_error, blobrep, files_under, manifest_file

MIB = 1024 * 1024

# Writes the synthetic image of argv[1] bytes (seed argv[2]) to standard output, piece by
# piece, as an image converter does.
_WRITER = (
    "import sys\n"
    "from blobrep.service import SyntheticImage\n"
    "for block in SyntheticImage(int(sys.argv[1]), int(sys.argv[2])).blocks():\n"
    "    sys.stdout.buffer.write(block)\n"
)


def _command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "blobrep", *(str(arg) for arg in args)]


def _environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("BLOBREP_")}


def piped(size: int, seed: int, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``writer | blobrep ARGS``: a second process writes the image into blobrep's stdin."""
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(size), str(seed)], stdout=subprocess.PIPE, env=_environment()
    )
    assert writer.stdout is not None
    try:
        result = subprocess.run(
            _command(*args),
            stdin=writer.stdout,
            cwd=cwd,
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        writer.stdout.close()
        assert writer.wait(timeout=60) == 0
    return result


def write_image(path: Path, size: int, seed: int) -> Path:
    with open(path, "wb") as out:
        subprocess.run(
            [sys.executable, "-c", _WRITER, str(size), str(seed)], stdout=out, env=_environment(), check=True
        )
    return path


@pytest.mark.slow
def test_an_image_piped_in_publishes_and_restores_as_the_same_file_does(tmp_path: Path) -> None:
    size = 64 * MIB
    image = write_image(tmp_path / "image.raw", size, seed=64)

    from_pipe = piped(
        size,
        64,
        "blob",
        "publish",
        "-",
        "--store",
        "pipe",
        "--gallery",
        GALLERY,
        "--name",
        NAME,
        cwd=tmp_path,
    )
    from_file = blobrep(
        "blob", "publish", image, "--store", "file", "--gallery", GALLERY, "--name", NAME, cwd=tmp_path
    )

    assert from_pipe.returncode == 0, from_pipe.stderr
    assert from_pipe.stderr == ""
    assert from_file.returncode == 0, from_file.stderr
    summary = json.loads(from_pipe.stdout)
    assert summary["size"] == size
    assert summary["digest"] == xxhash.xxh3_128_hexdigest(image.read_bytes())
    assert summary["manifest_pin"] == json.loads(from_file.stdout)["manifest_pin"]
    assert manifest_file(tmp_path / "pipe").read_bytes() == manifest_file(tmp_path / "file").read_bytes()
    assert files_under(tmp_path / "pipe") == files_under(tmp_path / "file")
    restored = tmp_path / "restored.raw"
    result = blobrep(
        "blob", "restore", "--store", "pipe", "--gallery", GALLERY, "--name", NAME, "--output", restored,
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert restored.read_bytes() == image.read_bytes()


def test_a_version_created_from_standard_input(tmp_path: Path) -> None:
    size = 3 * MIB
    image = write_image(tmp_path / "image.raw", size, seed=3)
    definition = ("--gallery-name", "gal", "--gallery-image-definition", "ubuntu")
    fields = ("--publisher", "p", "--offer", "o", "--sku", "s", "--os-type", "Linux")
    for args in (
        ("sig", "create", "--gallery-name", "gal"),
        ("sig", "image-definition", "create", *definition, *fields),
    ):
        assert blobrep(*args, cwd=tmp_path).returncode == 0

    result = piped(size, 3, "sig", "image-version", "create", *definition, "-e", "1.0.0", "--source", "-",
                   cwd=tmp_path)  # fmt: skip

    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["provisioningState"] == "Succeeded"
    assert created["storageProfile"]["sizeInBytes"] == size
    assert created["storageProfile"]["digest"] == xxhash.xxh3_128_hexdigest(image.read_bytes())


@pytest.mark.parametrize("command", ["blob", "sig"])
def test_dash_with_a_terminal_for_standard_input_is_a_usage_error(tmp_path: Path, command: str) -> None:
    args: tuple[str, ...] = (
        ("blob", "publish", "-", "--store", "replica", "--gallery", GALLERY, "--name", NAME)
        if command == "blob"
        else ("sig", "image-version", "create", "-r", "gal", "-i", "ubuntu", "-e", "1.0.0", "--source", "-")
    )
    controller, terminal = pty.openpty()
    try:
        result = subprocess.run(
            _command(*args),
            stdin=terminal,
            cwd=tmp_path,
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(terminal)
        os.close(controller)

    assert_one_line_error(result, 2, "standard input, which is a terminal", "pipe the image in")
    assert not (tmp_path / "replica").exists()


def test_dash_with_standard_input_closed_is_a_usage_error(tmp_path: Path) -> None:
    command = _command("blob", "publish", "-", "--store", "replica", "--gallery", GALLERY, "--name", NAME)
    result = subprocess.run(
        ["sh", "-c", 'exec "$@" <&-', "sh", *command],  # blobrep ... <&-
        cwd=tmp_path,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert_one_line_error(result, 2, "cannot read standard input: it is not open")


def test_a_fifo_given_by_path_is_refused_at_once_and_points_at_dash(tmp_path: Path) -> None:
    fifo = tmp_path / "image.fifo"
    os.mkfifo(fifo)
    result = blobrep(
        "blob",
        "publish",
        fifo,
        "--store",
        "replica",
        "--gallery",
        GALLERY,
        "--name",
        NAME,
        cwd=tmp_path,
        timeout=30,
    )
    assert_one_line_error(result, 2, str(fifo), "not a regular file", "give -")
    assert not (tmp_path / "replica" / "galleries").exists()


def test_the_bar_of_a_stream_of_unknown_length_counts_bytes_without_a_percentage() -> None:
    drawn = io.StringIO()
    with ProgressBar("publishing", drawn, enabled=True) as bar:
        bar(3 * MIB, None)
    assert "3.0 MiB" in drawn.getvalue()
    assert "%" not in drawn.getvalue() and "[" not in drawn.getvalue()
