"""Messages that say what is wrong: unknown regions and galleries refused wherever a call takes
one, calls over "everything" that cover what the caller may see, and access decided before
anything reveals whether a gallery, definition or version exists."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given

from blobrep.core.access import Action, RoleAssignment, reach
from blobrep.core.gallery import ReplicationState
from blobrep.core.ids import ResourceId
from blobrep.errors import (
    AccessDeniedError,
    BlobrepError,
    InvalidParameterError,
    InvalidRegionError,
    ResourceNotFoundError,
    StorageError,
)
from blobrep.service import DefinitionFields, GalleryService, LocalStore, SyntheticImage, VersionOptions
from tests.core import test_access as access_world
from tests.service.conftest import ADMIN, GALLERY, IMAGE, MIB
from tests.stored_frames import Frame, frames

OTHER_IMAGE = "debian"
FIELDS = DefinitionFields(publisher="contoso", offer="debian", sku="12", os_type="Linux")
KNOWN = "eastus2, southcentralus, southeastasia, westcentralus, westeurope"
UNKNOWN = f"unknown region 'nowhere': known regions are {KNOWN}"


def _version_id(version: str = "1.0.0", image: str = IMAGE) -> str:
    return f"/galleries/{GALLERY}/images/{image}/versions/{version}"


@pytest.fixture
async def published(service: GalleryService, definition: str, source: Path) -> str:
    """1.0.0 of ``ubuntu``, Completed in westcentralus and waiting in eastus2."""
    options = VersionOptions(target_regions=["westcentralus", "eastus2"])
    await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source, options=options)
    return "1.0.0"


# --- unknown regions ---------------------------------------------------------------------

Call = Callable[[GalleryService], Awaitable[Any]]

REGION_CALLS: dict[str, Call] = {
    "replicate a gallery": lambda s: s.replicate_all(ADMIN, GALLERY, regions=["nowhere"]),
    "replicate a definition": lambda s: s.replicate_all(ADMIN, GALLERY, IMAGE, regions=["nowhere"]),
    "replicate a version": lambda s: s.replicate_version(ADMIN, GALLERY, IMAGE, "1.0.0", regions=["nowhere"]),
    "gc": lambda s: s.collect_garbage(ADMIN, GALLERY, regions=["westcentralus", "nowhere"]),
    "scrub": lambda s: s.scrub(ADMIN, "nowhere", gallery=GALLERY),
    "fsck": lambda s: s.fsck(ADMIN, location="nowhere"),
    "show a version in a region": lambda s: s.show_version(
        ADMIN, GALLERY, IMAGE, "1.0.0", location="nowhere"
    ),
    "latest in a region": lambda s: s.show_version(ADMIN, GALLERY, IMAGE, "latest", location="nowhere"),
    "vm create": lambda s: s.deploy_vm(ADMIN, _version_id(), location="nowhere"),
    "vmss create": lambda s: s.deploy_scale_set(ADMIN, _version_id(), 2, location="nowhere"),
    "create a gallery": lambda s: s.create_gallery(ADMIN, "elsewhere", location="nowhere"),
    "show a region": lambda s: s.show_region(ADMIN, "nowhere"),
    "update the target regions": lambda s: s.update_version(
        ADMIN, GALLERY, IMAGE, "1.0.0", VersionOptions(target_regions=["westcentralus", "nowhere"])
    ),
    "update a regional flag": lambda s: s.update_version(
        ADMIN, GALLERY, IMAGE, "1.0.0", VersionOptions(regional_exclude_from_latest={"nowhere": True})
    ),
}


@pytest.mark.usefixtures("published")
@pytest.mark.parametrize("call", REGION_CALLS.values(), ids=REGION_CALLS.keys())
async def test_every_call_that_takes_a_region_refuses_an_unknown_one_naming_the_known(
    service: GalleryService, call: Call
) -> None:
    with pytest.raises((ResourceNotFoundError, InvalidRegionError)) as raised:
        await call(service)
    assert str(raised.value) == UNKNOWN


@pytest.mark.parametrize(
    "options",
    [
        VersionOptions(target_regions=["nowhere"]),
        VersionOptions(target_regions=["westcentralus", "nowhere"]),
        VersionOptions(regional_exclude_from_latest={"nowhere": True}),
        VersionOptions(target_regions=["eastus2"], regional_exclude_from_latest={"nowhere": False}),
    ],
    ids=["alone", "beside the source", "a regional flag", "a flag beside a target list without the source"],
)
async def test_creating_a_version_names_an_unknown_target_region_before_judging_the_list(
    service: GalleryService, definition: str, source: Path, options: VersionOptions
) -> None:
    with pytest.raises(InvalidRegionError) as raised:
        await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source, options=options)
    assert str(raised.value) == UNKNOWN
    assert await service.list_versions(ADMIN, GALLERY, definition) == []


async def test_a_source_region_left_out_of_known_targets_is_still_said_so(
    service: GalleryService, definition: str, source: Path
) -> None:
    options = VersionOptions(target_regions=["eastus2"])
    with pytest.raises(InvalidRegionError, match=r"source region 'westcentralus' must be one of the target"):
        await service.create_version(ADMIN, GALLERY, definition, "1.0.0", source=source, options=options)


@pytest.mark.usefixtures("published")
async def test_a_flag_for_a_known_region_that_is_no_target_says_so_and_how_to_add_it(
    service: GalleryService,
) -> None:
    flags = VersionOptions(regional_exclude_from_latest={"westeurope": True})
    with pytest.raises(InvalidRegionError) as raised:
        await service.update_version(ADMIN, GALLERY, IMAGE, "1.0.0", flags)
    message = str(raised.value)
    assert f"region 'westeurope' is not a target region of {_version_id()}" in message
    assert "its target regions: westcentralus, eastus2" in message
    assert "--target-regions westcentralus eastus2 westeurope" in message


@pytest.mark.usefixtures("published")
async def test_replicating_a_version_into_a_region_it_does_not_target_is_refused(
    service: GalleryService,
) -> None:
    with pytest.raises(InvalidRegionError, match=r"'westeurope' is not a target region of /galleries/"):
        await service.replicate_version(ADMIN, GALLERY, IMAGE, "1.0.0", regions=["westeurope"])
    status = (await service.show_version(ADMIN, GALLERY, IMAGE, "1.0.0")).status("eastus2")
    assert status is not None and status.state is ReplicationState.UNKNOWN


# --- unknown galleries -------------------------------------------------------------------


@pytest.mark.usefixtures("definition")  # nothing published: the region holds no replica yet
@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.scrub(ADMIN, "westcentralus", gallery="nog"),
        lambda s: s.scrub(ADMIN, "westcentralus", gallery="nog", repair=True),
        lambda s: s.fsck(ADMIN, gallery="nog"),
        lambda s: s.replicate_all(ADMIN, "nog"),
        lambda s: s.collect_garbage(ADMIN, "nog"),
    ],
    ids=["scrub", "scrub --repair", "fsck", "replicate", "gc"],
)
async def test_maintenance_of_a_gallery_that_does_not_exist_says_so(
    service: GalleryService, call: Call
) -> None:
    with pytest.raises(ResourceNotFoundError, match=r"gallery 'nog' not found"):
        await call(service)


# --- a store root that is not a directory --------------------------------------------------


@pytest.mark.parametrize("create", [True, False], ids=["create", "existing"])
async def test_a_store_whose_root_is_a_file_says_so_naming_it(tmp_path: Path, create: bool) -> None:
    root = tmp_path / "store"
    root.write_bytes(b"not a directory")
    store = LocalStore(root, create=create)
    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: store.put("galleries/g/leases/x.shared", b"{}"),
        lambda: store.get("galleries/g/chunks/ab"),
        lambda: store.stat("galleries/g/chunks/ab"),
    ]
    for attempt in attempts:
        with pytest.raises(StorageError) as raised:
            await attempt()
        message = str(raised.value)
        assert f"store root {root} exists and is not a directory" in message
        assert "File exists" not in message
    with pytest.raises(StorageError, match=r"exists and is not a directory"):
        _ = [key async for key in store.list("galleries/")]
    assert root.read_bytes() == b"not a directory"


# --- region paths ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "what"),
    [
        (lambda tmp: (tmp / "file").write_bytes(b"x") and tmp / "file", "it is a regular file"),
        (lambda tmp: Path(os.devnull), "it is a character device"),
    ],
    ids=["a file", "/dev/null"],
)
async def test_a_region_path_that_is_no_directory_is_refused_when_added(
    service: GalleryService, tmp_path: Path, make: Callable[[Path], Path], what: str
) -> None:
    path = make(tmp_path)
    with pytest.raises(InvalidParameterError) as raised:
        await service.add_region(ADMIN, "japaneast", path=path)
    assert f"region 'japaneast' at {path} is not a directory: {what}" in str(raised.value)
    assert "japaneast" not in {region.name for region in await service.list_regions(ADMIN)}


async def test_a_region_path_below_a_file_is_refused_when_added(
    service: GalleryService, tmp_path: Path
) -> None:
    """No directory can ever be made below a file: say so now, not at the first replication."""
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"x")
    path = blocker / "deeper" / "japaneast"
    with pytest.raises(InvalidParameterError) as raised:
        await service.add_region(ADMIN, "japaneast", path=path)
    assert f"region 'japaneast' at {path} is not a directory: {blocker}, above it, is a regular file" in str(
        raised.value
    )
    assert "japaneast" not in {region.name for region in await service.list_regions(ADMIN)}


@pytest.mark.parametrize("path", ["", "  "], ids=["empty", "blank"])
async def test_an_empty_region_path_is_refused_not_taken_for_the_current_directory(
    service: GalleryService, path: str
) -> None:
    with pytest.raises(InvalidParameterError, match=r"cannot add region 'japaneast': its path is empty"):
        await service.add_region(ADMIN, "japaneast", path=path)


async def test_a_configuration_naming_a_file_as_a_region_is_refused_on_load(
    service: GalleryService, tmp_path: Path
) -> None:
    blocker = tmp_path / "blocker"
    await service.add_region(ADMIN, "japaneast", path=blocker)
    blocker.write_bytes(b"replaced by a file")
    with pytest.raises(InvalidParameterError) as raised:
        await service.list_regions(ADMIN)
    message = str(raised.value)
    assert str(service.home / "blobrep.toml") in message
    assert f"region 'japaneast' at {blocker} is not a directory: it is a regular file" in message


# --- "everything" is what the caller may see ----------------------------------------------


async def _second_definition(service: GalleryService, tmp_path: Path) -> None:
    """``debian`` beside ``ubuntu``, with 1.0.0 from other bytes, Completed in westcentralus."""
    other = tmp_path / "other.raw"
    await anyio.to_thread.run_sync(_write_image, other)
    await service.create_definition(ADMIN, GALLERY, OTHER_IMAGE, FIELDS)
    await service.create_version(ADMIN, GALLERY, OTHER_IMAGE, "1.0.0", source=other)


def _write_image(path: Path) -> None:
    with open(path, "wb") as out:
        for block in SyntheticImage(2 * MIB, seed=99).blocks():
            out.write(block)


def _corrupt_every_chunk(service: GalleryService, image: str) -> set[str]:
    """Flip the last byte of every chunk frame only ``image`` names in westcentralus replica-1;
    the keys of the packs that hold them (the service publishes into packs), each named by
    ``image``'s manifests alone, so the damage is found only by checking ``image``."""
    root = service.home / "regions" / "westcentralus" / "replica-1"
    replica = root / "galleries" / GALLERY
    mine: dict[str, Frame] = {}
    others: dict[str, Frame] = {}
    for manifest in (replica / "images").glob("*/versions/*/manifest.json"):
        (mine if manifest.parts[-4] == image else others).update(frames(root, GALLERY, manifest))
    shared = {frame.key for frame in others.values()}
    names = [frame for digest, frame in mine.items() if digest not in others and frame.key not in shared]
    assert names, f"{image} shares every chunk or pack with the other definitions"
    assert all(frame.packed for frame in names)
    for frame in names:
        frame.flip(-1)
    return {frame.key for frame in names}


