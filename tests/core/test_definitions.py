"""Image identifiers, dates, recommended ranges, descriptions and which fields an update may change."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobrep.core.definitions import (
    MAX_DESCRIPTION_LENGTH,
    check_definition_update,
    check_gallery_update,
    format_datetime,
    parse_datetime,
    validate_description,
    validate_identifier,
    validate_resource_range,
)
from blobrep.core.gallery import (
    Architecture,
    Gallery,
    HyperVGeneration,
    ImageDefinition,
    ImageIdentifier,
    OsState,
    OsType,
    ResourceRange,
)
from blobrep.errors import ImmutableFieldError, InvalidNameError, InvalidParameterError


def identifier_parts(max_length: int) -> st.SearchStrategy[str]:
    return st.from_regex(rf"[A-Za-z0-9._-]{{0,{max_length - 1}}}[A-Za-z0-9_-]", fullmatch=True)


# --- identifiers -------------------------------------------------------------------------------


@given(publisher=identifier_parts(128), offer=identifier_parts(64), sku=identifier_parts(64))
def test_identifiers_of_the_pattern_are_accepted(publisher: str, offer: str, sku: str) -> None:
    assert validate_identifier(publisher, offer, sku) == ImageIdentifier(publisher, offer, sku)


def test_an_ordinary_identifier_is_accepted() -> None:
    assert validate_identifier("Canonical", "0001-com-ubuntu-server", "22_04-lts.gen2") == ImageIdentifier(
        "Canonical", "0001-com-ubuntu-server", "22_04-lts.gen2"
    )


@pytest.mark.parametrize("bad", ["a.", "a b", "a/b", "a:b", "caf\u00e9", "a\n", "a+b", "\uff41"])
@pytest.mark.parametrize("part", ["publisher", "offer", "sku"])
def test_a_bad_part_is_refused_naming_the_part(part: str, bad: str) -> None:
    parts = {"publisher": "Contoso", "offer": "Ubuntu", "sku": "22_04", part: bad}
    with pytest.raises(InvalidNameError) as caught:
        validate_identifier(**parts)
    message = str(caught.value)
    assert f"invalid {part} {bad!r}" in message
    assert "not ending with '.'" in message
    assert "for example" in message


@pytest.mark.parametrize("part", ["publisher", "offer", "sku"])
def test_an_empty_part_is_refused_naming_the_part(part: str) -> None:
    parts = {"publisher": "Contoso", "offer": "Ubuntu", "sku": "22_04", part: ""}
    with pytest.raises(InvalidNameError, match=f"the {part} of the image identifier is empty"):
        validate_identifier(**parts)


@pytest.mark.parametrize(("part", "limit"), [("publisher", 128), ("offer", 64), ("sku", 64)])
def test_each_part_has_its_length_limit(part: str, limit: int) -> None:
    parts = {"publisher": "Contoso", "offer": "Ubuntu", "sku": "22_04"}
    assert getattr(validate_identifier(**{**parts, part: "a" * limit}), part) == "a" * limit
    with pytest.raises(InvalidNameError) as caught:
        validate_identifier(**{**parts, part: "a" * (limit + 1)})
    message = str(caught.value)
    assert part in message
    assert str(limit + 1) in message
    assert f"the limit is {limit}" in message


# --- dates -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2027-12-31", datetime(2027, 12, 31, tzinfo=UTC)),
        (" 2027-12-31 ", datetime(2027, 12, 31, tzinfo=UTC)),
        ("2027-12-31T00:00:00Z", datetime(2027, 12, 31, tzinfo=UTC)),
        ("2027-12-31t10:20:30z", datetime(2027, 12, 31, 10, 20, 30, tzinfo=UTC)),
        ("2027-12-31 10:20", datetime(2027, 12, 31, 10, 20, tzinfo=UTC)),
        ("2027-12-31T10:20:30", datetime(2027, 12, 31, 10, 20, 30, tzinfo=UTC)),
        ("2027-12-31T01:00:00+02:00", datetime(2027, 12, 30, 23, tzinfo=UTC)),
        ("2027-12-31T22:00:00-05:30", datetime(2028, 1, 1, 3, 30, tzinfo=UTC)),
        ("2027-12-31T10:20:30.999999Z", datetime(2027, 12, 31, 10, 20, 30, tzinfo=UTC)),
        ("2027-12-31T10:20:30.123456789Z", datetime(2027, 12, 31, 10, 20, 30, tzinfo=UTC)),
        ("2027-12-31T10:20:30.5+01:00", datetime(2027, 12, 31, 9, 20, 30, tzinfo=UTC)),
    ],
)
def test_dates_and_times_parse_to_utc(text: str, expected: datetime) -> None:
    parsed = parse_datetime(text, "end-of-life date")
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "tomorrow",
        "31/12/2027",
        "20271231",
        "2027-12-31T",
        "2027-02-30",
        "2027-13-01",
        "2027-12-31T25:00:00Z",
        "2027-12-31T00:00:00+24:00",
        "2027-12-31T10:20:30.1234567891Z",
        "2027-12-31T00:00:00 UTC",
        "0001-01-01T00:00:00+01:00",
        "\u0662027-12-31",
    ],
)
def test_bad_dates_are_refused_with_an_example(text: str) -> None:
    """Each says what is wrong in words of dates, never in Python's own."""
    with pytest.raises(InvalidParameterError) as caught:
        parse_datetime(text, "end-of-life date")
    message = str(caught.value)
    assert f"invalid end-of-life date {text!r}" in message
    assert "2027-12-31" in message
    assert "2027-12-31T00:00:00Z" in message
    assert "timedelta" not in message


