"""Region names, replica counts, target-region tokens and target-region updates."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from blobrep.core.gallery import MAX_REPLICA_COUNT, PublishingProfile, StorageType, TargetRegion
from blobrep.core.regions import (
    check_known_regions,
    normalize_region,
    parse_replica_count,
    parse_target_region,
    plan_target_update,
    resolve_target_regions,
    validate_replica_count,
)
from blobrep.errors import ImmutableFieldError, InvalidParameterError, InvalidRegionError
from tests.core import strategies
from tests.core.strategies import FEW_REGIONS

# --- region names ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("westcentralus", "westcentralus"),
        ("West Central US", "westcentralus"),
        ("  EastUS2 ", "eastus2"),
        ("UK West", "ukwest"),
        ("ab", "ab"),
    ],
)
def test_short_and_display_names_normalise_to_one_spelling(text: str, expected: str) -> None:
    assert normalize_region(text) == expected


@given(name=strategies.region_names)
def test_normalised_names_stay_as_they_are(name: str) -> None:
    assert normalize_region(name) == name
    assert normalize_region(normalize_region(name)) == normalize_region(name)


@given(data=st.data(), name=strategies.region_names)
def test_case_and_spaces_do_not_change_the_region(data: st.DataObject, name: str) -> None:
    spelling = data.draw(strategies.region_spellings(name), label="spelling")
    assert normalize_region(spelling) == name


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "e",
        "1abc",
        "west-us",
        "west_us",
        "west.us",
        "a" * 51,
        "\u212aorea",
        "\u00e9astus",
        "east\tus",
    ],
)
def test_bad_region_names_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(InvalidRegionError) as caught:
        normalize_region(text)
    message = str(caught.value)
    assert repr(text) in message
    assert "westcentralus" in message
    assert '"West Central US"' in message


def test_region_names_may_have_50_characters_and_no_more() -> None:
    assert normalize_region("a" * 50) == "a" * 50
    with pytest.raises(InvalidRegionError):
        normalize_region("a" * 51)


# --- replica counts ----------------------------------------------------------------------------


@given(count=st.integers(min_value=1, max_value=MAX_REPLICA_COUNT))
def test_counts_from_1_to_100_are_accepted(count: int) -> None:
    assert validate_replica_count(count) == count
    assert parse_replica_count(str(count), "replica count") == count


@given(count=st.integers(max_value=0) | st.integers(min_value=MAX_REPLICA_COUNT + 1))
def test_counts_outside_1_to_100_are_refused_naming_the_range(count: int) -> None:
    with pytest.raises(InvalidRegionError) as caught:
        validate_replica_count(count, "global replica count")
    message = str(caught.value)
    assert "global replica count" in message
    assert str(count) in message
    assert f"1 to {MAX_REPLICA_COUNT}" in message


def test_zero_replicas_is_refused_with_the_reason() -> None:
    assert MAX_REPLICA_COUNT == 100
    with pytest.raises(InvalidRegionError, match="0 is not allowed"):
        validate_replica_count(0)


def test_a_boolean_is_not_a_replica_count() -> None:
    with pytest.raises(InvalidRegionError):
        validate_replica_count(True)


def test_replica_count_text_may_carry_surrounding_spaces() -> None:
    assert parse_replica_count(" 7 ", "replica count") == 7


@pytest.mark.parametrize("text", ["", " ", "x", "-1", "+3", "1.5", "3x", "\u0663", "1e2"])
def test_replica_count_text_must_be_digits(text: str) -> None:
    with pytest.raises(InvalidRegionError) as caught:
        parse_replica_count(text, "replica count of eastus")
    message = str(caught.value)
    assert "replica count of eastus" in message
    assert repr(text) in message
    assert "for example 3" in message


@pytest.mark.parametrize("text", ["0", "101", "99999999999999999999999999999"])
def test_replica_count_text_out_of_range_is_refused(text: str) -> None:
    with pytest.raises(InvalidRegionError) as caught:
        parse_replica_count(text, "replica count")
    assert text in str(caught.value)
    assert "1 to 100" in str(caught.value)


# --- target-region tokens ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("eastus2", TargetRegion("eastus2")),
        ("ukwest=3", TargetRegion("ukwest", replica_count=3)),
        ("southindia=standard_lrs", TargetRegion("southindia", storage_type=StorageType.STANDARD_LRS)),
        ("brazilsouth=2=standard_lrs", TargetRegion("brazilsouth", 2, StorageType.STANDARD_LRS)),
        ("West US=premium_LRS", TargetRegion("westus", storage_type=StorageType.PREMIUM_LRS)),
        ("westus=100=STANDARD_ZRS", TargetRegion("westus", 100, StorageType.STANDARD_ZRS)),
    ],
)
def test_target_tokens_follow_the_az_cli_grammar(token: str, expected: TargetRegion) -> None:
    assert parse_target_region(token) == expected


@given(
    data=st.data(),
    name=strategies.region_names,
    count=st.none() | strategies.replica_counts,
    storage=st.none() | strategies.storage_types,
)
def test_target_tokens_round_trip(
    data: st.DataObject, name: str, count: int | None, storage: StorageType | None
) -> None:
    token = data.draw(strategies.region_spellings(name), label="region").strip()
    if count is not None:
        token += f"={count}"
    if storage is not None:
        token += "=" + data.draw(strategies.any_case(storage.value), label="storage type")
    assert parse_target_region(token) == TargetRegion(name, count, storage)


@pytest.mark.parametrize(
    ("token", "hint"),
    [
        ("", "NAME[=COUNT][=STORAGE_TYPE]"),
        ("  ", "NAME[=COUNT][=STORAGE_TYPE]"),
        ("=3", "NAME[=COUNT][=STORAGE_TYPE]"),
        ("eastus=", "ukwest=3"),
        ("eastus==Standard_LRS", "brazilsouth=2=Standard_LRS"),
        ("eastus=3=", "NAME[=COUNT][=STORAGE_TYPE]"),
        ("eastus=fast", "neither a replica count (1 to 100) nor a storage type"),
        ("eastus=x=Standard_LRS", "must be a replica count"),
        ("eastus=2=fast", "Standard_LRS, Standard_ZRS, Premium_LRS"),
        ("eastus=2=Standard_LRS=x", "not a storage type"),
        ("eastus=0", "0 is not allowed"),
        ("eastus=101=Standard_LRS", "1 to 100"),
        ("eastus=-1", "neither a replica count (1 to 100) nor a storage type"),
    ],
)
def test_bad_target_tokens_are_refused_naming_the_token(token: str, hint: str) -> None:
    with pytest.raises(InvalidRegionError) as caught:
        parse_target_region(token)
    message = str(caught.value)
    assert repr(token) in message
    assert hint in message


def test_a_wrong_second_part_lists_the_storage_types() -> None:
    with pytest.raises(InvalidRegionError) as caught:
        parse_target_region("ukwest=standard")
    for storage in StorageType:
        assert storage.value in str(caught.value)


def test_a_bad_region_in_a_token_is_named() -> None:
    with pytest.raises(InvalidRegionError) as caught:
        parse_target_region("east-us=2")
    assert "'east-us'" in str(caught.value)
    assert "westcentralus" in str(caught.value)


# --- resolving targets of a new version --------------------------------------------------------


@pytest.mark.parametrize("targets", [None, []])
def test_no_targets_means_the_source_region_alone(targets: list[TargetRegion] | None) -> None:
    assert resolve_target_regions("eastus", targets) == (TargetRegion("eastus"),)


@given(targets=strategies.target_lists(min_size=1), data=st.data())
def test_targets_keep_their_order_and_fields(targets: list[TargetRegion], data: st.DataObject) -> None:
    location = data.draw(st.sampled_from([target.name for target in targets]), label="location")
    assert resolve_target_regions(location, targets) == tuple(targets)


def test_display_names_of_targets_are_normalised() -> None:
    given_targets = [TargetRegion("East US", 2), TargetRegion("ukwest")]
    assert resolve_target_regions("eastus", given_targets) == (
        TargetRegion("eastus", 2),
        TargetRegion("ukwest"),
    )


@given(targets=strategies.target_lists(min_size=1), data=st.data())
def test_a_region_listed_twice_is_refused(targets: list[TargetRegion], data: st.DataObject) -> None:
    twice = data.draw(st.sampled_from(targets), label="twice")
    position = data.draw(st.integers(min_value=0, max_value=len(targets)), label="position")
    listed = [*targets[:position], twice, *targets[position:]]
    with pytest.raises(InvalidRegionError) as caught:
        resolve_target_regions(targets[0].name, listed)
    assert f"duplicate target region {twice.name!r}" in str(caught.value)


def test_a_display_name_duplicating_a_short_name_is_refused_naming_both() -> None:
    with pytest.raises(InvalidRegionError) as caught:
        resolve_target_regions("westus", [TargetRegion("westus"), TargetRegion("West US", 2)])
    message = str(caught.value)
    assert "'westus'" in message
    assert "'West US'" in message
    assert "list each region once" in message


def test_the_source_region_must_be_a_target() -> None:
    with pytest.raises(InvalidRegionError) as caught:
        resolve_target_regions("eastus", [TargetRegion("ukwest"), TargetRegion("westus", 3)])
    message = str(caught.value)
    assert "source region 'eastus' must be one of the target regions" in message
    assert "ukwest, westus" in message
    assert "eastus ukwest westus" in message


def test_a_regional_count_out_of_range_is_refused_naming_the_region() -> None:
    with pytest.raises(InvalidRegionError) as caught:
        resolve_target_regions("eastus", [TargetRegion("eastus", 0)])
    assert "'eastus'" in str(caught.value)
    assert "0 is not allowed" in str(caught.value)


# --- known regions -----------------------------------------------------------------------------


def test_known_regions_pass() -> None:
    check_known_regions(["eastus", "westus"], {"westus", "eastus", "ukwest"})
    check_known_regions([], set())
    with pytest.raises(InvalidRegionError):
        check_known_regions(["eastus", "westus"], {"eastus"})


def test_the_first_unknown_region_is_named_with_the_known_ones_sorted() -> None:
    with pytest.raises(InvalidRegionError) as caught:
        check_known_regions(["eastus", "mars1", "venus2"], {"westus", "eastus", "ukwest"})
    message = str(caught.value)
    assert "'mars1'" in message
    assert "venus2" not in message
    assert "eastus, ukwest, westus" in message


def test_with_no_regions_known_the_error_says_so() -> None:
    with pytest.raises(InvalidRegionError, match="none"):
        check_known_regions(["eastus"], set())


# --- updating the targets of a version ---------------------------------------------------------

EOL = datetime(2030, 1, 1, tzinfo=UTC)


def _profile(*targets: TargetRegion, replica_count: int = 1) -> PublishingProfile:
    return PublishingProfile(targets, replica_count=replica_count, exclude_from_latest=True, end_of_life=EOL)


@given(
    old=strategies.target_lists(storage=False, min_size=1),
    new=strategies.target_lists(storage=False, min_size=1),
    old_count=strategies.replica_counts,
    new_count=st.none() | strategies.replica_counts,
    data=st.data(),
)
def test_added_removed_and_rescaled_follow_set_arithmetic(
    old: list[TargetRegion],
    new: list[TargetRegion],
    old_count: int,
    new_count: int | None,
    data: st.DataObject,
) -> None:
    common = sorted({t.name for t in old} & {t.name for t in new})
    assume(common)
    location = data.draw(st.sampled_from(common), label="location")
    before = _profile(*old, replica_count=old_count)
    update = plan_target_update(
        before, new, new_replica_count=new_count, allow_deletion=True, location=location
    )
    old_names, new_names = [t.name for t in old], [t.name for t in new]
    assert set(update.added) == set(new_names) - set(old_names)
    assert set(update.removed) == set(old_names) - set(new_names)
    global_after = old_count if new_count is None else new_count
    effective_before = {t.name: t.replica_count or old_count for t in old}
    effective_after = {t.name: t.replica_count or global_after for t in new}
    assert set(update.rescaled) == {
        name for name in set(old_names) & set(new_names) if effective_before[name] != effective_after[name]
    }
    assert update.profile.target_regions == tuple(new)
    assert update.profile.replica_count == global_after
    assert update.profile.end_of_life == EOL
    assert update.profile.exclude_from_latest is True


def test_a_new_global_count_rescales_only_regions_without_their_own() -> None:
    before = _profile(TargetRegion("eastus"), TargetRegion("ukwest", 3), replica_count=1)
    update = plan_target_update(
        before, before.target_regions, new_replica_count=2, allow_deletion=False, location="eastus"
    )
    assert update.rescaled == ("eastus",)
    assert update.added == update.removed == ()
    assert update.profile.replica_count == 2


def test_an_added_region_is_reported_in_the_order_given() -> None:
    before = _profile(TargetRegion("eastus"))
    new = [TargetRegion("westus"), TargetRegion("eastus"), TargetRegion("UK West", 4)]
    update = plan_target_update(before, new, new_replica_count=None, allow_deletion=False, location="eastus")
    assert update.added == ("westus", "ukwest")
    assert update.profile.target_regions[2] == TargetRegion("ukwest", 4)


@given(old=strategies.target_lists(min_size=1), data=st.data())
def test_a_kept_region_cannot_change_its_effective_storage_type(
    old: list[TargetRegion], data: st.DataObject
) -> None:
    before = PublishingProfile(tuple(old), storage_type=data.draw(strategies.storage_types, label="global"))
    kept = data.draw(st.sampled_from(old), label="kept")
    was = before.effective_storage_type(kept)
    other = data.draw(strategies.storage_types.filter(lambda storage: storage is not was), label="other")
    new = [dataclasses.replace(t, storage_type=other) if t is kept else t for t in old]
    with pytest.raises(ImmutableFieldError) as caught:
        plan_target_update(before, new, new_replica_count=None, allow_deletion=True, location=old[0].name)
    message = str(caught.value)
    assert repr(kept.name) in message
    assert f"from {was} to {other}" in message
    assert "fixed at creation" in message


def test_spelling_out_the_global_storage_type_is_no_change() -> None:
    before = PublishingProfile((TargetRegion("eastus"),), storage_type=StorageType.STANDARD_ZRS)
    new = [TargetRegion("eastus", storage_type=StorageType.STANDARD_ZRS)]
    update = plan_target_update(before, new, new_replica_count=None, allow_deletion=False, location="eastus")
    assert update.profile.target_regions == tuple(new)
    assert update.rescaled == update.added == update.removed == ()


def test_removing_a_region_needs_the_safety_profile_to_allow_it() -> None:
    before = _profile(TargetRegion("eastus"), TargetRegion("ukwest"), TargetRegion("westus"))
    new = [TargetRegion("eastus")]
    with pytest.raises(InvalidParameterError) as caught:
        plan_target_update(before, new, new_replica_count=None, allow_deletion=False, location="eastus")
    message = str(caught.value)
    assert "ukwest, westus" in message
    assert "--allow-replicated-location-deletion" in message
    assert "safety profile" in message
    allowed = plan_target_update(before, new, new_replica_count=None, allow_deletion=True, location="eastus")
    assert allowed.removed == ("ukwest", "westus")


def test_the_source_region_cannot_be_removed() -> None:
    before = _profile(TargetRegion("eastus"), TargetRegion("ukwest"))
    with pytest.raises(InvalidRegionError, match="source region 'eastus'"):
        plan_target_update(
            before, [TargetRegion("ukwest")], new_replica_count=None, allow_deletion=True, location="eastus"
        )


def test_an_update_may_not_list_a_region_twice() -> None:
    before = _profile(TargetRegion("eastus"))
    with pytest.raises(InvalidRegionError, match="duplicate target region 'eastus'"):
        plan_target_update(
            before,
            [TargetRegion("eastus"), TargetRegion("East US")],
            new_replica_count=None,
            allow_deletion=True,
            location="eastus",
        )


def test_an_update_checks_the_new_global_count() -> None:
    before = _profile(TargetRegion("eastus"))
    with pytest.raises(InvalidRegionError, match="global replica count: 0"):
        plan_target_update(
            before, before.target_regions, new_replica_count=0, allow_deletion=True, location="eastus"
        )


def test_the_few_regions_pool_is_made_of_valid_names() -> None:
    assert all(normalize_region(name) == name for name in FEW_REGIONS)