@pytest.mark.usefixtures("published")
async def test_scrub_and_fsck_without_a_gallery_cover_the_one_definition_a_principal_may_read(
    service: GalleryService, tmp_path: Path
) -> None:
    await _second_definition(service, tmp_path)
    _corrupt_every_chunk(service, OTHER_IMAGE)  # damage the caller may not see
    await service.create_principal(ADMIN, "bob", "user")
    await service.create_assignment(ADMIN, "bob", "Reader", f"/galleries/{GALLERY}/images/{IMAGE}")

    reports = await service.scrub("bob", "westcentralus")
    assert [report.gallery for report in reports] == [GALLERY]
    (report,) = reports
    assert report.ok and report.problems == ()
    assert [summary.manifests for summary in report.replicas] == [1]

    everything = await service.scrub(ADMIN, "westcentralus")
    assert not everything[0].ok  # the damage is there: bob's scrub checked ubuntu alone
    assert everything[0].replicas[0].chunks_checked > report.replicas[0].chunks_checked

    checked = await service.fsck("bob")
    assert checked.galleries == (GALLERY,) and checked.versions_checked == 1 and checked.ok
    with pytest.raises(AccessDeniedError, match=r"'bob' may not write to /galleries/gallery1"):
        await service.scrub("bob", "westcentralus", repair=True)


