"""The ``az sig``-style commands end to end: JSON by default, tables on request, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.helpers import assert_one_line_error, blobrep

DEFINITION = ("--gallery-name", "gal", "--gallery-image-definition", "ubuntu")


def ok(cwd: Path, *args: str | Path) -> str:
    result = blobrep(*args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def test_publish_a_version_and_find_it_as_latest(tmp_path: Path, image: Path) -> None:
    gallery = json.loads(
        ok(tmp_path, "sig", "create", "--gallery-name", "gal", "--location", "West Central US")
    )
    assert gallery["id"] == "/galleries/gal" and gallery["location"] == "westcentralus"
    ok(
        tmp_path,
        "sig",
        "image-definition",
        "create",
        *DEFINITION,
        "--publisher",
        "contoso",
        "--offer",
        "ubuntu",
        "--sku",
        "22_04",
        "--os-type",
        "Linux",
        "--hyper-v-generation",
        "V2",
    )
    created = json.loads(
        ok(
            tmp_path,
            "sig",
            "image-version",
            "create",
            *DEFINITION,
            "--gallery-image-version",
            "1.0.0",
            "--source",
            image,
            "--target-regions",
            "westcentralus=2",
            "eastus2",
            "--no-wait",
        )
    )
    assert created["id"] == "/galleries/gal/images/ubuntu/versions/1.0.0"
    assert created["storageProfile"]["sizeInBytes"] == image.stat().st_size
    summary = {item["region"]: item for item in created["replicationStatus"]["summary"]}
    assert summary["westcentralus"]["state"] == "Completed"
    assert summary["westcentralus"]["replicas"] == {"completed": 2, "target": 2}
    assert summary["eastus2"]["state"] == "Unknown"

    shown = json.loads(ok(tmp_path, "sig", "image-version", "show", *DEFINITION, "-e", "latest"))
    assert shown["name"] == "1.0.0"
    assert shown["replicationStatus"] is None  # only with --expand, as users of az expect
    expanded = json.loads(
        ok(
            tmp_path,
            "sig",
            "image-version",
            "show",
            *DEFINITION,
            "-e",
            "1.0.0",
            "--expand",
            "ReplicationStatus",
        )
    )
    assert expanded["replicationStatus"]["aggregatedState"] == "InProgress"

    missing = blobrep(
        "sig", "image-version", "show", *DEFINITION, "-e", "latest", "-l", "eastus2", cwd=tmp_path
    )
    assert_one_line_error(missing, 1, "no version usable in eastus2", "1.0.0")

    table = ok(tmp_path, "-o", "table", "sig", "image-version", "list", *DEFINITION)
    header, _rule, row = table.splitlines()
    assert header.split()[:4] == ["name", "location", "provisioningState", "replication"]
    assert row.split()[:4] == ["1.0.0", "westcentralus", "Succeeded", "InProgress"]

    replicated = json.loads(ok(tmp_path, "replicate", "--gallery-name", "gal"))
    assert replicated[0]["replicationStatus"]["aggregatedState"] == "Completed"
    waited = json.loads(
        ok(tmp_path, "sig", "image-version", "wait", *DEFINITION, "-e", "1.0.0", "-l", "eastus2")
    )
    assert {item["state"] for item in waited["replicationStatus"]["summary"]} == {"Completed"}
    in_eastus2 = json.loads(
        ok(tmp_path, "sig", "image-version", "show", *DEFINITION, "-e", "latest", "-l", "eastus2")
    )
    assert in_eastus2["name"] == "1.0.0"


def test_create_replicates_to_every_target_and_a_failed_region_exits_1(tmp_path: Path, image: Path) -> None:
    ok(tmp_path, "sig", "create", "--gallery-name", "gal")
    ok(
        tmp_path,
        *("sig", "image-definition", "create", *DEFINITION, "--publisher", "p", "--offer", "o", "--sku", "s"),
        *("--os-type", "Linux"),
    )
    ok(tmp_path, "region", "add", "--name", "Japan East", "--path", tmp_path / "japaneast")
    # The region's one replica cannot be made: a file stands where its directory would be.
    blocker = tmp_path / "japaneast" / "replica-1"
    blocker.parent.mkdir()
    blocker.write_text("not a directory")
    result = blobrep(
        *("sig", "image-version", "create", *DEFINITION, "-e", "1.0.0", "--source", image),
        *("--target-regions", "westcentralus", "eastus2=2", "japaneast"),
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("blobrep: error: replication failed in japaneast: ")
    summary = {
        item["region"]: item["state"] for item in json.loads(result.stdout)["replicationStatus"]["summary"]
    }
    assert summary == {"westcentralus": "Completed", "eastus2": "Completed", "japaneast": "Failed"}
    waited = blobrep("sig", "image-version", "wait", *DEFINITION, "-e", "1.0.0", cwd=tmp_path)
    assert waited.returncode == 1 and "japaneast" in waited.stderr
    assert ok(tmp_path, "sig", "image-version", "wait", *DEFINITION, "-e", "1.0.0", "-l", "eastus2")

    blocker.unlink()
    retried = blobrep("replicate", "--gallery-name", "gal", "--retry-failed", cwd=tmp_path)
    assert retried.returncode == 0, retried.stderr
    assert json.loads(retried.stdout)[0]["replicationStatus"]["aggregatedState"] == "Completed"


def test_gc_reports_what_it_deleted(tmp_path: Path, image: Path) -> None:
    ok(tmp_path, "sig", "create", "--gallery-name", "gal", "--location", "westcentralus")
    ok(
        tmp_path,
        *("sig", "image-definition", "create", *DEFINITION, "--publisher", "p", "--offer", "o", "--sku", "s"),
        *("--os-type", "Linux"),
    )
    ok(tmp_path, "sig", "image-version", "create", *DEFINITION, "-e", "1.0.0", "--source", image)
    ok(tmp_path, "sig", "image-version", "delete", *DEFINITION, "-e", "1.0.0")
    kept = json.loads(ok(tmp_path, "gc", "--gallery-name", "gal"))
    assert sum(report["deleted_chunks"] for report in kept) == 0  # younger than the default grace
    assert sum(report["kept_young"] for report in kept) > 0
    table = ok(tmp_path, "-o", "table", "gc", "--gallery-name", "gal", "--grace", "0")
    assert "westcentralus/replica-1" in table
    again = json.loads(ok(tmp_path, "gc", "--gallery-name", "gal", "--grace", "0"))
    assert sum(report["chunks_seen"] for report in again) == 0
    bad = blobrep("gc", "--gallery-name", "gal", "--grace", "soon", cwd=tmp_path)
    assert bad.returncode == 2 and "soon" in bad.stderr


def test_sharing_with_another_principal(tmp_path: Path, image: Path) -> None:
    ok(tmp_path, "sig", "create", "--gallery-name", "gal")
    ok(tmp_path, "principal", "create", "--name", "bob", "--type", "user")
    ok(tmp_path, "principal", "create", "--name", "readers", "--type", "group")
    members = json.loads(ok(tmp_path, "group", "member", "add", "--group", "readers", "--member", "bob"))
    assert members == {"group": "readers", "members": ["bob"]}

    denied = blobrep("--as", "bob", "sig", "show", "--gallery-name", "gal", cwd=tmp_path)
    assert_one_line_error(denied, 1, "'bob' may not read /galleries/gal", "Reader")

    assignment = json.loads(
        ok(
            tmp_path,
            "role",
            "assignment",
            "create",
            "--assignee",
            "readers",
            "--role",
            "Reader",
            "--scope",
            "/galleries/gal",
        )
    )
    assert assignment == {
        "principalName": "readers",
        "roleDefinitionName": "Reader",
        "scope": "/galleries/gal",
    }
    assert json.loads(ok(tmp_path, "--as", "bob", "sig", "show", "--gallery-name", "gal"))["name"] == "gal"
    write = blobrep(
        "--as", "bob", "sig", "update", "--gallery-name", "gal", "--description", "x", cwd=tmp_path
    )
    assert_one_line_error(write, 1, "'bob' may not write to /galleries/gal", "it holds Reader there")
    listed = json.loads(ok(tmp_path, "role", "assignment", "list", "--scope", "/galleries/gal"))
    assert {(item["principalName"], item["roleDefinitionName"]) for item in listed} == {
        ("admin", "Owner"),
        ("readers", "Reader"),
    }


def test_region_commands(tmp_path: Path) -> None:
    regions = json.loads(ok(tmp_path, "region", "list"))
    assert "westcentralus" in {region["name"] for region in regions}
    added = json.loads(ok(tmp_path, "region", "add", "--name", "North Europe"))
    assert (added["name"], added["displayName"]) == ("northeurope", "North Europe")
    assert json.loads(ok(tmp_path, "region", "show", "--name", "northeurope"))["kind"] == "local"


def test_usage_and_input_errors_exit_2_with_one_line(tmp_path: Path, image: Path) -> None:
    ok(tmp_path, "sig", "create", "--gallery-name", "gal")
    bad_name = blobrep("sig", "create", "--gallery-name", "-bad-", cwd=tmp_path)
    assert bad_name.returncode == 2 and "Traceback" not in bad_name.stderr
    assert_one_line_error(
        blobrep("sig", "create", "--gallery-name", "a/b", cwd=tmp_path), 2, "invalid gallery name 'a/b'"
    )
    definition = blobrep(
        "sig",
        "image-definition",
        "create",
        *DEFINITION,
        "--publisher",
        "p",
        "--offer",
        "o",
        "--sku",
        "s",
        "--os-type",
        "Solaris",
        cwd=tmp_path,
    )
    assert_one_line_error(definition, 2, "Solaris", "Linux, Windows")
    version = blobrep(
        "sig", "image-version", "create", *DEFINITION, "-e", "1.0.0.0", "--source", image, cwd=tmp_path
    )
    assert_one_line_error(version, 2, "1.0.0.0", "MAJOR.MINOR.PATCH")
    assert_one_line_error(
        blobrep("sig", "show", "--gallery-name", "nope", cwd=tmp_path), 1, "'nope' not found"
    )
