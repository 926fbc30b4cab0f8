"""The daemon serves a disk from an object-store region (the real S3 and Azure test servers):
the content route reads through the same shared reader, verified, by ranges too."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx

from blobrep.storage.object_url import ObjectUrl
from tests.daemon.conftest import ok, start, stop

GALLERY = "gal"
IMAGE = "img"


def test_a_disk_in_an_object_region_is_served_whole_and_by_ranges(
    object_prefix: ObjectUrl, tmp_path: Path
) -> None:
    disk = os.urandom(5 * 1024 * 1024) + bytes(3 * 1024 * 1024) + os.urandom(1234)
    (tmp_path / "disk.raw").write_bytes(disk)
    ok(tmp_path, "region", "add", "--name", "North Europe", "--url", str(object_prefix))
    ok(tmp_path, "sig", "create", "-r", GALLERY, "--location", "westcentralus")
    fields = ("--publisher", "p", "--offer", "o", "--sku", "s", "--os-type", "Linux")
    ok(tmp_path, "sig", "image-definition", "create", "-r", GALLERY, "-i", IMAGE, *fields)
    targets = ("--target-regions", "westcentralus", "northeurope=2")
    ok(
        tmp_path,
        "sig",
        "image-version",
        "create",
        "-r",
        GALLERY,
        "-i",
        IMAGE,
        "-e",
        "1.0.0",
        "--source",
        "disk.raw",
        *targets,
    )
    token = json.loads(ok(tmp_path, "token", "create", "--principal", "admin"))["token"]
    url, process = start(tmp_path, tmp_path / ".blobrep")
    try:
        route = f"{url}/galleries/{GALLERY}/images/{IMAGE}/versions/latest/content"
        headers = {"Authorization": f"Bearer {token}"}
        whole = httpx.get(route, params={"location": "northeurope"}, headers=headers, timeout=60)
        assert whole.status_code == 200 and whole.content == disk
        start_at, end_at = 5 * 1024 * 1024 - 100, 5 * 1024 * 1024 + 99
        part = httpx.get(
            route,
            params={"location": "northeurope"},
            headers={**headers, "Range": f"bytes={start_at}-{end_at}"},
            timeout=60,
        )
        assert part.status_code == 206 and part.content == disk[start_at : end_at + 1]
        ready = httpx.get(f"{url}/readyz", timeout=30)
        assert ready.status_code == 200, ready.text
    finally:
        code, err = stop(process)
        assert code == 0, err
