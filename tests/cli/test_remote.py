"""The CLI against a daemon (``--endpoint``) says what it says against a home, and exits alike.

Two homes start as copies of one: a daemon serves the first, the CLI works on the second
directly (:mod:`tests.cli.remote_twins`). Every command runs both ways, as the same principal
(the daemon's token for it; ``--as`` on the home), and the two runs must print the same stdout
and stderr and exit with the same status. A write runs on both homes, so they stay alike, and
the next command compares them again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack
from pathlib import Path

import anyio.to_thread
import pytest

from blobrep.catalog import Catalog
from blobrep.core.operations import OperationKind
from blobrep.core.version import ImageVersion
from blobrep.service.operations import hold_operation
from tests.cli.helpers import assert_one_line_error, blobrep
from tests.cli.remote_twins import (
    DEFINITION,
    GALLERY,
    Twins,
    both,
    comparable,
    local,
    prepare_twins,
    remote,
    same,
    same_failure,
)
from tests.daemon.conftest import free_port


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twins]:
    yield from prepare_twins(tmp_path_factory)


# --- reads --------------------------------------------------------------------------------

VERSION = (*DEFINITION, "-e", "1.0.0")
READS: list[tuple[str, ...]] = [
    ("sig", "list"),
    ("-o", "table", "sig", "list"),
    ("sig", "show", "-r", GALLERY),
    ("sig", "image-definition", "list", "-r", GALLERY),
    ("-o", "table", "sig", "image-definition", "show", *DEFINITION),
    ("sig", "image-version", "list", *DEFINITION),
    ("-o", "table", "sig", "image-version", "list", *DEFINITION),
    ("sig", "image-version", "show", *VERSION),
    (
        "sig",
        "image-version",
        "show",
        *DEFINITION,
        "-e",
        "latest",
        "-l",
        "East US 2",
        "--expand",
        "ReplicationStatus",
    ),
    ("-o", "table", "sig", "image-version", "show", *VERSION, "--expand", "ReplicationStatus"),
    ("-o", "table", "principal", "show", "--name", "team"),
    ("group", "member", "list", "-g", "team"),
    ("role", "assignment", "list"),
    ("-o", "table", "role", "assignment", "list", "--scope", f"/galleries/{GALLERY}"),
    ("--query", "[].name", "-o", "tsv", "sig", "list"),
    ("-o", "yaml", "sig", "image-version", "show", *VERSION),
    (
        "--query",
        "publishingProfile.targetRegions[].{region: name, replicas: regionalReplicaCount}",
        "-o",
        "table",
        "sig",
        "image-version",
        "show",
        *VERSION,
    ),
]


@pytest.mark.parametrize("args", READS, ids=" ".join)
def test_a_read_prints_the_same_through_the_daemon(twins: Twins, args: tuple[str, ...]) -> None:
    assert same(twins, *args).returncode == 0


@pytest.mark.parametrize(
    ("args", "principal"),
    [
        (("sig", "list"), "reader"),
        (("role", "assignment", "list", "--assignee", "reader"), "reader"),
        (("principal", "list"), "reader"),
        (("sig", "list"), "nobody"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else value,
)
def test_a_read_shows_what_the_token_s_principal_may_see(
    twins: Twins, args: tuple[str, ...], principal: str
) -> None:
    assert same(twins, *args, principal=principal).returncode == 0


@pytest.mark.parametrize(
    ("args", "code", "principal"),
    [
        (("sig", "show", "-r", "nope"), 1, "admin"),
        (("sig", "image-version", "show", *DEFINITION, "-e", "9.9.9"), 1, "admin"),
        (("sig", "image-version", "show", *DEFINITION, "-e", "latest", "-l", "nowhere"), 1, "admin"),
        (("sig", "image-version", "show", *DEFINITION, "-e", "latest", "-l", "southeastasia"), 1, "admin"),
        (("sig", "image-version", "show", *DEFINITION, "-e", "1.x"), 2, "admin"),
        (("sig", "show", "-r", "no/such"), 2, "admin"),
        (("sig", "show", "-r", GALLERY), 1, "nobody"),
        (("sig", "update", "-r", GALLERY, "--description", "mine"), 1, "reader"),
        (("principal", "show", "--name", "ghost"), 1, "admin"),
        (("principal", "show", "--name", "a/b"), 1, "admin"),
        (("principal", "create", "--name", "a b", "--type", "user"), 2, "admin"),
        (("group", "member", "list", "-g", "nobody"), 2, "admin"),
        (("principal", "create", "--name", "eve", "--type", "user"), 1, "reader"),
        (("role", "assignment", "list", "--scope", "/galleries/nope"), 1, "nobody"),
        (("vm", "create", "--image", f"/galleries/{GALLERY}/images/img", "-l", "westeurope"), 1, "admin"),
        (("vm", "create", "--image", f"/galleries/{GALLERY}"), 2, "admin"),
        (("vm", "create", "--image", f"/galleries/{GALLERY}/images/img"), 1, "nobody"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, tuple) else str(value),
)
def test_a_failure_says_the_same_line_and_exits_alike(
    twins: Twins, args: tuple[str, ...], code: int, principal: str
) -> None:
    same_failure(twins, *args, code=code, principal=principal)


# --- writes -------------------------------------------------------------------------------


def test_galleries_and_definitions_are_written_alike(twins: Twins) -> None:
    fields = ("--publisher", "contoso", "--offer", "debian", "--sku", "12", "--os-type", "linux")
    definition = ("-r", "web", "-i", "deb")
    same(twins, "sig", "create", "-r", "web", "--location", "eastus2", "--description", "first")
    same(twins, "-o", "table", "sig", "update", "-r", "web", "--description", "second")
    same(
        twins,
        *("sig", "image-definition", "create", *definition, *fields),
        *("--hyper-v-generation", "V2", "--minimum-cpu-core", "2", "--end-of-life-date", "2030-01-01"),
    )
    same(
        twins,
        "sig",
        "image-definition",
        "update",
        *definition,
        "--maximum-memory",
        "64",
        "--description",
        "d",
    )
    same_failure(twins, "sig", "image-definition", "update", *definition, "--os-type", "Windows", code=2)
    same_failure(twins, "sig", "image-definition", "create", "-r", "web", "-i", "other", *fields, code=1)
    same_failure(twins, "sig", "delete", "-r", "web", code=1)
    assert same(twins, "sig", "image-definition", "delete", *definition).stdout == ""
    assert same(twins, "sig", "delete", "-r", "web").stdout == ""
    same_failure(twins, "sig", "show", "-r", "web", code=1)


def test_a_version_is_created_from_a_file_streamed_to_the_daemon(twins: Twins) -> None:
    """The create's document is the local one, what the publish did included (the daemon's
    answer reports its new chunks and bytes written; only the timings differ)."""
    args = ("sig", "image-version", "create", *DEFINITION, "-e", "2.0.0", "--source", twins.image)
    targets = ("--target-regions", "westcentralus", "eastus2=2")
    there, here = both(twins, *args, *targets)
    assert (there.returncode, there.stderr) == (here.returncode, here.stderr) == (0, "")
    created, remote = json.loads(here.stdout), json.loads(comparable(there.stdout))
    publish, remote_publish = created.pop("publish"), remote.pop("publish")
    figures = ("newChunks", "writtenBytes")
    assert {key: remote_publish[key] for key in figures} == {key: publish[key] for key in figures}
    assert remote == json.loads(comparable(json.dumps(created)))
    assert created["replicationStatus"]["aggregatedState"] == "Completed"

    steps: list[tuple[str, ...]] = [
        ("-o", "table", "sig", "image-version", "update", *DEFINITION, "-e", "2.0.0", "--replica-count", "2"),
        (
            "sig",
            "image-version",
            "update",
            *DEFINITION,
            "-e",
            "2.0.0",
            "--regional-exclude-from-latest",
            "eastus2=1",
        ),
        ("sig", "image-version", "show", *DEFINITION, "-e", "latest", "-l", "eastus2"),
        ("sig", "image-version", "wait", *DEFINITION, "-e", "2.0.0", "-l", "eastus2"),
        ("-o", "table", "sig", "image-version", "list", *DEFINITION),
    ]
    for step in steps:
        assert same(twins, *step).returncode == 0
    flags = ("--regional-exclude-from-latest", "westeurope=true")
    same_failure(twins, "sig", "image-version", "update", *DEFINITION, "-e", "2.0.0", *flags, code=2)
    missing = ("sig", "image-version", "create", *DEFINITION, "-e", "2.0.1", "--source", "missing.raw")
    same_failure(twins, *missing, code=2)


def test_vm_create_downloads_the_disk_it_names(twins: Twins) -> None:
    image = ("--image", f"/galleries/{GALLERY}/images/img/versions/1.0.0", "-l", "eastus2")
    there, here = both(twins, "vm", "create", *image, "--output", "vm.img")
    assert (there.returncode, there.stderr) == (here.returncode, here.stderr) == (0, "")
    documents = [json.loads(result.stdout) for result in (there, here)]
    for document, cwd in zip(documents, (twins.daemon.cwd, twins.local), strict=True):
        assert document.pop("seconds") > 0
        assert document.pop("output") == str(cwd / "vm.img")
    assert documents[0] == documents[1]
    assert (twins.daemon.cwd / "vm.img").read_bytes() == twins.image.read_bytes()
    discarded = remote(twins, "vm", "create", "--image", f"/galleries/{GALLERY}/images/img")
    assert discarded.returncode == 0 and json.loads(discarded.stdout)["output"] is None


def test_a_version_is_deleted_alike(twins: Twins) -> None:
    create = ("sig", "image-version", "create", *DEFINITION, "-e", "3.0.0", "--source", twins.image)
    for result in both(twins, *create):
        assert result.returncode == 0, result.stderr
    assert same(twins, "sig", "image-version", "delete", *DEFINITION, "-e", "3.0.0").stdout == ""
    same_failure(twins, "sig", "image-version", "show", *DEFINITION, "-e", "3.0.0", code=1)
    same_failure(twins, "sig", "image-version", "delete", *DEFINITION, "-e", "3.0.0", code=1)


def test_principals_members_and_assignments_are_written_alike(twins: Twins) -> None:
    assignment = ("--assignee", "carol", "--role", "Contributor", "--scope", f"/galleries/{GALLERY}")
    same(twins, "principal", "create", "--name", "carol", "--type", "user")
    same_failure(twins, "principal", "create", "--name", "carol", "--type", "user", code=1)
    same(twins, "principal", "create", "--name", "crew", "--type", "group")
    same(twins, "group", "member", "add", "-g", "crew", "-m", "carol")
    same_failure(twins, "group", "member", "add", "-g", "crew", "-m", "carol", code=1)
    same(twins, "-o", "table", "group", "member", "remove", "-g", "crew", "-m", "carol")
    same(twins, "role", "assignment", "create", *assignment)
    same_failure(twins, "role", "assignment", "create", *assignment, code=1)
    same(twins, "role", "assignment", "list", "--assignee", "carol")
    assert same(twins, "role", "assignment", "delete", *assignment).stdout == ""
    same_failure(twins, "role", "assignment", "delete", *assignment, code=1)
    same_failure(
        twins,
        "role",
        "assignment",
        "delete",
        "--assignee",
        "admin",
        "--role",
        "Owner",
        "--scope",
        "/",
        code=1,
    )
    same_failure(twins, "role", "assignment", "create", *assignment[:4], "--scope", "/galleries/nope", code=1)
    same_failure(
        twins, "role", "assignment", "create", *assignment[:2], "--role", "Boss", "--scope", "/", code=2
    )
    assert same(twins, "principal", "delete", "--name", "carol").stdout == ""
    same_failure(twins, "principal", "show", "--name", "carol", code=1)


def test_creating_a_gallery_that_exists_changes_nothing(twins: Twins) -> None:
    same(twins, "sig", "create", "-r", "kept", "--description", "first")
    same_failure(twins, "sig", "create", "-r", "kept", "--description", "overwritten", code=1)
    same(twins, "sig", "show", "-r", "kept")


def test_a_version_create_reports_what_its_publish_did(twins: Twins) -> None:
    args = ("sig", "image-version", "create", *DEFINITION, "-e", "4.0.0", "--source", twins.image)
    there, here = both(twins, *args)
    assert "publish" in json.loads(here.stdout)
    assert "publish" in json.loads(there.stdout)


# --- what only a daemon can get wrong -----------------------------------------------------


def test_without_a_token_the_command_says_how_to_get_one(twins: Twins) -> None:
    result = blobrep("--endpoint", twins.daemon.url, "sig", "list", cwd=twins.daemon.cwd)
    assert_one_line_error(result, 1, "no token", "--token", "BLOBREP_TOKEN", "blobrep token create")


def test_a_token_the_daemon_does_not_know_is_refused_without_repeating_it(twins: Twins) -> None:
    forged = "brp_tok_0123456789ab_" + "A" * 43
    result = blobrep("--endpoint", twins.daemon.url, "--token", forged, "sig", "list", cwd=twins.daemon.cwd)
    line = assert_one_line_error(result, 1)
    assert forged not in line and "token" in line


def test_a_token_given_as_an_option_works_and_is_never_printed(twins: Twins) -> None:
    token = twins.daemon.tokens["reader"]
    result = blobrep("--endpoint", twins.daemon.url, "--token", token, "sig", "list", cwd=twins.daemon.cwd)
    assert result.returncode == 0 and token not in result.stdout + result.stderr
    assert [gallery["name"] for gallery in json.loads(result.stdout)] == [GALLERY]


def test_a_daemon_that_is_not_running_is_one_clear_line(twins: Twins) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    result = remote(twins, "sig", "list", env={"BLOBREP_ENDPOINT": endpoint})
    assert result.returncode == 0  # --endpoint wins over the variable
    result = blobrep(
        "sig", "list", cwd=twins.daemon.cwd, env={"BLOBREP_ENDPOINT": endpoint, "BLOBREP_TOKEN": "t"}
    )
    assert_one_line_error(
        result, 1, f"cannot reach the daemon at {endpoint}: connection refused", "blobrep serve"
    )


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--endpoint", "URL", "replicate", "-r", GALLERY), "works on a home"),
        (("--endpoint", "URL", "--as", "reader", "sig", "list"), "--as does not apply"),
        (("--token", "t", "sig", "list"), "--token is for a daemon"),
        (("--endpoint", "ftp://host", "sig", "list"), "not the URL of a daemon"),
        (("--endpoint", "http://user:secret@host", "sig", "list"), "credentials"),
    ],
)
def test_options_that_cannot_apply_are_refused(twins: Twins, args: Sequence[str], named: str) -> None:
    argv = [twins.daemon.url if arg == "URL" else arg for arg in args]
    result = blobrep(*argv, cwd=twins.daemon.cwd, env={"BLOBREP_TOKEN": twins.daemon.tokens["admin"]})
    assert_one_line_error(result, 2, named)


def test_a_home_only_command_leaves_the_endpoint_variable_aside(twins: Twins) -> None:
    env = {"BLOBREP_ENDPOINT": twins.daemon.url, "BLOBREP_TOKEN": twins.daemon.tokens["admin"]}
    result = blobrep("token", "list", cwd=twins.local, env=env)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("piped", [True, False], ids=["pipe", "redirected file"])
def test_standard_input_is_uploaded_as_it_is_read(twins: Twins, piped: bool) -> None:
    """A pipe has no length: it goes in chunked transfer encoding; standard input redirected
    from a file announces its length. Either way the version is the local one."""
    name = "5.0.0" if piped else "5.0.1"
    args = ("sig", "image-version", "create", *DEFINITION, "-e", name, "--source", "-", "--no-wait")

    def run(cwd: Path, *endpoint: str) -> subprocess.CompletedProcess[str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("BLOBREP_")}
        env["BLOBREP_TOKEN"] = twins.daemon.tokens["admin"]
        argv = [sys.executable, "-m", "blobrep", *endpoint, *args]
        if not piped:
            with open(twins.image, "rb") as stdin:
                return subprocess.run(argv, cwd=cwd, env=env, stdin=stdin, capture_output=True, text=True)
        with subprocess.Popen(["cat", str(twins.image)], stdout=subprocess.PIPE) as cat:
            return subprocess.run(argv, cwd=cwd, env=env, stdin=cat.stdout, capture_output=True, text=True)

    there = run(twins.daemon.cwd, "--endpoint", twins.daemon.url)
    here = run(twins.local)
    assert (there.returncode, there.stderr) == (here.returncode, here.stderr) == (0, "")
    created, remote = json.loads(here.stdout), json.loads(comparable(there.stdout))
    figures = ("newChunks", "writtenBytes")
    publish, remote_publish = created.pop("publish"), remote.pop("publish")
    assert {key: remote_publish[key] for key in figures} == {key: publish[key] for key in figures}
    assert remote == json.loads(comparable(json.dumps(created)))
    assert created["storageProfile"]["sizeInBytes"] == twins.image.stat().st_size


async def test_a_busy_version_exits_75_both_ways(twins: Twins) -> None:
    """Another live process runs an operation on the version: retry later (75), both ways."""
    update = ("sig", "image-version", "update", *VERSION, "--replica-count", "3")
    async with AsyncExitStack() as stack:
        for home in (twins.daemon.home, twins.local / ".blobrep"):
            catalog = await Catalog.open(home / "catalog.db")
            stack.push_async_callback(catalog.close)
            await stack.enter_async_context(
                hold_operation(catalog, GALLERY, "img", ImageVersion(1, 0, 0), "", OperationKind.UPDATE)
            )
        there = await anyio.to_thread.run_sync(lambda: remote(twins, *update))
        here = await anyio.to_thread.run_sync(lambda: local(twins, *update))
    assert (there.returncode, there.stderr) == (here.returncode, here.stderr)
    assert_one_line_error(there, 75, "is still running")