@pytest.mark.usefixtures("published")
async def test_a_definition_scoped_scrub_finds_and_repairs_damage_in_that_definition(
    service: GalleryService, tmp_path: Path
) -> None:
    await _second_definition(service, tmp_path)
    await service.update_version(ADMIN, GALLERY, IMAGE, "1.0.0", VersionOptions(replica_count=2))
    await service.replicate_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    damaged = _corrupt_every_chunk(service, IMAGE)
    await service.create_principal(ADMIN, "dev", "user")
    await service.create_assignment(ADMIN, "dev", "Contributor", f"/galleries/{GALLERY}/images/{IMAGE}")

    (found,) = await service.scrub("dev", "westcentralus")
    # Packed chunks are checked with their pack: one problem per damaged pack, named by its key.
    assert sorted((p.replica, p.kind, p.key_or_digest) for p in found.problems) == sorted(
        ("westcentralus/replica-1", "pack-corrupt", key) for key in damaged
    )
    (repaired,) = await service.scrub("dev", "westcentralus", repair=True)
    assert repaired.ok and repaired.repaired == len(found.problems)
    assert (await service.scrub(ADMIN, "westcentralus"))[0].ok


@pytest.mark.usefixtures("published")
async def test_replicate_of_a_gallery_reconciles_the_definitions_the_caller_may_write(
    service: GalleryService, tmp_path: Path
) -> None:
    await _second_definition(service, tmp_path)
    await service.update_version(
        ADMIN, GALLERY, OTHER_IMAGE, "1.0.0", VersionOptions(target_regions=["westcentralus", "eastus2"])
    )
    await service.create_principal(ADMIN, "dev", "user")
    await service.create_assignment(ADMIN, "dev", "Contributor", f"/galleries/{GALLERY}/images/{IMAGE}")

    done = await service.replicate_all("dev", GALLERY)
    assert [(version.image, str(version.version)) for version in done] == [(IMAGE, "1.0.0")]
    assert done[0].is_completed_in("eastus2")
    other = await service.show_version(ADMIN, GALLERY, OTHER_IMAGE, "1.0.0")
    assert not other.is_completed_in("eastus2")

    await service.create_principal(ADMIN, "viewer", "user")
    await service.create_assignment(ADMIN, "viewer", "Reader", f"/galleries/{GALLERY}")
    with pytest.raises(AccessDeniedError, match=r"'viewer' may not write to /galleries/gallery1"):
        await service.replicate_all("viewer", GALLERY)


