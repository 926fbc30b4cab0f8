"""Bad input: one line on stderr, no traceback, a non-zero exit, and nothing left behind."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.helpers import GALLERY, NAME, assert_one_line_error, blobrep, files_under, manifest_file

# Exit codes documented by the command: 2 for input that can never work, 1 for a failed operation.
USAGE, FAILED = 2, 1


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, image: Path) -> Path:
    """A replica holding NAME (shared: tests that damage it work on a copy)."""
    store = tmp_path_factory.mktemp("published") / "replica"
    result = blobrep(
        "blob", "publish", image, "--store", store, "--gallery", GALLERY, "--name", NAME, cwd=store.parent
    )
    assert result.returncode == 0, result.stderr
    return store


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "no-such-image.raw"


def _directory(tmp_path: Path) -> Path:
    path = tmp_path / "a-directory"
    path.mkdir()
    return path


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "a-fifo"
    os.mkfifo(path)
    return path


def _device(tmp_path: Path) -> Path:
    return Path("/dev/null")


@pytest.mark.parametrize(
    ("make_source", "fragment"),
    [
        pytest.param(_missing, "does not exist", id="missing"),
        pytest.param(_directory, "is a directory", id="directory"),
        pytest.param(_fifo, "not a regular file", id="fifo"),
        pytest.param(_device, "not a regular file", id="device"),
    ],
)
def test_publish_of_a_source_that_is_not_an_image_file(
    tmp_path: Path, make_source: Callable[[Path], Path], fragment: str
) -> None:
    source = make_source(tmp_path)
    before = files_under(tmp_path)

    # A FIFO without a writer must be refused at once, not block forever.
    result = blobrep(
        "blob", "publish", source, "--store", tmp_path / "replica", "--gallery", GALLERY, "--name", NAME,
        cwd=tmp_path, timeout=15,
    )  # fmt: skip

    assert_one_line_error(result, USAGE, str(source), fragment)
    assert files_under(tmp_path) == before
    assert not (tmp_path / "replica").exists()


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        pytest.param(("--gallery", "../escape"), "gallery", id="gallery-escapes"),
        pytest.param(("--gallery", "-leading-dash"), "gallery", id="gallery-leading-dash"),
        pytest.param(("--name", "img/versions/1.0"), "version", id="version-not-three-parts"),
        pytest.param(("--name", "img/versions/1.0.x"), "version", id="version-not-digits"),
        pytest.param(("--name", "../versions/1.0.0"), "..", id="image-is-dotdot"),
        pytest.param(("--name", "img/versions/../1.0.0"), "blob name", id="dotdot-inside"),
        pytest.param(("--name", "img/1.0.0"), "blob name", id="no-versions-segment"),
        pytest.param(("--chunk-size", "bogus"), "size", id="chunk-size-not-a-size"),
        pytest.param(("--chunk-size", "0"), "size", id="chunk-size-zero"),
        pytest.param(("--chunk-size", "10"), "size", id="chunk-size-too-small"),
        pytest.param(("--chunk-size", "64GiB"), "size", id="chunk-size-too-large"),
        pytest.param(("--chunking", "fixed", "--chunk-size", "0"), "size", id="fixed-size-zero"),
        pytest.param(("--chunking", "fixed", "--chunk-size", "32"), "size", id="fixed-size-too-small"),
        pytest.param(("--chunking", "rabin"), "chunking", id="unknown-chunking"),
        pytest.param(("--level", "0"), "level", id="level-zero"),
        pytest.param(("--level", "20"), "level", id="level-too-high"),
        pytest.param(("--level", "fast"), "level", id="level-not-a-number"),
    ],
)
def test_publish_with_bad_options(
    image: Path, tmp_path: Path, options: tuple[str, ...], fragment: str
) -> None:
    defaults = {"--gallery": GALLERY, "--name": NAME}
    args: list[str | Path] = ["blob", "publish", image, "--store", tmp_path / "replica"]
    for option, value in defaults.items():
        if option not in options:
            args += [option, value]
    args += options

    result = blobrep(*args, cwd=tmp_path)

    assert_one_line_error(result, USAGE, fragment)
    assert files_under(tmp_path) == {}


def test_restore_of_a_missing_blob(published: Path, tmp_path: Path) -> None:
    result = blobrep(
        "blob", "restore", "--store", published, "--gallery", GALLERY, "--name", "img/versions/9.9.9",
        "--output", tmp_path / "restored.raw", cwd=tmp_path,
    )  # fmt: skip

    assert_one_line_error(result, FAILED, "img/versions/9.9.9")
    assert files_under(tmp_path) == {}


def test_restore_from_a_store_that_does_not_exist(tmp_path: Path) -> None:
    result = blobrep(
        "blob", "restore", "--store", tmp_path / "nowhere", "--gallery", GALLERY, "--name", NAME,
        "--output", tmp_path / "restored.raw", cwd=tmp_path,
    )  # fmt: skip

    assert_one_line_error(result, FAILED, "nowhere")
    assert files_under(tmp_path) == {}
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(
    ("output", "fragment"),
    [
        pytest.param("missing-dir/restored.raw", "does not exist", id="missing-directory"),
        pytest.param(".", "directory", id="output-is-a-directory"),
    ],
)
def test_restore_to_a_bad_output(published: Path, tmp_path: Path, output: str, fragment: str) -> None:
    result = blobrep(
        "blob", "restore", "--store", published, "--gallery", GALLERY, "--name", NAME,
        "--output", tmp_path / output, cwd=tmp_path,
    )  # fmt: skip

    assert_one_line_error(result, USAGE, fragment)
    assert files_under(tmp_path) == {}
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("action", ["restore", "verify"])
def test_a_truncated_manifest_is_refused(published: Path, tmp_path: Path, action: str) -> None:
    store = tmp_path / "replica"
    shutil.copytree(published, store)
    manifest = manifest_file(store)
    manifest.write_bytes(manifest.read_bytes()[:100])
    out = tmp_path / "out"
    out.mkdir()
    before = files_under(tmp_path)
    args: list[str | Path] = ["blob", action, "--store", store, "--gallery", GALLERY, "--name", NAME]
    if action == "restore":
        args += ["--output", out / "restored.raw"]

    result = blobrep(*args, cwd=tmp_path)

    assert_one_line_error(result, FAILED, "manifest")
    assert files_under(tmp_path) == before


def test_verify_of_a_missing_blob(published: Path, tmp_path: Path) -> None:
    result = blobrep(
        "blob", "verify", "--store", published, "--gallery", GALLERY, "--name", "img/versions/9.9.9",
        cwd=tmp_path,
    )  # fmt: skip

    assert_one_line_error(result, FAILED, "img/versions/9.9.9")
    assert files_under(tmp_path) == {}


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("blob", "publish"), id="publish-without-arguments"),
        pytest.param(("blob", "frobnicate"), id="unknown-action"),
        pytest.param(("blob", "restore", "--store", "x", "--gallery", GALLERY), id="restore-without-name"),
    ],
)
def test_usage_errors(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = blobrep(*args, cwd=tmp_path)

    assert_one_line_error(result, USAGE)
    assert os.listdir(tmp_path) == []