def test_an_offset_of_a_day_or_more_is_named_as_such() -> None:
    with pytest.raises(InvalidParameterError, match=r"\(its UTC offset is 24 hours or more\)"):
        parse_datetime("2027-06-30T12:00:00+25:00", "end-of-life date")


offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
moments = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC) | offsets
)


@given(moment=moments)
def test_formatting_then_parsing_keeps_the_moment_to_the_second(moment: datetime) -> None:
    text = format_datetime(moment)
    assert re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", text)
    assert parse_datetime(text, "date") == moment.replace(microsecond=0)


@given(moment=moments)
def test_an_offset_spelling_parses_to_the_same_moment(moment: datetime) -> None:
    assert parse_datetime(moment.isoformat(), "date") == moment.replace(microsecond=0)


def test_naive_times_are_taken_as_utc() -> None:
    assert format_datetime(datetime(2027, 12, 31, 8, 5, 3)) == "2027-12-31T08:05:03Z"
    assert format_datetime(datetime(5, 1, 2)) == "0005-01-02T00:00:00Z"


def test_aware_times_are_written_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert format_datetime(datetime(2027, 1, 1, 1, 0, 0, 500, tzinfo=plus_two)) == "2026-12-31T23:00:00Z"


# --- recommended ranges ------------------------------------------------------------------------

ends = st.none() | st.integers(min_value=1, max_value=2**31)


@given(low=ends, high=ends)
def test_ranges_with_ends_of_at_least_1_in_order_are_accepted(low: int | None, high: int | None) -> None:
    if low is not None and high is not None and low > high:
        low, high = high, low
    assert validate_resource_range(low, high, "vCPUs") == ResourceRange(low, high)


@given(bad=st.integers(max_value=0))
def test_an_end_below_1_is_refused(bad: int) -> None:
    for low, high, end in ((bad, None, "minimum"), (None, bad, "maximum")):
        with pytest.raises(InvalidParameterError) as caught:
            validate_resource_range(low, high, "vCPUs")
        assert f"invalid {end} vCPUs {bad}" in str(caught.value)
        assert "at least 1" in str(caught.value)


def test_a_minimum_above_the_maximum_is_refused() -> None:
    with pytest.raises(InvalidParameterError) as caught:
        validate_resource_range(16, 4, "memory (GiB)")
    message = str(caught.value)
    assert "minimum memory (GiB) 16 is larger than the maximum 4" in message
    assert "for example 4 and 16" in message