@pytest.mark.usefixtures("published")
async def test_latest_for_a_reader_of_one_version_is_that_version(
    service: GalleryService, source: Path
) -> None:
    await service.create_version(ADMIN, GALLERY, IMAGE, "1.0.1", source=source)
    await service.create_principal(ADMIN, "pinned", "user")
    await service.create_assignment(ADMIN, "pinned", "Reader", _version_id("1.0.0"))
    latest = await service.show_version("pinned", GALLERY, IMAGE, "latest")
    assert str(latest.version) == "1.0.0"


@pytest.mark.usefixtures("published")
async def test_recovered_operations_are_reported_only_to_those_who_see_the_version(
    service: GalleryService,
) -> None:
    from blobrep.service.recovery import Recovered

    service._recovered = (
        Recovered(ResourceId.parse(_version_id()), "an interrupted update was finished"),
        Recovered(
            ResourceId.parse("/galleries/secret/images/x/versions/1.0.0"),
            "an interrupted deletion was finished",
        ),
    )
    await service.create_principal(ADMIN, "bob", "user")
    await service.create_assignment(ADMIN, "bob", "Reader", f"/galleries/{GALLERY}")
    report = await service.fsck("bob")
    assert [problem.what for problem in report.problems if problem.kind == "operation"] == [
        f"{_version_id()}: an interrupted update was finished"
    ]


