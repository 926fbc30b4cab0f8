"""``latest`` per region: the highest version Completed there and not excluded there."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from blobrep.core.gallery import (
    GalleryImageVersion,
    PublishingProfile,
    RegionStatus,
    ReplicationState,
    TargetRegion,
)
from blobrep.core.latest import MAX_EXPLAINED, latest_error_detail, resolve_latest
from blobrep.core.version import ImageVersion
from tests.core import strategies

small_versions = st.builds(
    ImageVersion,
    st.integers(min_value=0, max_value=2),
    st.integers(min_value=0, max_value=12),
    st.integers(min_value=0, max_value=12),
)


#: Completed most of the time, so that a latest version exists in many examples.
states = st.sampled_from([*ReplicationState, ReplicationState.COMPLETED, ReplicationState.COMPLETED])


@st.composite
def gallery_versions(draw: st.DrawFn) -> list[GalleryImageVersion]:
    """Versions of one definition, each with its own targets, states and exclusion flags."""
    numbers = draw(st.lists(small_versions, unique=True, max_size=8))
    result: list[GalleryImageVersion] = []
    for number in numbers:
        targets = draw(strategies.target_lists(min_size=1))
        statuses = tuple(
            RegionStatus(target.name, draw(states))
            for target in targets
            if draw(st.integers(min_value=0, max_value=4)) > 0
        )
        profile = PublishingProfile(tuple(targets), exclude_from_latest=draw(st.booleans()))
        result.append(GalleryImageVersion("g", "i", number, targets[0].name, profile, regions=statuses))
    return result


def _usable_by_hand(version: GalleryImageVersion, region: str) -> bool:
    completed = any(s.region == region and s.state == "Completed" for s in version.regions)
    flags = [t.exclude_from_latest for t in version.publishing_profile.target_regions if t.name == region]
    regional = flags[0] if flags else None
    excluded = version.publishing_profile.exclude_from_latest if regional is None else regional
    return completed and not excluded


@given(versions=gallery_versions(), region=strategies.few_regions)
def test_latest_is_the_highest_usable_version_in_the_region(
    versions: list[GalleryImageVersion], region: str
) -> None:
    usable = [version for version in versions if _usable_by_hand(version, region)]
    expected = max(usable, key=lambda version: version.version, default=None)
    assert resolve_latest(versions, region) == expected


@given(versions=gallery_versions(), region=strategies.few_regions, data=st.data())
def test_latest_is_always_completed_and_included_there(
    versions: list[GalleryImageVersion], region: str, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(versions), label="order")
    latest = resolve_latest(shuffled, region)
    assert latest == resolve_latest(versions, region)
    if latest is not None:
        assert latest.is_completed_in(region)
        assert not latest.publishing_profile.excluded_from_latest(region)
        assert all(
            version.version <= latest.version for version in versions if _usable_by_hand(version, region)
        )
    else:
        assert not any(_usable_by_hand(version, region) for version in versions)


@given(versions=gallery_versions(), region=strategies.few_regions)
def test_without_a_latest_the_detail_explains_the_newest_versions(
    versions: list[GalleryImageVersion], region: str
) -> None:
    detail = latest_error_detail(versions, region)
    latest = resolve_latest(versions, region)
    if latest is not None:
        assert detail == f"{latest.version} is the latest version in {region}"
    elif versions:
        assert detail.startswith(f"no version of it is Completed in {region}")
        newest = sorted((version.version for version in versions), reverse=True)[:MAX_EXPLAINED]
        assert all(f"{number} " in detail for number in newest)


def _version(
    text: str,
    *states: tuple[str, ReplicationState],
    exclude: bool = False,
    regional_exclude: dict[str, bool] | None = None,
    progress: int = 0,
    details: str = "",
) -> GalleryImageVersion:
    flags = regional_exclude or {}
    targets = tuple(TargetRegion(region, exclude_from_latest=flags.get(region)) for region, _ in states)
    statuses = tuple(
        RegionStatus(region, state, progress=progress, details=details) for region, state in states
    )
    profile = PublishingProfile(targets, exclude_from_latest=exclude)
    return GalleryImageVersion("g", "i", ImageVersion.parse(text), states[0][0], profile, regions=statuses)


DONE = ReplicationState.COMPLETED
BUSY = ReplicationState.REPLICATING


def test_versions_compare_as_numbers_not_text() -> None:
    versions = [_version("1.0.9", ("eastus", DONE)), _version("1.0.10", ("eastus", DONE))]
    latest = resolve_latest(versions, "eastus")
    assert latest is not None
    assert str(latest.version) == "1.0.10"


def test_a_version_still_replicating_in_a_region_is_not_latest_there() -> None:
    versions = [
        _version("1.0.0", ("eastus", DONE), ("westus", DONE)),
        _version("2.0.0", ("eastus", DONE), ("westus", BUSY)),
    ]
    east, west = resolve_latest(versions, "eastus"), resolve_latest(versions, "westus")
    assert east is not None and str(east.version) == "2.0.0"
    assert west is not None and str(west.version) == "1.0.0"


def test_the_regional_flag_wins_over_the_global_one() -> None:
    held_back_here = _version("2.0.0", ("eastus", DONE), ("westus", DONE), regional_exclude={"eastus": True})
    allowed_here = _version(
        "1.0.0", ("eastus", DONE), ("westus", DONE), exclude=True, regional_exclude={"eastus": False}
    )
    east = resolve_latest([held_back_here, allowed_here], "eastus")
    west = resolve_latest([held_back_here, allowed_here], "westus")
    assert east is allowed_here
    assert west is held_back_here


def test_no_usable_version_gives_none() -> None:
    assert resolve_latest([], "eastus") is None
    assert resolve_latest([_version("1.0.0", ("eastus", BUSY))], "eastus") is None
    assert resolve_latest([_version("1.0.0", ("eastus", DONE))], "westus") is None


# --- explaining why there is no latest ---------------------------------------------------------


def test_the_detail_says_why_each_version_was_skipped() -> None:
    versions = [
        _version("1.0.0", ("eastus2", DONE), exclude=True),
        _version("1.0.1", ("eastus2", BUSY), progress=40),
    ]
    detail = latest_error_detail(versions, "eastus2")
    assert detail.startswith("no version of it is Completed in eastus2")
    assert "1.0.1 is Replicating there (40%), 1.0.0 is excluded from latest" in detail
    assert "wait for replication there to complete" in detail
    assert "name a version explicitly" in detail


def test_the_detail_names_a_regional_exclusion_and_a_failure() -> None:
    versions = [
        _version("1.0.0", ("eastus", DONE), regional_exclude={"eastus": True}),
        _version("1.1.0", ("eastus", ReplicationState.FAILED), details="disk full in replica-2"),
    ]
    detail = latest_error_detail(versions, "eastus")
    assert "1.1.0 failed to replicate there (disk full in replica-2)" in detail
    assert "1.0.0 is excluded from latest there" in detail
    assert "retry the failed replication" in detail


def test_the_detail_suggests_adding_a_region_no_version_targets() -> None:
    detail = latest_error_detail([_version("1.0.0", ("eastus", DONE))], "westus")
    assert "1.0.0 is not replicated to westus" in detail
    assert "add westus to a version's target regions" in detail


def test_the_detail_for_a_definition_without_versions() -> None:
    assert "has no versions yet; publish one first" in latest_error_detail([], "eastus")


def test_the_detail_lists_only_the_newest_few_versions() -> None:
    versions = [_version(f"1.0.{patch}", ("eastus", BUSY)) for patch in range(MAX_EXPLAINED + 3)]
    detail = latest_error_detail(versions, "eastus")
    newest = MAX_EXPLAINED + 2
    assert f"1.0.{newest} is Replicating" in detail
    assert "1.0.0 is" not in detail
    assert "3 older versions are skipped too" in detail


def test_the_detail_names_the_latest_when_there_is_one() -> None:
    versions = [_version("1.0.0", ("eastus", DONE)), _version("1.0.1", ("eastus", BUSY))]
    assert latest_error_detail(versions, "eastus") == "1.0.0 is the latest version in eastus"
