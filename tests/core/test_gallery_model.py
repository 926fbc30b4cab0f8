"""The rules of the gallery model: aggregated state, effective values, exclusion and choices."""

from __future__ import annotations

import enum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobrep.core.gallery import (
    DEFAULT_REPLICA_COUNT,
    DEFAULT_STORAGE_TYPE,
    AggregatedState,
    Architecture,
    GalleryImageVersion,
    HyperVGeneration,
    OsState,
    OsType,
    PublishingProfile,
    RegionStatus,
    ReplicationState,
    StorageType,
    TargetRegion,
    aggregate_state,
    parse_choice,
)
from blobrep.core.version import ImageVersion
from blobrep.errors import InvalidParameterError
from tests.core import strategies

states = st.sampled_from(ReplicationState)

# --- aggregated state --------------------------------------------------------------------------


@given(listed=st.lists(states, max_size=8))
def test_the_aggregate_follows_the_rules(listed: list[ReplicationState]) -> None:
    aggregated = aggregate_state(listed)
    if not listed:
        assert aggregated is AggregatedState.UNKNOWN
    elif ReplicationState.FAILED in listed:
        assert aggregated is AggregatedState.FAILED
    elif set(listed) == {ReplicationState.COMPLETED}:
        assert aggregated is AggregatedState.COMPLETED
    else:
        assert aggregated is AggregatedState.IN_PROGRESS


@given(listed=st.lists(states, max_size=8), data=st.data())
def test_the_aggregate_does_not_depend_on_region_order(
    listed: list[ReplicationState], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(listed), label="order")
    assert aggregate_state(iter(shuffled)) is aggregate_state(listed)


@pytest.mark.parametrize(
    ("listed", "expected"),
    [
        ([], AggregatedState.UNKNOWN),
        ([ReplicationState.COMPLETED], AggregatedState.COMPLETED),
        ([ReplicationState.COMPLETED, ReplicationState.REPLICATING], AggregatedState.IN_PROGRESS),
        ([ReplicationState.UNKNOWN], AggregatedState.IN_PROGRESS),
        ([ReplicationState.REPLICATING, ReplicationState.FAILED], AggregatedState.FAILED),
        ([ReplicationState.COMPLETED, ReplicationState.FAILED], AggregatedState.FAILED),
    ],
)
def test_one_failed_region_fails_the_version(
    listed: list[ReplicationState], expected: AggregatedState
) -> None:
    assert aggregate_state(listed) is expected


def test_a_version_aggregates_its_regions_and_is_readable_only_where_completed() -> None:
    version = GalleryImageVersion(
        "g",
        "i",
        ImageVersion(1, 0, 0),
        "eastus",
        PublishingProfile((TargetRegion("eastus"), TargetRegion("westus"))),
        regions=(
            RegionStatus("eastus", ReplicationState.COMPLETED),
            RegionStatus("westus", ReplicationState.REPLICATING),
        ),
    )
    assert version.aggregated_state is AggregatedState.IN_PROGRESS
    assert version.is_completed_in("eastus")
    assert not version.is_completed_in("westus")
    assert not version.is_completed_in("ukwest")


# --- effective values --------------------------------------------------------------------------


@given(
    target=strategies.target_regions(),
    replica_count=strategies.replica_counts,
    storage_type=strategies.storage_types,
)
def test_a_region_without_its_own_value_uses_the_global_one(
    target: TargetRegion, replica_count: int, storage_type: StorageType
) -> None:
    profile = PublishingProfile((target,), replica_count=replica_count, storage_type=storage_type)
    expected_count = replica_count if target.replica_count is None else target.replica_count
    expected_storage = storage_type if target.storage_type is None else target.storage_type
    assert profile.effective_replica_count(target) == expected_count
    assert profile.effective_storage_type(target) is expected_storage


def test_the_defaults_are_one_replica_on_standard_lrs() -> None:
    profile = PublishingProfile((TargetRegion("eastus"),))
    assert profile.effective_replica_count(profile.target_regions[0]) == DEFAULT_REPLICA_COUNT == 1
    assert profile.effective_storage_type(profile.target_regions[0]) is DEFAULT_STORAGE_TYPE
    assert DEFAULT_STORAGE_TYPE is StorageType.STANDARD_LRS


def test_the_az_help_example_gives_the_documented_replicas() -> None:
    profile = PublishingProfile(
        (
            TargetRegion("eastus2"),
            TargetRegion("ukwest", 3),
            TargetRegion("southindia", storage_type=StorageType.STANDARD_LRS),
            TargetRegion("brazilsouth", 2, StorageType.STANDARD_LRS),
        ),
        replica_count=1,
        storage_type=StorageType.STANDARD_ZRS,
    )
    effective = [
        (t.name, profile.effective_replica_count(t), profile.effective_storage_type(t).value)
        for t in profile.target_regions
    ]
    assert effective == [
        ("eastus2", 1, "Standard_ZRS"),
        ("ukwest", 3, "Standard_ZRS"),
        ("southindia", 1, "Standard_LRS"),
        ("brazilsouth", 2, "Standard_LRS"),
    ]


# --- excluded from latest ----------------------------------------------------------------------


@given(
    targets=strategies.target_lists(min_size=1),
    global_flag=st.booleans(),
    region=strategies.few_regions,
)
def test_the_regional_exclusion_flag_wins_over_the_global_one(
    targets: list[TargetRegion], global_flag: bool, region: str
) -> None:
    profile = PublishingProfile(tuple(targets), exclude_from_latest=global_flag)
    regional = next((t.exclude_from_latest for t in targets if t.name == region), None)
    expected = global_flag if regional is None else regional
    assert profile.excluded_from_latest(region) is expected


def test_exclusion_examples() -> None:
    profile = PublishingProfile(
        (TargetRegion("eastus", exclude_from_latest=False), TargetRegion("westus")),
        exclude_from_latest=True,
    )
    assert profile.excluded_from_latest("eastus") is False
    assert profile.excluded_from_latest("westus") is True
    assert profile.excluded_from_latest("ukwest") is True


# --- choices -----------------------------------------------------------------------------------

ENUMS: list[type[enum.StrEnum]] = [OsType, OsState, HyperVGeneration, Architecture, StorageType]


@given(data=st.data(), choices=st.sampled_from(ENUMS))
def test_choices_are_accepted_in_any_letter_case(data: st.DataObject, choices: type[enum.StrEnum]) -> None:
    member = data.draw(st.sampled_from(list(choices)), label="member")
    spelling = data.draw(strategies.any_case(member.value), label="spelling")
    assert parse_choice(choices, f" {spelling} ", "choice") is member


@pytest.mark.parametrize(
    ("choices", "text", "what"),
    [
        (OsType, "linux2", "OS type"),
        (StorageType, "Standard-LRS", "storage type"),
        (Architecture, "amd64", "architecture"),
        (OsState, "", "OS state"),
    ],
)
def test_a_wrong_choice_is_refused_listing_the_valid_ones(
    choices: type[enum.StrEnum], text: str, what: str
) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        parse_choice(choices, text, what)
    message = str(caught.value)
    assert f"invalid {what} {text!r}" in message
    assert all(member.value in message for member in choices)