# --- access before existence -------------------------------------------------------------

#: Each probe is called with (service, caller, gallery, image, version); the existing and the
#: missing resource must give the same error, word for word but for the name.
Probe = Callable[[GalleryService, str, str, str, str], Awaitable[Any]]


def _probes(source: Path) -> dict[str, Probe]:
    def version_id(g: str, i: str, v: str) -> str:
        return f"/galleries/{g}/images/{i}/versions/{v}"

    update = DefinitionFields(description="x")
    return {
        "show gallery": lambda s, c, g, i, v: s.show_gallery(c, g),
        "update gallery": lambda s, c, g, i, v: s.update_gallery(c, g, description="x"),
        "delete gallery": lambda s, c, g, i, v: s.delete_gallery(c, g),
        "list definitions": lambda s, c, g, i, v: s.list_definitions(c, g),
        "create definition": lambda s, c, g, i, v: s.create_definition(c, g, "fresh", FIELDS),
        "show definition": lambda s, c, g, i, v: s.show_definition(c, g, i),
        "update definition": lambda s, c, g, i, v: s.update_definition(c, g, i, update),
        "delete definition": lambda s, c, g, i, v: s.delete_definition(c, g, i),
        "list versions": lambda s, c, g, i, v: s.list_versions(c, g, i),
        "create version": lambda s, c, g, i, v: s.create_version(c, g, i, "7.0.0", source=source),
        "show version": lambda s, c, g, i, v: s.show_version(c, g, i, v),
        "show latest": lambda s, c, g, i, v: s.show_version(c, g, i, "latest"),
        "resolve definition id": lambda s, c, g, i, v: s.resolve_image(c, f"/galleries/{g}/images/{i}"),
        "update version": lambda s, c, g, i, v: s.update_version(c, g, i, v, VersionOptions(replica_count=2)),
        "delete version": lambda s, c, g, i, v: s.delete_version(c, g, i, v),
        "replicate version": lambda s, c, g, i, v: s.replicate_version(c, g, i, v),
        "replicate gallery": lambda s, c, g, i, v: s.replicate_all(c, g),
        "replicate definition": lambda s, c, g, i, v: s.replicate_all(c, g, i),
        "gc": lambda s, c, g, i, v: s.collect_garbage(c, g),
        "scrub": lambda s, c, g, i, v: s.scrub(c, "westcentralus", gallery=g),
        "fsck": lambda s, c, g, i, v: s.fsck(c, gallery=g),
        "vm create": lambda s, c, g, i, v: s.deploy_vm(c, version_id(g, i, v)),
        "vmss create": lambda s, c, g, i, v: s.deploy_scale_set(c, version_id(g, i, v), 2),
        "role create at gallery": lambda s, c, g, i, v: s.create_assignment(c, c, "Owner", f"/galleries/{g}"),
        "role create at definition": lambda s, c, g, i, v: s.create_assignment(
            c, c, "Owner", f"/galleries/{g}/images/{i}"
        ),
        "role create at version": lambda s, c, g, i, v: s.create_assignment(
            c, c, "Owner", version_id(g, i, v)
        ),
        "role delete": lambda s, c, g, i, v: s.delete_assignment(c, c, "Reader", version_id(g, i, v)),
        "role list": lambda s, c, g, i, v: s.list_assignments(c, scope=version_id(g, i, v)),
    }


GALLERY_LEVEL = list(_probes(Path("unused")))
DEFINITION_LEVEL = [name for name in GALLERY_LEVEL if "gallery" not in name and name != "list definitions"]
DEFINITION_LEVEL = [
    name for name in DEFINITION_LEVEL if name not in ("create definition", "gc", "scrub", "fsck")
]
VERSION_LEVEL = [
    "show version",
    "update version",
    "delete version",
    "replicate version",
    "vm create",
    "vmss create",
    "role create at version",
    "role delete",
    "role list",
]

