"""``blobrep blob publish|restore|verify``, run as a user runs them."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import xxhash

from blobrep.core.packs import read_table
from tests.cli.helpers import (
    GALLERY,
    NAME,
    assert_one_line_error,
    blobrep,
    chunk_files,
    files_under,
    manifest_file,
    pack_files,
)


def publish(source: Path, *stores: Path, cwd: Path, extra: tuple[str, ...] = ()) -> dict[str, object]:
    store_args = [arg for store in stores for arg in ("--store", str(store))]
    result = blobrep(
        "blob", "publish", source, *store_args, "--gallery", GALLERY, "--name", NAME, *extra, cwd=cwd
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bar or chatter when stderr is not a terminal
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


def test_publish_prints_a_summary_that_matches_the_replica(image: Path, tmp_path: Path) -> None:
    store = tmp_path / "replica"

    summary = publish(image, store, cwd=tmp_path, extra=("--chunk-size", "64KiB", "--pack-size", "off"))

    data = image.read_bytes()
    files = chunk_files(store)
    assert summary["size"] == len(data)
    assert summary["digest"] == xxhash.xxh3_128_hexdigest(data)
    assert summary["blob"] == NAME
    assert summary["gallery"] == GALLERY
    assert summary["committed"] is True
    # Only finished chunk files are left, each named by its digest.
    assert all(re.fullmatch(r"[0-9a-f]{32}", name) for name in files)
    assert summary["distinct_chunks"] == summary["new_chunks"] == len(files) > 0
    on_disk = sum(path.stat().st_size for path in files.values())
    assert summary["stored_bytes"] == summary["written_bytes"] == on_disk
    assert isinstance(summary["chunks"], int) and isinstance(summary["zero_chunks"], int)
    assert summary["zero_chunks"] > 0
    assert summary["chunks"] >= len(files) + summary["zero_chunks"]
    assert len(json.loads(manifest_file(store).read_bytes())["chunks"]) == summary["chunks"]
    assert summary["replicas"] == 1
    assert summary["new_packs"] == 0 and pack_files(store) == {}


def test_a_publish_into_packs_prints_a_summary_that_matches_them(image: Path, tmp_path: Path) -> None:
    store = tmp_path / "replica"

    summary = publish(image, store, cwd=tmp_path, extra=("--chunk-size", "64KiB", "--pack-size", "256KiB"))

    packs = pack_files(store)
    tables = [read_table(path.read_bytes(), str(path)) for path in packs.values()]
    assert chunk_files(store) == {}
    assert summary["new_packs"] == len(packs) > 1
    assert all(re.fullmatch(r"[0-9a-f]{32}", name) for name in packs)
    assert summary["distinct_chunks"] == summary["new_chunks"] == sum(map(len, tables))
    assert summary["stored_bytes"] == sum(entry.stored_length for table in tables for entry in table)
    assert summary["written_bytes"] == sum(path.stat().st_size for path in packs.values())
    manifest = json.loads(manifest_file(store).read_bytes())
    assert manifest["format"] == "blobrep.manifest/3"
    assert [pack["digest"] for pack in manifest["packs"]] == [
        name for name, _ in sorted(packs.items(), key=lambda item: manifest_order(manifest, item[0]))
    ]


def manifest_order(manifest: dict[str, Any], pack: str) -> int:
    return [entry["digest"] for entry in manifest["packs"]].index(pack)


def test_publishing_again_writes_nothing(image: Path, tmp_path: Path) -> None:
    store = tmp_path / "replica"
    first = publish(image, store, cwd=tmp_path)
    before = files_under(store)

    again = publish(image, store, cwd=tmp_path)

    assert (again["new_chunks"], again["written_bytes"], again["committed"]) == (0, 0, False)
    assert again["digest"] == first["digest"]
    assert files_under(store) == before


def test_publish_into_two_stores_writes_both(image: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "replica-1", tmp_path / "replica-2"

    summary = publish(image, first, second, cwd=tmp_path)

    assert summary["replicas"] == 2
    assert isinstance(summary["stored_bytes"], int)
    # The packs (their frames and tables) went to both replicas.
    packs = pack_files(first)
    assert summary["written_bytes"] == 2 * sum(path.stat().st_size for path in packs.values())
    assert summary["written_bytes"] > 2 * summary["stored_bytes"]
    assert files_under(first) == files_under(second)


@pytest.mark.parametrize("chunking", ["fastcdc", "fixed"])
def test_restore_writes_an_identical_file(image: Path, tmp_path: Path, chunking: str) -> None:
    store = tmp_path / "replica"
    published = publish(image, store, cwd=tmp_path, extra=("--chunking", chunking, "--level", "3"))
    output = tmp_path / "out" / "restored.raw"
    output.parent.mkdir()

    result = blobrep(
        "blob", "restore", "--store", store, "--gallery", GALLERY, "--name", NAME, "--output", output,
        cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert output.read_bytes() == image.read_bytes()
    summary = json.loads(result.stdout)
    assert summary["digest"] == published["digest"]
    assert summary["size"] == image.stat().st_size
    assert summary["output"] == str(output)
    assert os.listdir(output.parent) == ["restored.raw"]


def test_verify_passes_then_names_a_corrupt_chunk(image: Path, tmp_path: Path) -> None:
    store = tmp_path / "replica"
    publish(image, store, cwd=tmp_path, extra=("--chunk-size", "64KiB", "--pack-size", "off"))
    verify = ("blob", "verify", "--store", store, "--gallery", GALLERY, "--name", NAME)

    clean = blobrep(*verify, cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr
    report = json.loads(clean.stdout)
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["checked_chunks"] == len(chunk_files(store))

    digest, path = sorted(chunk_files(store).items())[0]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    damaged = blobrep(*verify, cwd=tmp_path)
    assert damaged.returncode == 1
    report = json.loads(damaged.stdout)
    assert report["ok"] is False
    assert [(p["digest"], p["problem"]) for p in report["problems"]] == [(digest, "corrupt")]
    assert digest in damaged.stdout
    assert len(damaged.stderr.splitlines()) == 1
    assert "1 corrupt" in damaged.stderr

    path.unlink()
    missing = blobrep(*verify, cwd=tmp_path)
    assert missing.returncode == 1
    assert [(p["digest"], p["problem"]) for p in json.loads(missing.stdout)["problems"]] == [
        (digest, "missing")
    ]


def test_verify_names_a_corrupt_chunk_in_a_pack_and_every_chunk_of_a_missing_pack(
    image: Path, tmp_path: Path
) -> None:
    store = tmp_path / "replica"
    publish(image, store, cwd=tmp_path, extra=("--chunk-size", "64KiB", "--pack-size", "256KiB"))
    verify = ("blob", "verify", "--store", store, "--gallery", GALLERY, "--name", NAME)
    path = sorted(pack_files(store).values())[0]
    table = read_table(path.read_bytes(), str(path))
    data = bytearray(path.read_bytes())
    data[table[1].offset + table[1].stored_length // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    damaged = blobrep(*verify, cwd=tmp_path)
    assert damaged.returncode == 1
    assert [(p["digest"], p["problem"]) for p in json.loads(damaged.stdout)["problems"]] == [
        (table[1].digest, "corrupt")
    ]
    assert "1 corrupt" in damaged.stderr

    path.unlink()
    missing = blobrep(*verify, cwd=tmp_path)
    assert missing.returncode == 1
    problems = json.loads(missing.stdout)["problems"]
    assert sorted((p["digest"], p["problem"]) for p in problems) == sorted(
        (entry.digest, "missing") for entry in table
    )


def test_restore_of_a_corrupt_chunk_fails_naming_it(image: Path, tmp_path: Path) -> None:
    store = tmp_path / "replica"
    publish(image, store, cwd=tmp_path, extra=("--chunk-size", "64KiB", "--pack-size", "off"))
    digest, path = sorted(chunk_files(store).items())[-1]
    path.write_bytes(b"not a zstd frame")
    out = tmp_path / "out"
    out.mkdir()

    result = blobrep(
        "blob", "restore", "--store", store, "--gallery", GALLERY, "--name", NAME, "--output", out / "x.raw",
        cwd=tmp_path,
    )  # fmt: skip

    assert_one_line_error(result, 1, digest, "corrupt")
    assert os.listdir(out) == []


def test_table_output(image: Path, tmp_path: Path) -> None:
    store = tmp_path / "replica"

    result = blobrep(
        "-o", "table", "blob", "publish", image, "--store", store, "--gallery", GALLERY, "--name", NAME,
        cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["field", "value"]
    assert set(lines[1]) == {"-", " "}
    rows = {line.split()[0]: line.split()[1] for line in lines[2:]}
    assert rows["size"] == str(image.stat().st_size)
    assert rows["digest"] == xxhash.xxh3_128_hexdigest(image.read_bytes())
    assert rows["blob"] == NAME

    verified = blobrep(
        "-o", "table", "blob", "verify", "--store", store, "--gallery", GALLERY, "--name", NAME, cwd=tmp_path
    )
    assert verified.returncode == 0, verified.stderr
    assert f"all {rows['distinct_chunks']} chunks verified" in verified.stdout


def test_help_for_blob_publish(tmp_path: Path) -> None:
    result = blobrep("blob", "publish", "--help", cwd=tmp_path)

    assert result.returncode == 0
    assert result.stdout.startswith("usage: blobrep blob publish")
    for option in ("--store", "--gallery", "--name", "--chunking", "--chunk-size", "--level"):
        assert option in result.stdout
    assert result.stderr == ""
    assert os.listdir(tmp_path) == []


def test_publish_ends_chunks_at_zero_runs_unless_told_off(image: Path, tmp_path: Path) -> None:
    default = publish(image, tmp_path / "default", cwd=tmp_path)
    manifest = json.loads(manifest_file(tmp_path / "default").read_bytes())
    assert manifest["format"] == "blobrep.manifest/3"
    assert manifest["chunking"]["zero_run"] == 4096
    assert manifest["compression"] == {"codec": "zstd", "level": 2}

    lone = publish(image, tmp_path / "lone", cwd=tmp_path, extra=("--pack-size", "off"))
    manifest = json.loads(manifest_file(tmp_path / "lone").read_bytes())
    assert manifest["format"] == "blobrep.manifest/2"
    assert manifest["chunking"]["zero_run"] == 4096

    off = publish(
        image,
        tmp_path / "off",
        cwd=tmp_path,
        extra=("--zero-run", "off", "--level", "1", "--pack-size", "off"),
    )
    manifest = json.loads(manifest_file(tmp_path / "off").read_bytes())
    assert manifest["format"] == "blobrep.manifest/1"
    assert "zero_run" not in manifest["chunking"]
    # The same bytes every way, cut and stored differently.
    assert off["digest"] == lone["digest"] == default["digest"]


@pytest.mark.parametrize("value", ["3KiB", "6KiB", "0", "2MiB", "of"])
def test_a_zero_run_off_the_block_grid_is_refused_naming_it(image: Path, tmp_path: Path, value: str) -> None:
    result = blobrep(
        "blob", "publish", image, "--store", tmp_path / "r", "--gallery", GALLERY, "--name", NAME,
        "--zero-run", value, cwd=tmp_path,
    )  # fmt: skip

    assert_one_line_error(result, 2, "--zero-run", repr(value))
    assert not (tmp_path / "r").exists()


def test_verify_fails_on_a_pack_that_is_not_what_its_name_says_even_if_every_chunk_reads(
    image: Path, tmp_path: Path
) -> None:
    store = tmp_path / "replica"
    publish(image, store, cwd=tmp_path, extra=("--chunk-size", "64KiB", "--pack-size", "256KiB"))
    path = sorted(pack_files(store).values())[0]
    path.write_bytes(path.read_bytes() + b"trailing")
    verify = ("blob", "verify", "--store", store, "--gallery", GALLERY, "--name", NAME)

    result = blobrep(*verify, cwd=tmp_path)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["problems"] == []
    assert [problem["digest"] for problem in report["pack_problems"]] == [path.name]
    assert result.stderr.strip().endswith(
        "0 missing and 0 corrupt chunk(s) and 1 bad pack(s) in " + str(store)
    )

    table = blobrep("-o", "table", *verify, cwd=tmp_path)
    assert table.returncode == 1
    assert path.name in table.stdout and "all " not in table.stdout
