"""Image versions: MAJOR.MINOR.PATCH with 32-bit parts, ordered numerically."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobrep.core.version import MAX_VERSION_PART, ImageVersion
from blobrep.errors import InvalidVersionError

parts = st.integers(min_value=0, max_value=MAX_VERSION_PART)
versions = st.builds(ImageVersion, parts, parts, parts)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0", (0, 0, 0)),
        ("1.0.0", (1, 0, 0)),
        ("1.0.12", (1, 0, 12)),
        ("10.20.30", (10, 20, 30)),
        ("2147483647.1.1", (2147483647, 1, 1)),
        ("0.0.2147483647", (0, 0, 2147483647)),
        ("2147483647.2147483647.2147483647", (2147483647, 2147483647, 2147483647)),
    ],
)
def test_valid_versions_parse_to_their_parts(text: str, expected: tuple[int, int, int]) -> None:
    version = ImageVersion.parse(text)
    assert (version.major, version.minor, version.patch) == expected
    assert str(version) == text


def test_the_largest_part_is_the_largest_signed_32_bit_integer() -> None:
    assert MAX_VERSION_PART == 2**31 - 1


@pytest.mark.parametrize(
    "text",
    [
        "2147483648.0.0",
        "0.2147483648.0",
        "0.0.2147483648",
        "4294967295.0.0",
        "9999999999.0.0",
        "99999999999.0.0",
        "01.0.0",
        "1.00.0",
        "1.0.01",
        "00.0.0",
        "1.0",
        "1",
        "",
        "1.0.0.0",
        "1.a.0",
        "a.b.c",
        " 1.0.0",
        "1.0.0 ",
        "1.0.0\n",
        "1..0",
        ".1.0",
        "1.0.",
        "-1.0.0",
        "+1.0.0",
        "1.0.-0",
        "1_0.0.0",
        "v1.0.0",
        "1.0.0-beta",
        "\u0661.0.0",  # Arabic-Indic one
        "\uff11.0.0",  # full-width one
        "latest",
    ],
)
def test_invalid_versions_are_refused_naming_the_text(text: str) -> None:
    with pytest.raises(InvalidVersionError) as caught:
        ImageVersion.parse(text)
    assert repr(text) in str(caught.value)


def test_a_leading_zero_error_says_how_to_write_the_part() -> None:
    with pytest.raises(InvalidVersionError) as caught:
        ImageVersion.parse("1.02.0")
    assert "leading zero" in str(caught.value)
    assert "write 2" in str(caught.value)


def test_an_oversized_part_error_names_the_limit() -> None:
    with pytest.raises(InvalidVersionError) as caught:
        ImageVersion.parse("2147483648.0.0")
    assert str(MAX_VERSION_PART) in str(caught.value)


def test_versions_compare_numerically_not_as_text() -> None:
    assert ImageVersion.parse("1.0.12") > ImageVersion.parse("1.0.9")
    assert ImageVersion.parse("1.10.0") > ImageVersion.parse("1.9.99")
    assert ImageVersion.parse("10.0.0") > ImageVersion.parse("9.99.99")
    assert ImageVersion.parse("2.0.0") > ImageVersion.parse("1.2147483647.2147483647")
    texts = ["1.0.9", "1.0.12", "0.9.0", "1.0.10", "10.0.0", "2.0.0"]
    ordered = sorted(texts, key=ImageVersion.parse)
    assert ordered == ["0.9.0", "1.0.9", "1.0.10", "1.0.12", "2.0.0", "10.0.0"]
    assert max(map(ImageVersion.parse, texts)) == ImageVersion(10, 0, 0)


@given(version=versions)
def test_text_form_parses_back_to_the_same_version(version: ImageVersion) -> None:
    assert ImageVersion.parse(str(version)) == version


@given(many=st.lists(versions, max_size=20))
def test_version_order_is_the_order_of_the_part_tuples(many: list[ImageVersion]) -> None:
    by_version = sorted(many)
    by_tuple = sorted(many, key=lambda v: (v.major, v.minor, v.patch))
    assert by_version == by_tuple


@given(first=versions, second=versions)
def test_equal_text_means_equal_version(first: ImageVersion, second: ImageVersion) -> None:
    assert (str(first) == str(second)) == (first == second)
    if first == second:
        assert hash(first) == hash(second)


@given(
    major=parts,
    minor=parts,
    patch=parts,
    zeros=st.integers(min_value=1, max_value=3),
    which=st.integers(0, 2),
)
def test_any_leading_zero_is_refused(major: int, minor: int, patch: int, zeros: int, which: int) -> None:
    fields = [str(major), str(minor), str(patch)]
    fields[which] = "0" * zeros + fields[which]
    with pytest.raises(InvalidVersionError):
        ImageVersion.parse(".".join(fields))