#: (who probes, what differs between the existing and the missing target, the probes).
PROBERS = [
    ("nobody", "gallery", GALLERY_LEVEL),  # a user holding no role at all
    ("neighbour", "gallery", GALLERY_LEVEL),  # Owner of another gallery
    ("nobody", "image", DEFINITION_LEVEL),
    ("sibling", "image", DEFINITION_LEVEL),  # Owner of another definition of the gallery
    ("nobody", "version", VERSION_LEVEL),
    ("pinned", "version", VERSION_LEVEL),  # Reader of another version of the definition
]
EXISTING = {"gallery": GALLERY, "image": IMAGE, "version": "1.0.1"}
MISSING = {"gallery": "ghost", "image": "ghost", "version": "9.9.9"}


@pytest.fixture(scope="module")
def probed_home(tmp_path_factory: pytest.TempPathFactory, source: Path) -> Path:
    """A home with gallery1/ubuntu 1.0.0 and 1.0.1, gallery1/debian, a gallery ``other``, and
    the probing principals with their roles."""
    home = tmp_path_factory.mktemp("probed") / "home"

    async def build() -> None:
        async with await GalleryService.open(home) as service:
            await service.create_gallery(ADMIN, GALLERY, location="westcentralus")
            await service.create_gallery(ADMIN, "other", location="westcentralus")
            for name in (IMAGE, OTHER_IMAGE):
                await service.create_definition(
                    ADMIN,
                    GALLERY,
                    name,
                    DefinitionFields(publisher="p", offer=name, sku="s", os_type="Linux"),
                )
            for version in ("1.0.0", "1.0.1"):
                await service.create_version(ADMIN, GALLERY, IMAGE, version, source=source)
            for name, role, scope in (
                ("nobody", None, None),
                ("neighbour", "Owner", "/galleries/other"),
                ("sibling", "Owner", f"/galleries/{GALLERY}/images/{OTHER_IMAGE}"),
                ("pinned", "Reader", _version_id("1.0.0")),
            ):
                await service.create_principal(ADMIN, name, "user")
                if role is not None and scope is not None:
                    await service.create_assignment(ADMIN, name, role, scope)

    anyio.run(build)
    return home


def _cases() -> list[Any]:
    return [
        pytest.param(who, level, probe, id=f"{who}-{level}-{probe}")
        for who, level, probes in PROBERS
        for probe in probes
    ]


@pytest.mark.parametrize(("who", "level", "probe"), _cases())
async def test_a_principal_without_access_cannot_tell_an_existing_resource_from_a_missing_one(
    probed_home: Path, source: Path, who: str, level: str, probe: str
) -> None:
    call = _probes(source)[probe]
    outcomes: list[tuple[type[BaseException], str]] = []
    async with await GalleryService.open(probed_home) as service:
        for names in (EXISTING, MISSING):
            target = {**EXISTING, level: names[level]}
            with pytest.raises(BlobrepError) as raised:
                await call(service, who, target["gallery"], target["image"], target["version"])
            outcomes.append((type(raised.value), str(raised.value).replace(names[level], EXISTING[level])))
    (existing_type, existing_message), (missing_type, missing_message) = outcomes
    assert existing_type is AccessDeniedError, existing_message
    assert (missing_type, missing_message) == (existing_type, existing_message)
    assert f"principal {who!r} may not" in existing_message


# --- where a role reaches inside a gallery ---------------------------------------------------


@given(
    principal=access_world.users,
    action=access_world.actions,
    assignments=access_world.assignment_lists,
    memberships=access_world.membership_maps,
)
def test_the_reach_in_a_gallery_is_exactly_where_the_action_is_allowed(
    principal: str,
    action: Action,
    assignments: list[RoleAssignment],
    memberships: dict[str, list[str]],
) -> None:
    gallery = ResourceId.of_gallery("g1")
    resources = [ResourceId.of_image("g1", image) for image in access_world.IMAGES] + [
        ResourceId.of_version("g1", image, version)
        for image in access_world.IMAGES
        for version in access_world.VERSIONS
    ]
    where = reach(principal, action, gallery, resources, assignments, memberships)
    allowed = access_world.reference_allows
    assert where.whole == allowed(principal, action, gallery, assignments, memberships)
    for resource in resources:
        assert where.covers(resource) == allowed(principal, action, resource, assignments, memberships)
    assert not any(
        outer != inner and outer.contains(inner) for outer in where.scopes for inner in where.scopes
    )
    assert not where.covers(ResourceId.of_gallery("g2"))
