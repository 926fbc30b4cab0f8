"""The gallery lifecycle through the library: a definition's retention policy shrinking old
versions to the home region (on local and object regions, with their space reclaimed), end of
life skipped by ``latest`` on request, and versions guarded from deletion until their end of life.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from blobrep.core.definitions import format_datetime
from blobrep.core.gallery import AggregatedState, ProvisioningState, ReplicationState
from blobrep.errors import (
    InvalidParameterError,
    InvalidRegionError,
    PreconditionError,
    ResourceNotFoundError,
    UnavailableError,
)
from blobrep.service import DefinitionFields, GalleryService, Store, SyntheticImage, VersionOptions
from blobrep.storage.faulty import Fault, FaultyStore
from blobrep.storage.object_url import ObjectKind, ObjectUrl
from tests.object_servers import listed
from tests.service.conftest import ADMIN, GALLERY, IMAGE, MIB

HOME = "westcentralus"
VERSIONS = [f"1.0.{patch}" for patch in range(6)]


def disk(tmp_path: Path, seed: int) -> Path:
    """A 2 MiB image of its own: versions built from different seeds share no chunk."""
    path = tmp_path / f"disk-{seed}.raw"
    with open(path, "wb") as out:
        for block in SyntheticImage(2 * MIB, seed=seed).blocks():
            out.write(block)
    return path


def local_bytes(root: Path) -> int:
    return sum(entry.stat().st_size for entry in root.rglob("*") if entry.is_file())


async def region_bytes(service: GalleryService, region: str) -> int:
    """What a region holds in all its replicas, in bytes of files or objects."""
    info = await service.show_region(ADMIN, region)
    if info.path is not None:
        return local_bytes(Path(info.path))
    assert info.url is not None
    return sum(meta["size"] for meta in await listed(ObjectUrl.parse(info.url)))


def sha256(path: Path) -> bytes:
    return hashlib.sha256(path.read_bytes()).digest()


async def publish(
    service: GalleryService, number: str, source: Path, targets: list[str], **options: object
) -> None:
    chosen = VersionOptions(target_regions=targets, allow_replicated_location_deletion=True)
    chosen = dataclasses.replace(chosen, **options)  # type: ignore[arg-type]
    await service.create_version(ADMIN, GALLERY, IMAGE, number, source=source, options=chosen)
    await service.replicate_version(ADMIN, GALLERY, IMAGE, number)


@pytest.mark.parametrize("kind", ["s3", "azure"])
async def test_the_seed_scenario_keeps_two_versions_global_and_the_rest_at_home(
    service: GalleryService,
    definition: str,
    prefixes: dict[ObjectKind, ObjectUrl],
    kind: ObjectKind,
    tmp_path: Path,
) -> None:
    await service.add_region(ADMIN, "North Europe", url=str(prefixes[kind]))
    regions = [HOME, "eastus2", "northeurope"]
    policy = DefinitionFields(keep_global=2)
    updated = await service.update_definition(ADMIN, GALLERY, IMAGE, policy)
    assert updated.retention_policy is not None and updated.retention_policy.home_region == HOME

    sources = {number: disk(tmp_path, seed=100 + index) for index, number in enumerate(VERSIONS)}
    started = datetime.now(UTC).replace(microsecond=0)
    for number in VERSIONS:
        await publish(service, number, sources[number], [HOME, "eastus2=2", "northeurope"])

    versions = {str(v.version): v for v in await service.list_versions(ADMIN, GALLERY, IMAGE)}
    for number in ("1.0.4", "1.0.5"):
        kept = versions[number]
        assert kept.aggregated_state is AggregatedState.COMPLETED
        assert [(s.region, s.completed_replicas) for s in kept.regions] == [
            (HOME, 1),
            ("eastus2", 2),
            ("northeurope", 1),
        ]
        assert kept.retention is None
    for number in VERSIONS[:4]:
        shrunk = versions[number]
        assert [(s.region, s.state, s.completed_replicas) for s in shrunk.regions] == [
            (HOME, ReplicationState.COMPLETED, 1)
        ]
        assert shrunk.retention is not None and shrunk.retention.shrunk
        assert shrunk.retention.at >= started
        assert shrunk.retention.details == (
            f"shrunk to {HOME} (keep-global 2, home region {HOME}): removed eastus2, northeurope"
        )

    # Away from home the stores hold the two kept versions and nothing else: the shrink
    # collected the chunks of the others at once, and a later gc finds nothing left to take.
    stored = {number: v.blob.stored_bytes for number, v in versions.items() if v.blob is not None}
    kept_bytes = stored["1.0.4"] + stored["1.0.5"]
    all_bytes = sum(stored.values())
    assert kept_bytes < all_bytes / 2
    slack = 64 * 1024  # manifests and pack tables
    assert 2 * kept_bytes <= await region_bytes(service, "eastus2") <= 2 * kept_bytes + slack
    assert kept_bytes <= await region_bytes(service, "northeurope") <= kept_bytes + slack
    assert all_bytes <= await region_bytes(service, HOME) <= all_bytes + 2 * slack
    later = await service.collect_garbage(ADMIN, GALLERY, regions=["eastus2", "northeurope"], grace=0)
    assert [(r.deleted_chunks, r.deleted_packs) for r in later] == [(0, 0)] * 3

    for region in regions:
        latest = await service.resolve_latest(ADMIN, GALLERY, IMAGE, location=region)
        assert str(latest.version) == "1.0.5"
    for number in VERSIONS:
        out = tmp_path / f"vm-{number}.raw"
        image_id = f"/galleries/{GALLERY}/images/{IMAGE}/versions/{number}"
        await service.deploy_vm(ADMIN, image_id, location=HOME, output=out)
        assert sha256(out) == sha256(sources[number]), number
        out.unlink()
    with pytest.raises(UnavailableError, match=r"eastus2"):
        await service.deploy_vm(
            ADMIN, f"/galleries/{GALLERY}/images/{IMAGE}/versions/1.0.0", location="eastus2"
        )
    for region in ("eastus2", "northeurope"):
        reports = await service.scrub(ADMIN, region, gallery=GALLERY)
        assert all(report.ok for report in reports), region
    assert (await service.fsck(ADMIN)).ok


async def test_a_version_its_safety_profile_protects_stays_global_and_says_why(
    service: GalleryService, definition: str, tmp_path: Path
) -> None:
    await service.update_definition(ADMIN, GALLERY, IMAGE, DefinitionFields(keep_global=1))
    targets = [HOME, "eastus2"]
    await publish(service, "1.0.0", disk(tmp_path, 1), targets, allow_replicated_location_deletion=False)
    await publish(service, "1.0.1", disk(tmp_path, 2), targets)
    kept = await service.show_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    assert [s.region for s in kept.regions] == [HOME, "eastus2"]
    assert kept.retention is not None and not kept.retention.shrunk
    assert "does not allow deleting replicated locations (eastus2)" in kept.retention.details

    # Allowed later, it shrinks at once: the update applies the policy again.
    allowed = await service.update_version(
        ADMIN, GALLERY, IMAGE, "1.0.0", VersionOptions(allow_replicated_location_deletion=True)
    )
    assert [s.region for s in allowed.regions] == [HOME]
    assert allowed.retention is not None and allowed.retention.shrunk
    assert (
        allowed.retention.details == f"shrunk to {HOME} (keep-global 1, home region {HOME}): removed eastus2"
    )
    await publish(service, "1.0.2", disk(tmp_path, 3), targets)
    shrunk = {str(v.version): v for v in await service.list_versions(ADMIN, GALLERY, IMAGE)}
    assert [[s.region for s in shrunk[n].regions] for n in ("1.0.0", "1.0.1", "1.0.2")] == [
        [HOME],
        [HOME],
        [HOME, "eastus2"],
    ]
    assert shrunk["1.0.0"].retention is not None and shrunk["1.0.0"].retention.shrunk


async def test_marks_follow_the_policy_as_it_changes_and_never_go_stale(
    service: GalleryService, definition: str, tmp_path: Path
) -> None:
    await service.update_definition(ADMIN, GALLERY, IMAGE, DefinitionFields(keep_global=1))
    await publish(service, "1.0.0", disk(tmp_path, 1), [HOME, "eastus2"])
    await publish(
        service, "1.0.1", disk(tmp_path, 2), [HOME, "eastus2"], allow_replicated_location_deletion=False
    )
    await publish(service, "1.0.2", disk(tmp_path, 3), [HOME, "eastus2"])

    async def marks() -> dict[str, tuple[bool, str] | None]:
        return {
            str(v.version): None if v.retention is None else (v.retention.shrunk, v.retention.details)
            for v in await service.list_versions(ADMIN, GALLERY, IMAGE)
        }

    first = await marks()
    assert first["1.0.0"] == (True, f"shrunk to {HOME} (keep-global 1, home region {HOME}): removed eastus2")
    assert first["1.0.1"] is not None and not first["1.0.1"][0]
    assert first["1.0.2"] is None

    # Home elsewhere: 1.0.0 is still shrunk (to its source region, which it cannot leave).
    await service.update_definition(ADMIN, GALLERY, IMAGE, DefinitionFields(home_region="eastus2"))
    away = await marks()
    assert away["1.0.0"] == (
        True,
        f"shrunk to {HOME}, its source region (keep-global 1, home region eastus2): a version cannot"
        " leave its source region, and it lives there alone with one replica",
    )
    # Home back: the mark quotes the rule that holds again, not the one in between.
    await service.update_definition(ADMIN, GALLERY, IMAGE, DefinitionFields(home_region=HOME))
    back = await marks()
    assert back["1.0.0"] == (True, f"shrunk to {HOME} (keep-global 1, home region {HOME})")
    assert back["1.0.1"] is not None and "does not allow deleting replicated locations" in back["1.0.1"][1]

    # Two kept global: 1.0.1 is no longer due, and its reason not to shrink goes with it;
    # 1.0.0 is older than both kept, shrunk as this rule would shrink it, and says so.
    await service.update_definition(ADMIN, GALLERY, IMAGE, DefinitionFields(keep_global=2))
    wider = await marks()
    assert wider["1.0.1"] is None
    assert wider["1.0.0"] == (True, f"shrunk to {HOME} (keep-global 2, home region {HOME})")
    # Three: 1.0.0 is among the kept now; its mark, of a shrink this rule would not make, is history.
    await service.update_definition(ADMIN, GALLERY, IMAGE, DefinitionFields(keep_global=3))
    assert (await marks())["1.0.0"] == wider["1.0.0"]
    regions = {
        str(v.version): [s.region for s in v.regions]
        for v in await service.list_versions(ADMIN, GALLERY, IMAGE)
    }
    assert regions == {"1.0.0": [HOME], "1.0.1": [HOME, "eastus2"], "1.0.2": [HOME, "eastus2"]}


async def test_a_version_kept_global_again_is_grown_back_to_the_regions_it_had(
    service: GalleryService, definition: str, tmp_path: Path
) -> None:
    await service.update_definition(ADMIN, GALLERY, IMAGE, DefinitionFields(keep_global=1))
    await publish(service, "1.0.0", disk(tmp_path, 1), [HOME, "eastus2=2", "westeurope"])
    await publish(service, "1.0.1", disk(tmp_path, 2), [HOME, "eastus2=2", "westeurope"])

    async def regions(number: str) -> list[tuple[str, int]]:
        version = await service.show_version(ADMIN, GALLERY, IMAGE, number)
        return [
            (t.name, version.publishing_profile.effective_replica_count(t))
            for t in version.publishing_profile.target_regions
        ]

    assert await regions("1.0.0") == [(HOME, 1)]
    # 1.0.1 is withdrawn: 1.0.0 is the newest again, and gets its regions back at once.
    await service.delete_version(ADMIN, GALLERY, IMAGE, "1.0.1")
    grown = await service.show_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    assert await regions("1.0.0") == [(HOME, 1), ("eastus2", 2), ("westeurope", 1)]
    assert grown.retention is not None and not grown.retention.shrunk
    assert grown.retention.details == (
        f"grown back to eastus2, westeurope (keep-global 1, home region {HOME}):"
        " it is among the 1 newest again"
    )
    assert {s.region: s.state for s in grown.regions}["eastus2"] is ReplicationState.UNKNOWN
    await service.replicate_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    for region in ("eastus2", "westeurope"):
        latest = await service.resolve_latest(ADMIN, GALLERY, IMAGE, location=region)
        assert str(latest.version) == "1.0.0"
        output = tmp_path / f"{region}.img"
        await service.deploy_vm(
            ADMIN, f"/galleries/{GALLERY}/images/{IMAGE}/versions/latest", location=region, output=output
        )
        assert sha256(output) == sha256(disk(tmp_path, 1))

    # A newer release completes: 1.0.0 shrinks again, and would grow back again.
    await publish(service, "1.0.2", disk(tmp_path, 3), [HOME, "eastus2=2", "westeurope"])
    again = await service.show_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    assert await regions("1.0.0") == [(HOME, 1)]
    assert again.retention is not None and again.retention.shrunk
    assert [t.name for t in again.retention.previous] == [HOME, "eastus2", "westeurope"]
    # Widened to two: 1.0.0 is kept global again.
    await service.update_definition(ADMIN, GALLERY, IMAGE, DefinitionFields(keep_global=2))
    assert await regions("1.0.0") == [(HOME, 1), ("eastus2", 2), ("westeurope", 1)]


async def test_a_version_changed_by_hand_after_its_shrink_is_not_grown_back(
    service: GalleryService, definition: str, tmp_path: Path
) -> None:
    await service.update_definition(ADMIN, GALLERY, IMAGE, DefinitionFields(keep_global=1))
    await publish(service, "1.0.0", disk(tmp_path, 1), [HOME, "eastus2"])
    await publish(service, "1.0.1", disk(tmp_path, 2), [HOME, "eastus2"])
    await service.update_version(ADMIN, GALLERY, IMAGE, "1.0.0", VersionOptions(target_regions=[f"{HOME}=2"]))
    await service.replicate_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    await service.delete_version(ADMIN, GALLERY, IMAGE, "1.0.1")
    kept = await service.show_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    assert [(t.name, t.replica_count) for t in kept.publishing_profile.target_regions] == [(HOME, 2)]


async def test_a_policy_set_on_a_definition_with_versions_applies_at_once(
    service: GalleryService, definition: str, tmp_path: Path
) -> None:
    for index, number in enumerate(("1.0.0", "1.0.1", "1.0.2")):
        await publish(service, number, disk(tmp_path, index), [HOME, "eastus2", "westeurope"])
    excluded = VersionOptions(exclude_from_latest=True)
    await service.update_version(ADMIN, GALLERY, IMAGE, "1.0.2", excluded)
    await service.update_definition(
        ADMIN, GALLERY, IMAGE, DefinitionFields(keep_global=1, home_region="East US 2")
    )
    # 1.0.2 is excluded from latest: it does not count, so 1.0.1 is the one kept global.
    # The home region is eastus2, but each version's source is westcentralus, which it cannot
    # leave: 1.0.0 stays as it is, with the reason.
    old = await service.show_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    assert len(old.regions) == 3
    assert old.retention is not None and "its source region is westcentralus" in old.retention.details
    await service.update_definition(ADMIN, GALLERY, IMAGE, DefinitionFields(home_region=HOME))
    after = {
        str(v.version): [s.region for s in v.regions]
        for v in await service.list_versions(ADMIN, GALLERY, IMAGE)
    }
    assert after == {
        "1.0.0": [HOME],
        "1.0.1": [HOME, "eastus2", "westeurope"],
        "1.0.2": [HOME, "eastus2", "westeurope"],
    }
    removed = await service.update_definition(ADMIN, GALLERY, IMAGE, DefinitionFields(keep_global=0))
    assert removed.retention_policy is None


async def test_a_bad_policy_is_refused_and_changes_nothing(service: GalleryService, definition: str) -> None:
    with pytest.raises(InvalidRegionError, match=r"unknown region 'mars'"):
        await service.update_definition(
            ADMIN, GALLERY, IMAGE, DefinitionFields(keep_global=2, home_region="mars")
        )
    with pytest.raises(InvalidParameterError, match=r"give keep-global too"):
        await service.update_definition(ADMIN, GALLERY, IMAGE, DefinitionFields(home_region=HOME))
    assert (await service.show_definition(ADMIN, GALLERY, IMAGE)).retention_policy is None


async def test_deletion_is_blocked_until_the_end_of_life_and_the_error_gives_the_date(
    service: GalleryService, definition: str, source: Path
) -> None:
    end = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    guarded = VersionOptions(end_of_life=format_datetime(end), block_deletion_before_end_of_life=True)
    await service.create_version(ADMIN, GALLERY, IMAGE, "1.0.0", source=source, options=guarded)
    shown = await service.show_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    assert shown.safety_profile.block_deletion_before_end_of_life
    with pytest.raises(PreconditionError, match=rf"before its end of life, {format_datetime(end)}"):
        await service.delete_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    assert (await service.show_version(ADMIN, GALLERY, IMAGE, "1.0.0")).blob is not None
    await service.update_version(
        ADMIN, GALLERY, IMAGE, "1.0.0", VersionOptions(block_deletion_before_end_of_life=False)
    )
    await service.delete_version(ADMIN, GALLERY, IMAGE, "1.0.0")
    assert await service.list_versions(ADMIN, GALLERY, IMAGE) == []


async def test_the_guard_without_an_end_of_life_is_refused_and_records_nothing(
    service: GalleryService, definition: str, source: Path
) -> None:
    with pytest.raises(InvalidParameterError, match=r"no end-of-life date"):
        await service.create_version(
            ADMIN,
            GALLERY,
            IMAGE,
            "1.0.0",
            source=source,
            options=VersionOptions(block_deletion_before_end_of_life=True),
        )
    assert await service.list_versions(ADMIN, GALLERY, IMAGE) == []


async def test_latest_skips_versions_past_their_end_of_life_when_the_definition_asks(
    service: GalleryService, definition: str, tmp_path: Path
) -> None:
    past = format_datetime(datetime.now(UTC) - timedelta(days=1))
    await publish(service, "1.0.0", disk(tmp_path, 1), [HOME])
    await publish(service, "1.0.1", disk(tmp_path, 2), [HOME], end_of_life=past)
    assert str((await service.resolve_latest(ADMIN, GALLERY, IMAGE)).version) == "1.0.1"
    await service.update_definition(
        ADMIN, GALLERY, IMAGE, DefinitionFields(exclude_end_of_life_from_latest=True)
    )
    assert str((await service.resolve_latest(ADMIN, GALLERY, IMAGE)).version) == "1.0.0"
    await service.update_version(ADMIN, GALLERY, IMAGE, "1.0.0", VersionOptions(end_of_life=past))
    with pytest.raises(ResourceNotFoundError, match=r"1\.0\.1 is past its end of life"):
        await service.resolve_latest(ADMIN, GALLERY, IMAGE)


async def test_a_shrink_that_fails_half_way_never_fails_the_publish_and_recovery_finishes_it(
    tmp_path: Path,
) -> None:
    """Deleting 1.0.0's manifest in eastus2 fails: 1.0.1's create still succeeds, 1.0.0 is
    recorded shrunk (its new targets came first) and Updating, and the next service to open
    the home removes the replica left over."""
    home = tmp_path / "home"

    def no_deletes_in_eastus2(region: str, number: int, store: Store) -> Store:
        return FaultyStore(store, [Fault("delete")]) if region == "eastus2" else store

    async with await GalleryService.open(home, wrap_store=no_deletes_in_eastus2) as service:
        await service.create_gallery(ADMIN, GALLERY, location=HOME)
        fields = DefinitionFields(publisher="p", offer="o", sku="s", os_type="Linux", keep_global=1)
        await service.create_definition(ADMIN, GALLERY, IMAGE, fields)
        await publish(service, "1.0.0", disk(tmp_path, 1), [HOME, "eastus2"])
        await publish(service, "1.0.1", disk(tmp_path, 2), [HOME, "eastus2"])
        old = await service.show_version(ADMIN, GALLERY, IMAGE, "1.0.0")
        assert [target.name for target in old.publishing_profile.target_regions] == [HOME]
        assert old.provisioning_state is ProvisioningState.UPDATING
        assert old.retention is not None and old.retention.shrunk
        eastus2 = Path((await service.show_region(ADMIN, "eastus2")).path or "")
    manifests = f"replica-1/galleries/{GALLERY}/images/{IMAGE}/versions/1.0.0/*"
    assert list(eastus2.glob(manifests)), "the failed delete left 1.0.0 in eastus2"
    async with await GalleryService.open(home) as service:
        done = await service.show_version(ADMIN, GALLERY, IMAGE, "1.0.0")
        assert done.provisioning_state is ProvisioningState.SUCCEEDED
        assert [status.region for status in done.regions] == [HOME]
    assert not list(eastus2.glob(manifests)), "recovery removed it"
