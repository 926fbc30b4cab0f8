"""``blobrep blob`` on S3 and Azure prefixes, as separate processes against the real servers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from blobrep.storage.object_url import ObjectKind, ObjectUrl
from tests.cli.helpers import GALLERY, NAME, blobrep

MIB = 1024 * 1024


def _publish(source: Path, store: ObjectUrl, cwd: Path) -> subprocess.Popen[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("BLOBREP_")}
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "blobrep", "blob", "publish", str(source), "--store", str(store)),
            *("--gallery", GALLERY, "--name", NAME),
        ],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_two_processes_publishing_one_version_into_one_store_one_wins_nothing_corrupt(
    object_prefix: ObjectUrl, tmp_path: Path
) -> None:
    sources = [tmp_path / "a.img", tmp_path / "b.img"]
    for seed, source in enumerate(sources):
        source.write_bytes(os.urandom(12 * MIB) if seed else bytes(4 * MIB) + os.urandom(8 * MIB))
    racers = [_publish(source, object_prefix, tmp_path) for source in sources]
    results = [(racer.wait(timeout=120), *racer.communicate()) for racer in racers]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 1], results
    loser = next(err for code, _, err in results if code == 1)
    assert "already exists" in loser and "Traceback" not in loser
    winner = sources[next(index for index, (code, _, _) in enumerate(results) if code == 0)]

    checked = blobrep(
        "blob", "verify", "--store", str(object_prefix), "--gallery", GALLERY, "--name", NAME, cwd=tmp_path
    )
    assert checked.returncode == 0, checked.stderr
    out = tmp_path / "restored.img"
    restored = blobrep(
        "blob",
        "restore",
        "--store",
        str(object_prefix),
        "--gallery",
        GALLERY,
        "--name",
        NAME,
        "--output",
        out,
        cwd=tmp_path,
    )
    assert restored.returncode == 0, restored.stderr
    assert out.read_bytes() == winner.read_bytes(), "the store holds the winner's blob, whole"


def test_a_malformed_store_url_is_a_usage_error(tmp_path: Path) -> None:
    result = blobrep(
        "blob", "verify", "--store", "s3://Bad_Bucket/x", "--gallery", GALLERY, "--name", NAME, cwd=tmp_path
    )
    assert result.returncode == 2
    assert "S3 bucket name 'Bad_Bucket' is not valid" in result.stderr


def test_two_processes_creating_one_version_in_an_s3_region_one_wins_the_other_conflicts(
    tmp_path: Path, prefixes: dict[ObjectKind, ObjectUrl]
) -> None:
    url = prefixes["s3"]
    assert blobrep("region", "add", "--name", "North Europe", "--url", str(url), cwd=tmp_path).returncode == 0
    assert blobrep("sig", "create", "-r", "g", "--location", "northeurope", cwd=tmp_path).returncode == 0
    fields = ("--publisher", "p", "--offer", "o", "--sku", "s", "--os-type", "Linux")
    made = blobrep("sig", "image-definition", "create", "-r", "g", "-i", "img", *fields, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    sources = [tmp_path / "a.img", tmp_path / "b.img"]
    for source in sources:
        source.write_bytes(os.urandom(12 * MIB))
    environment = {key: value for key, value in os.environ.items() if not key.startswith("BLOBREP_")}
    command = (sys.executable, "-m", "blobrep", "sig", "image-version", "create", "-r", "g", "-i", "img")
    racers = [
        subprocess.Popen(
            [*command, "-e", "1.0.0", "--source", str(source), "--target-regions", "northeurope=2"],
            cwd=tmp_path,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for source in sources
    ]
    results = [(racer.wait(timeout=120), *racer.communicate()) for racer in racers]
    assert sorted(code for code, _, _ in results) == [0, 1], results
    loser = next(err for code, _, err in results if code == 1)
    assert "already exists" in loser and "Traceback" not in loser
    winner = sources[next(index for index, (code, _, _) in enumerate(results) if code == 0)]
    out = tmp_path / "deployed.img"
    image = "/galleries/g/images/img/versions/1.0.0"
    deployed = blobrep(
        "vm", "create", "--image", image, "--location", "northeurope", "--output", out, cwd=tmp_path
    )
    assert deployed.returncode == 0, deployed.stderr
    assert out.read_bytes() == winner.read_bytes(), "the region holds the winner's disk, whole"
    checked = blobrep("fsck", "--location", "northeurope", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
