"""``--ids`` on ``sig``, ``sig image-definition`` and ``sig image-version`` show, update and
delete: ids instead of names, several at once in the order given, on a home and through a
daemon alike; and every way of getting it wrong is one line and exit 2, before anything runs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import assert_one_line_error, blobrep
from tests.cli.remote_twins import GALLERY, Twins, both, prepare_twins, same, same_failure

GAL = "/galleries/gal"
GAL2 = "/galleries/gal2"
DISK = "/galleries/gal/images/disk"
OTHER = "/galleries/gal/images/other"
V100 = f"{DISK}/versions/1.0.0"
V101 = f"{DISK}/versions/1.0.1"
IDENTITY = ("--publisher", "p", "--offer", "o", "--os-type", "Linux")


def ok(cwd: Path, *args: str | Path) -> str:
    result = blobrep(*args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, image: Path) -> Path:
    """A directory whose home has galleries gal and gal2, definitions gal/disk and gal/other,
    and versions 1.0.0 and 1.0.1 of gal/disk in westcentralus."""
    root = tmp_path_factory.mktemp("ids")
    ok(root, "sig", "create", "-r", "gal", "-l", "westcentralus", "--description", "first")
    ok(root, "sig", "create", "-r", "gal2", "-l", "westcentralus", "--description", "second")
    for definition in ("disk", "other"):
        ok(
            root,
            "sig",
            "image-definition",
            "create",
            "-r",
            "gal",
            "-i",
            definition,
            "--sku",
            definition,
            *IDENTITY,
        )
    for version in ("1.0.0", "1.0.1"):
        ok(
            root,
            "sig",
            "image-version",
            "create",
            "-r",
            "gal",
            "-i",
            "disk",
            "-e",
            version,
            "--source",
            image,
        )
    return root


@pytest.fixture
def work(prepared: Path, tmp_path: Path) -> Path:
    """A copy of the prepared home to change."""
    shutil.copytree(prepared / ".blobrep", tmp_path / ".blobrep")
    return tmp_path


# --- one id is the names -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "names", "resource"),
    [
        ((), ("-r", "gal"), GAL),
        (("image-definition",), ("-r", "gal", "-i", "disk"), DISK),
        (("image-version",), ("-r", "gal", "-i", "disk", "-e", "1.0.1"), V101),
        (
            ("image-version",),
            ("-r", "gal", "-i", "disk", "-e", "latest", "-l", "westcentralus"),
            f"{DISK}/versions/latest",
        ),
    ],
    ids=["gallery", "definition", "version", "latest"],
)
def test_show_with_one_id_prints_what_the_names_print(
    prepared: Path, group: tuple[str, ...], names: tuple[str, ...], resource: str
) -> None:
    location = ("-l", "westcentralus") if resource.endswith("latest") else ()
    by_names = ok(prepared, "sig", *group, "show", *names)
    by_id = ok(prepared, "sig", *group, "show", "--ids", resource, *location)
    assert by_id == by_names
    assert json.loads(by_id)["id"] == resource.replace("latest", "1.0.1")


@pytest.mark.parametrize(
    ("group", "resources"),
    [((), [GAL2, GAL]), (("image-definition",), [OTHER, DISK]), (("image-version",), [V101, V100])],
    ids=["galleries", "definitions", "versions"],
)
def test_show_with_several_ids_prints_a_list_in_the_order_of_the_ids(
    prepared: Path, group: tuple[str, ...], resources: list[str]
) -> None:
    shown = json.loads(ok(prepared, "sig", *group, "show", "--ids", *resources))
    assert [item["id"] for item in shown] == resources
    table = ok(prepared, "-o", "table", "sig", *group, "show", "--ids", *resources)
    names = [resource.rsplit("/", 1)[1] for resource in resources]
    rows = [line.split()[0] for line in table.splitlines()[2:]]
    assert rows == names


# --- several ids change each, in order, and stop at the first error ------------------------


def test_update_and_delete_act_on_every_id(work: Path) -> None:
    updated = json.loads(ok(work, "sig", "update", "--ids", GAL2, GAL, "--description", "both"))
    assert [(item["name"], item["description"]) for item in updated] == [("gal2", "both"), ("gal", "both")]
    definitions = json.loads(
        ok(work, "sig", "image-definition", "update", "--ids", DISK, OTHER, "--description", "d")
    )
    assert [item["description"] for item in definitions] == ["d", "d"]
    versions = json.loads(
        ok(work, "sig", "image-version", "update", "--ids", V100, V101, "--exclude-from-latest", "true")
    )
    assert [item["publishingProfile"]["excludeFromLatest"] for item in versions] == [True, True]

    assert ok(work, "sig", "image-version", "delete", "--ids", V101, V100) == ""
    assert json.loads(ok(work, "sig", "image-version", "list", "-r", "gal", "-i", "disk")) == []
    assert ok(work, "sig", "image-definition", "delete", "--ids", OTHER, DISK) == ""
    assert ok(work, "sig", "delete", "--ids", GAL, GAL2) == ""
    assert json.loads(ok(work, "sig", "list")) == []


def test_an_update_stops_at_the_first_error_and_prints_what_it_changed(work: Path) -> None:
    result = blobrep("sig", "update", "--ids", GAL, "/galleries/nope", GAL2, "--description", "new", cwd=work)
    assert result.returncode == 1
    assert result.stderr == "blobrep: error: gallery 'nope' not found\n"
    assert [item["name"] for item in json.loads(result.stdout)] == ["gal"]
    assert json.loads(ok(work, "sig", "show", "-r", "gal"))["description"] == "new"
    assert json.loads(ok(work, "sig", "show", "-r", "gal2"))["description"] == "second"


def test_an_id_given_twice_is_acted_on_once(work: Path) -> None:
    assert ok(work, "sig", "image-version", "delete", "--ids", V100, V100) == ""
    versions = json.loads(ok(work, "sig", "image-version", "list", "-r", "gal", "-i", "disk"))
    assert [version["name"] for version in versions] == ["1.0.1"]
    shown = json.loads(ok(work, "sig", "image-version", "show", "--ids", V101, V101))
    assert [version["name"] for version in shown] == ["1.0.1"]


def test_a_delete_stops_at_the_first_error(work: Path) -> None:
    result = blobrep(
        "sig", "image-version", "delete", "--ids", V100, f"{DISK}/versions/9.9.9", V101, cwd=work
    )
    assert_one_line_error(result, 1, "9.9.9")
    versions = json.loads(ok(work, "sig", "image-version", "list", "-r", "gal", "-i", "disk"))
    assert [version["name"] for version in versions] == ["1.0.1"]
    # gal still holds definitions: deleting it fails, and gal2 after it is left alone.
    result = blobrep("sig", "delete", "--ids", GAL, GAL2, cwd=work)
    assert_one_line_error(result, 1)
    assert [gallery["name"] for gallery in json.loads(ok(work, "sig", "list"))] == ["gal", "gal2"]


# --- the mistakes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("sig", "delete", "--ids", GAL2, "-r", "gal2"),
        ("sig", "image-definition", "delete", "--ids", OTHER, "-i", "other"),
        ("sig", "image-version", "delete", "-e", "1.0.0", "--ids", V100),
        ("sig", "image-version", "show", "-r", "gal", "--ids", V100),
    ],
    ids=["gallery", "definition", "version", "show"],
)
def test_ids_and_names_together_are_refused_before_anything_is_done(
    work: Path, args: tuple[str, ...]
) -> None:
    line = assert_one_line_error(blobrep(*args, cwd=work), 2, "use --ids or the names", "not both")
    assert ("-r" in args) == ("--gallery-name/-r" in line)
    assert len(json.loads(ok(work, "sig", "image-version", "list", "-r", "gal", "-i", "disk"))) == 2
    assert len(json.loads(ok(work, "sig", "image-definition", "list", "-r", "gal"))) == 2


@pytest.mark.parametrize(
    ("args", "missing"),
    [
        (("sig", "show"), "--gallery-name/-r"),
        (("sig", "image-definition", "update", "-r", "gal"), "--gallery-image-definition/-i"),
        (("sig", "image-version", "delete", "-r", "gal", "-i", "disk"), "--gallery-image-version/-e"),
        (("sig", "image-version", "show"), "--gallery-name/-r, --gallery-image-definition/-i"),
    ],
)
def test_neither_ids_nor_names_says_what_is_missing(
    prepared: Path, args: tuple[str, ...], missing: str
) -> None:
    assert_one_line_error(blobrep(*args, cwd=prepared), 2, f"required: {missing}", "--ids /galleries/")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (
            ("sig", "show", "--ids", DISK),
            ("the id of an image definition, not of a gallery", "/galleries/myGallery"),
        ),
        (
            ("sig", "image-definition", "delete", "--ids", V100),
            ("an image version, not of an image definition",),
        ),
        (
            ("sig", "image-version", "show", "--ids", DISK),
            (
                "an image definition, not of an image version",
                "/galleries/myGallery/images/ubuntu/versions/1.0.0",
            ),
        ),
        (
            ("sig", "image-version", "update", "--ids", V100, GAL),
            ("'/galleries/gal' is the id of a gallery",),
        ),
        (("sig", "show", "--ids", "/"), ("the id of the home, not of a gallery",)),
        (("sig", "image-version", "delete", "--ids", f"{DISK}/versions/latest"), ("only 'show' resolves",)),
    ],
    ids=[
        "definition for gallery",
        "version for definition",
        "definition for version",
        "second id",
        "home",
        "latest",
    ],
)
def test_an_id_of_the_wrong_level_says_which_level_is_wanted(
    work: Path, args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    line = assert_one_line_error(blobrep(*args, cwd=work), 2, "argument --ids", *fragments)
    assert "for example /galleries/" in line
    assert len(json.loads(ok(work, "sig", "image-version", "list", "-r", "gal", "-i", "disk"))) == 2


@pytest.mark.parametrize(
    "value",
    [
        "gal",
        "galleries/gal",
        "/galleries/gal/",
        "/galleries//images/disk",
        "/galleries/../etc",
        "/galleries/a/b",
        "/galleries/gal/images/disk/versions/1.x",
        "/galleries/gal/images/disk/versions/01.0.0",
        "/galleries/gal/images/disk/versions/4294967296.0.0",
        "/gallery/gal/images/disk/versions/1.0.0",
        "/galleries/ga l/images/disk/versions/1.0.0",
        "/galleries/gal/images/disk/versions/1.0.0/extra/x",
        "",
        "名前",
    ],
)
def test_a_malformed_id_is_refused_in_one_line(prepared: Path, value: str) -> None:
    result = blobrep("sig", "image-version", "show", "--ids", V100, value, cwd=prepared)
    line = assert_one_line_error(result, 2, "argument --ids", repr(value))
    assert "give image version ids, for example /galleries/myGallery/images/ubuntu/versions/1.0.0" in line


@pytest.mark.parametrize(
    ("group", "takes"),
    [
        ((), "gallery ids"),
        (("image-definition",), "image definition ids"),
        (("image-version",), "image version ids"),
    ],
)
def test_the_help_says_what_ids_take(prepared: Path, group: tuple[str, ...], takes: str) -> None:
    for action in ("show", "update", "delete"):
        shown = " ".join(ok(prepared, "sig", *group, action, "--help").split())
        assert "--ids ID [ID ...]" in shown and f"one or more {takes} (/galleries/" in shown
        assert ("or .../versions/latest" in shown) == (group == ("image-version",) and action == "show")


# --- through a daemon ------------------------------------------------------------------------

G = f"/galleries/{GALLERY}"
IMG = f"{G}/images/img"


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twins]:
    yield from prepare_twins(tmp_path_factory)


@pytest.mark.parametrize(
    "args",
    [
        ("sig", "show", "--ids", G),
        ("-o", "table", "sig", "image-definition", "show", "--ids", IMG, IMG),
        (
            "sig",
            "image-version",
            "show",
            "--ids",
            f"{IMG}/versions/1.0.0",
            f"{IMG}/versions/latest",
            "-l",
            "eastus2",
        ),
        (
            "--query",
            "[].name",
            "-o",
            "tsv",
            "sig",
            "image-version",
            "show",
            "--ids",
            f"{IMG}/versions/1.0.0",
            f"{IMG}/versions/1.0.0",
        ),
    ],
    ids=["gallery", "definitions table", "versions", "query"],
)
def test_ids_read_the_same_through_the_daemon(twins: Twins, args: tuple[str, ...]) -> None:
    assert same(twins, *args).returncode == 0


@pytest.mark.parametrize(
    ("args", "code", "principal"),
    [
        (("sig", "show", "--ids", "/galleries/nope", G), 1, "admin"),
        (("sig", "show", "--ids", G), 1, "nobody"),
        (("sig", "update", "--ids", G, "--description", "mine"), 1, "reader"),
        (("sig", "show", "--ids", G, "-r", GALLERY), 2, "admin"),
        (("sig", "image-version", "show", "-r", GALLERY, "-i", "img"), 2, "admin"),
        (("sig", "image-version", "delete", "--ids", IMG), 2, "admin"),
    ],
    ids=["missing", "no role", "reader writes", "both", "neither", "wrong level"],
)
def test_ids_fail_alike_through_the_daemon(
    twins: Twins, args: tuple[str, ...], code: int, principal: str
) -> None:
    same_failure(twins, *args, code=code, principal=principal)


def test_ids_write_alike_through_the_daemon(twins: Twins) -> None:
    for name in ("w1", "w2"):
        same(twins, "sig", "create", "-r", name, "--location", "eastus2")
    same(
        twins, "-o", "table", "sig", "update", "--ids", "/galleries/w2", "/galleries/w1", "--description", "d"
    )
    partial = same(
        twins,
        "sig",
        "update",
        "--ids",
        "/galleries/w1",
        "/galleries/none",
        "/galleries/w2",
        "--description",
        "e",
    )
    assert partial.returncode == 1 and partial.stderr == "blobrep: error: gallery 'none' not found\n"
    assert [item["description"] for item in json.loads(partial.stdout)] == ["e"]
    shown = json.loads(same(twins, "sig", "show", "--ids", "/galleries/w1", "/galleries/w2").stdout)
    assert [item["description"] for item in shown] == ["e", "d"]
    assert same(twins, "sig", "delete", "--ids", "/galleries/w1", "/galleries/w2").stdout == ""
    same_failure(twins, "sig", "show", "--ids", "/galleries/w2", code=1)


def test_versions_are_deleted_by_id_alike_through_the_daemon(twins: Twins) -> None:
    for version in ("7.0.0", "7.0.1"):
        create = (
            "sig",
            "image-version",
            "create",
            "-r",
            GALLERY,
            "-i",
            "img",
            "-e",
            version,
            "--source",
            twins.image,
        )
        for result in both(twins, *create):
            assert result.returncode == 0, result.stderr
    versions = (f"{IMG}/versions/7.0.1", f"{IMG}/versions/7.0.0")
    updated = same(
        twins, "sig", "image-version", "update", "--ids", *versions, "--exclude-from-latest", "true"
    )
    assert [item["name"] for item in json.loads(updated.stdout)] == ["7.0.1", "7.0.0"]
    assert same(twins, "sig", "image-version", "delete", "--ids", *versions).stdout == ""
    same_failure(twins, "sig", "image-version", "show", "--ids", versions[1], code=1)


# --- wait takes ids too --------------------------------------------------------------------


def test_wait_with_several_ids_waits_for_each_and_prints_them_in_order(prepared: Path) -> None:
    waited = json.loads(ok(prepared, "sig", "image-version", "wait", "--ids", V101, V100, "--timeout", "0"))
    assert [item["id"] for item in waited] == [V101, V100]
    assert all(item["replicationStatus"]["aggregatedState"] == "Completed" for item in waited)
    one = json.loads(ok(prepared, "sig", "image-version", "wait", "--ids", V100, "--timeout", "0"))
    assert one["id"] == V100
    wrong = blobrep("sig", "image-version", "wait", "--ids", DISK, cwd=prepared)
    assert_one_line_error(wrong, 2, "image definition", "image version")
    both_ways = blobrep("sig", "image-version", "wait", "--ids", V100, "-e", "1.0.0", cwd=prepared)
    assert_one_line_error(both_ways, 2, "use --ids or the names")


def test_wait_by_id_is_alike_through_the_daemon(twins: Twins) -> None:
    version = f"/galleries/{GALLERY}/images/img/versions/1.0.0"
    waited = json.loads(
        same(twins, "sig", "image-version", "wait", "--ids", version, "--timeout", "0").stdout
    )
    assert waited["replicationStatus"]["aggregatedState"] == "Completed"


def test_expanded_rows_of_several_versions_name_their_version(prepared: Path) -> None:
    table = ok(
        prepared,
        "-o",
        "table",
        "sig",
        "image-version",
        "show",
        "--ids",
        V101,
        V100,
        "--expand",
        "ReplicationStatus",
    )
    header, _, *rows = table.splitlines()
    assert header.split()[:2] == ["version", "region"]
    assert [row.split()[0] for row in rows] == ["1.0.1", "1.0.0"]
