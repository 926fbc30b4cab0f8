"""End of life: the deletion guard, its precondition, ``latest`` skipping expired versions,
and the retention policy's plan (which old versions shrink to the home region, and why not)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobrep.core.gallery import (
    GalleryImageVersion,
    ProvisioningState,
    PublishingProfile,
    RegionStatus,
    ReplicationState,
    RetentionMark,
    RetentionPolicy,
    SafetyProfile,
    TargetRegion,
)
from blobrep.core.latest import latest_error_detail, resolve_latest
from blobrep.core.lifecycle import check_deletable, check_safety_profile, past_end_of_life
from blobrep.core.retention import is_shrunk, kept_versions, plan_regrowth, plan_retention, updated_policy
from blobrep.core.version import ImageVersion
from blobrep.errors import InvalidParameterError, InvalidRegionError, PreconditionError

NOW = datetime(2030, 6, 1, tzinfo=UTC)
REGIONS = ("westus", "eastus2", "westeurope")


def version(
    number: str,
    *,
    regions: tuple[str, ...] = REGIONS,
    states: tuple[ReplicationState, ...] | None = None,
    end_of_life: datetime | None = None,
    excluded: bool = False,
    allow_deletion: bool = True,
    block: bool = False,
    location: str = "westus",
    replicas: int | None = None,
) -> GalleryImageVersion:
    states = states or (ReplicationState.COMPLETED,) * len(regions)
    targets = tuple(TargetRegion(name, replicas) for name in regions)
    profile = PublishingProfile(targets, exclude_from_latest=excluded, end_of_life=end_of_life)
    return GalleryImageVersion(
        "g",
        "img",
        ImageVersion.parse(number),
        location,
        profile,
        safety_profile=SafetyProfile(allow_deletion, block),
        regions=tuple(RegionStatus(name, state) for name, state in zip(regions, states, strict=True)),
    )


# --- the deletion guard --------------------------------------------------------------------------


def test_a_guarded_version_cannot_be_deleted_before_its_end_of_life_and_the_error_gives_the_date() -> None:
    guarded = version("1.0.0", end_of_life=datetime(2031, 1, 15, tzinfo=UTC), block=True)
    with pytest.raises(PreconditionError, match=r"before its end of life, 2031-01-15T00:00:00Z") as refused:
        check_deletable(guarded, NOW)
    assert "/galleries/g/images/img/versions/1.0.0" in str(refused.value)
    assert "--block-deletion-before-end-of-life false" in str(refused.value)


def test_a_guarded_version_can_be_deleted_from_its_end_of_life_on() -> None:
    guarded = version("1.0.0", end_of_life=NOW, block=True)
    check_deletable(guarded, NOW)
    check_deletable(guarded, NOW + timedelta(days=1))
    with pytest.raises(PreconditionError):
        check_deletable(guarded, NOW - timedelta(seconds=1))


def test_an_unguarded_version_can_be_deleted_before_its_end_of_life() -> None:
    check_deletable(version("1.0.0", end_of_life=NOW + timedelta(days=365)), NOW)


def test_the_guard_needs_an_end_of_life_date() -> None:
    with pytest.raises(InvalidParameterError, match=r"no end-of-life date: give one too"):
        check_safety_profile(SafetyProfile(block_deletion_before_end_of_life=True), None, "1.0.0")
    check_safety_profile(SafetyProfile(block_deletion_before_end_of_life=True), NOW, "1.0.0")
    check_safety_profile(SafetyProfile(), None, "1.0.0")


@given(offset=st.integers(min_value=-(10**6), max_value=10**6))
def test_an_end_of_life_is_past_exactly_when_it_is_not_after_now(offset: int) -> None:
    when = NOW + timedelta(seconds=offset)
    assert past_end_of_life(when, NOW) is (offset <= 0)
    assert past_end_of_life(None, NOW) is False


# --- latest and end of life ----------------------------------------------------------------------


def test_latest_skips_an_expired_version_only_when_asked() -> None:
    old = version("1.0.0")
    expired = version("1.1.0", end_of_life=NOW - timedelta(days=1))
    assert resolve_latest([old, expired], "westus") is expired
    assert resolve_latest([old, expired], "westus", NOW) is old


def test_the_latest_error_says_a_version_is_past_its_end_of_life() -> None:
    expired = version("1.1.0", end_of_life=datetime(2030, 1, 1, tzinfo=UTC))
    detail = latest_error_detail([expired], "westus", NOW)
    assert "1.1.0 is past its end of life (2030-01-01T00:00:00Z)" in detail
    assert "publish a version with a later end of life" in detail
    elsewhere = latest_error_detail([expired], "southeastasia", NOW)
    assert (
        "1.1.0 is past its end of life (2030-01-01T00:00:00Z) and is not replicated to southeastasia"
        in elsewhere
    )


# --- the retention plan --------------------------------------------------------------------------

POLICY = RetentionPolicy(2, "westus")


def test_versions_older_than_the_kept_ones_shrink_to_the_home_region_with_one_replica() -> None:
    versions = [version(f"1.0.{patch}") for patch in range(6)]
    steps = plan_retention(POLICY, versions)
    assert [str(step.version.version) for step in steps] == ["1.0.0", "1.0.1", "1.0.2", "1.0.3"]
    assert all(step.targets == (TargetRegion("westus", 1),) for step in steps)
    assert (
        steps[0].details
        == "shrunk to westus (keep-global 2, home region westus): removed eastus2, westeurope"
    )


def test_nothing_shrinks_while_fewer_versions_than_keep_global_are_complete() -> None:
    replicating = (ReplicationState.COMPLETED, ReplicationState.REPLICATING, ReplicationState.COMPLETED)
    versions = [version("1.0.0"), version("1.0.1", states=replicating)]
    assert plan_retention(POLICY, versions) == []
    assert [str(v.version) for v in kept_versions(POLICY, versions)] == ["1.0.0"]


def test_excluded_and_unfinished_versions_do_not_count_and_newer_ones_are_left_alone() -> None:
    replicating = (ReplicationState.COMPLETED, ReplicationState.REPLICATING, ReplicationState.UNKNOWN)
    versions = [
        version("1.0.0"),
        version("1.0.1", excluded=True),
        version("1.0.2"),
        version("1.0.3", excluded=True),
        version("1.0.4"),
        version("1.0.5", states=replicating),
    ]
    kept = kept_versions(POLICY, versions)
    assert [str(v.version) for v in kept] == ["1.0.4", "1.0.2"]
    assert [str(step.version.version) for step in plan_retention(POLICY, versions)] == ["1.0.0", "1.0.1"]


def test_a_version_whose_safety_profile_forbids_removing_regions_is_left_with_the_reason() -> None:
    versions = [version("1.0.0", allow_deletion=False), version("1.0.1"), version("1.0.2")]
    (step,) = plan_retention(POLICY, versions)
    assert not step.shrinks
    assert "does not allow deleting replicated locations (eastus2, westeurope)" in step.details
    assert "--allow-replicated-location-deletion" in step.details


def test_only_lowering_the_home_replica_count_needs_no_permission() -> None:
    home_only = version("1.0.0", regions=("westus",), allow_deletion=False, replicas=3)
    (step,) = plan_retention(POLICY, [home_only, version("1.0.1"), version("1.0.2")])
    assert step.targets == (TargetRegion("westus", 1),)
    assert step.details.endswith("lowered to one replica")


def test_a_version_cannot_shrink_away_from_its_source_region() -> None:
    elsewhere = version("1.0.0", location="eastus2")
    (step,) = plan_retention(POLICY, [elsewhere, version("1.0.1"), version("1.0.2")])
    assert not step.shrinks and "its source region is eastus2" in step.details


def test_shrunk_and_unpublished_versions_are_not_planned_again() -> None:
    shrunk = version("1.0.0", regions=("westus",), replicas=1)
    failed = dataclasses.replace(version("1.0.1"), provisioning_state=ProvisioningState.FAILED)
    assert is_shrunk(shrunk, "westus") and not is_shrunk(version("1.0.2"), "westus")
    assert plan_retention(POLICY, [shrunk, failed, version("1.0.2"), version("1.0.3")]) == []


@given(
    patches=st.lists(st.integers(min_value=0, max_value=30), unique=True, max_size=10),
    keep=st.integers(min_value=1, max_value=4),
    excluded=st.sets(st.integers(min_value=0, max_value=30)),
)
def test_the_plan_never_touches_a_kept_version_and_shrinks_every_older_one(
    patches: list[int], keep: int, excluded: set[int]
) -> None:
    versions = [version(f"1.0.{patch}", excluded=patch in excluded) for patch in patches]
    policy = RetentionPolicy(keep, "westus")
    counted = sorted(patch for patch in patches if patch not in excluded)
    planned = [step.version.version.patch for step in plan_retention(policy, versions)]
    if len(counted) < keep:
        assert planned == []
    else:
        oldest_kept = counted[-keep]
        assert planned == sorted(patch for patch in patches if patch < oldest_kept)


# --- setting the policy --------------------------------------------------------------------------


def test_a_new_policy_defaults_its_home_to_the_gallery_location_and_zero_removes_it() -> None:
    known = set(REGIONS)
    made = updated_policy(None, 2, None, default_home="westus", known_regions=known)
    assert made == RetentionPolicy(2, "westus")
    moved = updated_policy(made, None, "East US 2", default_home="westus", known_regions=known)
    assert moved == RetentionPolicy(2, "eastus2")
    assert updated_policy(moved, 3, None, default_home="westus", known_regions=known) == RetentionPolicy(
        3, "eastus2"
    )
    assert updated_policy(moved, None, None, default_home="westus", known_regions=known) is moved
    assert updated_policy(moved, 0, None, default_home="westus", known_regions=known) is None


def test_a_bad_policy_is_refused_saying_what_would_be_right() -> None:
    known = set(REGIONS)
    with pytest.raises(InvalidParameterError, match=r"invalid keep-global -1: .* 1 to 1000"):
        updated_policy(None, -1, None, default_home="westus", known_regions=known)
    with pytest.raises(InvalidParameterError, match=r"without a retention policy: give keep-global too"):
        updated_policy(None, None, "westus", default_home="westus", known_regions=known)
    with pytest.raises(InvalidParameterError, match=r"keep-global 0 removes the retention policy"):
        updated_policy(None, 0, "westus", default_home="westus", known_regions=known)
    with pytest.raises(InvalidRegionError, match=r"unknown region 'mars'"):
        updated_policy(None, 2, "mars", default_home="westus", known_regions=known)


def test_expired_versions_count_only_while_latest_may_still_name_them() -> None:
    versions = [version("1.0.0"), version("1.0.1"), version("1.0.2", end_of_life=NOW - timedelta(days=1))]
    policy = RetentionPolicy(1, "westus")
    assert [str(step.version.version) for step in plan_retention(policy, versions)] == ["1.0.0", "1.0.1"]
    skipping = plan_retention(policy, versions, NOW)
    assert [str(step.version.version) for step in skipping] == ["1.0.0"]


# --- growing back --------------------------------------------------------------------------------


def shrunk_by_policy(number: str, before: tuple[str, ...] = REGIONS) -> GalleryImageVersion:
    """A version the policy shrank to westus, its earlier targets ``before`` in its mark."""
    shrunk = version(number, regions=("westus",), replicas=1)
    previous = tuple(TargetRegion(name) for name in before)
    return dataclasses.replace(shrunk, retention=RetentionMark(NOW, True, "shrunk to westus", previous))


def test_a_shrunk_version_among_the_kept_again_grows_back_to_its_earlier_targets() -> None:
    policy = RetentionPolicy(2, "westus")
    versions = [shrunk_by_policy("1.0.0"), shrunk_by_policy("1.0.1"), version("1.0.2")]
    (step,) = plan_regrowth(policy, versions)
    assert step.version.version == ImageVersion.parse("1.0.1")
    assert step.grows and not step.shrinks
    assert step.targets == tuple(TargetRegion(name) for name in REGIONS)
    assert step.details == (
        "grown back to eastus2, westeurope (keep-global 2, home region westus):"
        " it is among the 2 newest again"
    )
    assert plan_regrowth(RetentionPolicy(1, "westus"), versions) == [], "1.0.2 alone is kept"


def test_a_version_being_grown_back_still_counts_as_kept_so_nothing_older_shrinks_meanwhile() -> None:
    policy = RetentionPolicy(1, "westus")
    growing = dataclasses.replace(
        version(
            "1.0.1", states=(ReplicationState.COMPLETED, ReplicationState.UNKNOWN, ReplicationState.UNKNOWN)
        ),
        retention=RetentionMark(NOW, False, "grown back to eastus2, westeurope (keep-global 1, ...)"),
    )
    older = version("1.0.0")
    assert [v.version for v in kept_versions(policy, [older, growing])] == [growing.version]
    assert [step.version.version for step in plan_retention(policy, [older, growing])] == [older.version]


def test_versions_not_as_the_policy_left_them_or_without_earlier_targets_are_not_grown_back() -> None:
    policy = RetentionPolicy(3, "westus")
    by_hand = dataclasses.replace(
        shrunk_by_policy("1.0.0"), publishing_profile=version("1.0.0").publishing_profile
    )
    no_record = dataclasses.replace(shrunk_by_policy("1.0.1"), retention=RetentionMark(NOW, True, "shrunk"))
    never = version("1.0.2", regions=("westus",), replicas=1)
    assert plan_regrowth(policy, [by_hand, no_record, never]) == []