# --- descriptions ------------------------------------------------------------------------------


@given(text=st.text(st.characters(exclude_categories=["Cc", "Cs"]) | st.just("\t"), max_size=300))
def test_printable_descriptions_are_accepted(text: str) -> None:
    assert validate_description(text) == text


def test_descriptions_may_have_2048_characters_and_no_more() -> None:
    assert MAX_DESCRIPTION_LENGTH == 2048
    assert validate_description("d" * 2048) == "d" * 2048
    with pytest.raises(InvalidParameterError) as caught:
        validate_description("d" * 2049)
    assert "2049" in str(caught.value)
    assert "the limit is 2048" in str(caught.value)


@given(
    before=st.text(max_size=10, alphabet="ab "),
    control=st.characters(max_codepoint=0x1F).filter(lambda char: char != "\t"),
)
def test_control_characters_other_than_tab_are_refused(before: str, control: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        validate_description(before + control + "after")
    message = str(caught.value)
    assert repr(control) in message
    assert f"position {len(before)}" in message
    assert "tabs are allowed" in message


# --- updates -----------------------------------------------------------------------------------

DEFINITION = ImageDefinition(
    gallery="prod",
    name="ubuntu",
    identifier=ImageIdentifier("Canonical", "Ubuntu", "22_04"),
    os_type=OsType.LINUX,
)


@pytest.mark.parametrize(
    ("changes", "field", "old", "new"),
    [
        ({"gallery": "test"}, "gallery", "prod", "test"),
        ({"name": "debian"}, "name", "ubuntu", "debian"),
        (
            {"identifier": ImageIdentifier("Canonical", "Ubuntu", "24_04")},
            "identifier",
            "Canonical:Ubuntu:22_04",
            "Canonical:Ubuntu:24_04",
        ),
        ({"os_type": OsType.WINDOWS}, "osType", "Linux", "Windows"),
        ({"os_state": OsState.SPECIALIZED}, "osState", "Generalized", "Specialized"),
        ({"hyper_v_generation": HyperVGeneration.V2}, "hyperVGeneration", "V1", "V2"),
        ({"architecture": Architecture.ARM64}, "architecture", "x64", "Arm64"),
    ],
)
def test_fields_fixed_at_creation_cannot_change(
    changes: dict[str, Any], field: str, old: str, new: str
) -> None:
    with pytest.raises(ImmutableFieldError) as caught:
        check_definition_update(DEFINITION, dataclasses.replace(DEFINITION, **changes))
    message = str(caught.value)
    assert f"cannot change {field} of image definition prod/ubuntu from {old} to {new}" in message
    assert "fixed at creation" in message
    assert "create a new image definition" in message


def test_informational_fields_can_change() -> None:
    updated = dataclasses.replace(
        DEFINITION,
        recommended_vcpus=ResourceRange(2, 8),
        recommended_memory_gib=ResourceRange(4, None),
        end_of_life=datetime(2030, 1, 1, tzinfo=UTC),
        description="LTS",
    )
    check_definition_update(DEFINITION, updated)
    with pytest.raises(ImmutableFieldError):
        check_definition_update(updated, dataclasses.replace(updated, os_type=OsType.WINDOWS))


def test_a_gallery_may_change_its_description_only() -> None:
    gallery = Gallery("prod", "eastus", "images")
    check_gallery_update(gallery, dataclasses.replace(gallery, description="production images"))
    with pytest.raises(ImmutableFieldError) as caught:
        check_gallery_update(gallery, dataclasses.replace(gallery, location="westus"))
    message = str(caught.value)
    assert "cannot change location of gallery prod from eastus to westus" in message
    assert "only the description" in message
    with pytest.raises(ImmutableFieldError, match="cannot change name of gallery prod from prod to test"):
        check_gallery_update(gallery, dataclasses.replace(gallery, name="test"))
