"""Byte sizes as people write and read them."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobrep.core.units import format_size, parse_duration, parse_size
from blobrep.errors import InvalidParameterError

BINARY = {
    "k": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tib": 1024**4,
}
DECIMAL = {"kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}
UNITS = {"": 1, "b": 1, **BINARY, **DECIMAL}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("4096", 4096),
        ("4096B", 4096),
        ("4k", 4096),
        ("4K", 4096),
        ("4KiB", 4096),
        ("4kb", 4000),
        ("4KB", 4000),
        ("512M", 512 * 1024**2),
        ("512MiB", 512 * 1024**2),
        ("512MB", 512 * 1000**2),
        ("1G", 1024**3),
        ("1GiB", 1024**3),
        ("1gib", 1024**3),
        ("1GB", 1000**3),
        ("2T", 2 * 1024**4),
        ("2TiB", 2 * 1024**4),
        ("2TB", 2 * 1000**4),
        ("1.5GiB", 3 * 1024**3 // 2),
        ("0.5k", 512),
        ("  1 GiB  ", 1024**3),
        ("1\tMiB", 1024**2),
    ],
)
def test_sizes_with_units(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.001kB", 1001),
        ("4.3GB", 4_300_000_000),
        ("0.1k", 102),  # 102.4 bytes, rounded down
        ("1.1MB", 1_100_000),
        ("2.675MB", 2_675_000),
        ("0.000001TB", 1_000_000),
        ("9007199254740993", 2**53 + 1),
        ("123456789012345678901234567890", 123456789012345678901234567890),
        ("1.000000000000000001TiB", 1024**4),
    ],
)
def test_decimal_fractions_are_exact(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@given(
    number=st.integers(min_value=0, max_value=2**80), unit=st.sampled_from(sorted(UNITS)), upper=st.booleans()
)
def test_whole_numbers_times_their_unit(number: int, unit: str, upper: bool) -> None:
    text = f"{number}{unit.upper() if upper else unit}"
    assert parse_size(text) == number * UNITS[unit]


@given(
    whole=st.integers(min_value=0, max_value=10**6),
    fraction=st.text(alphabet="0123456789", min_size=1, max_size=6),
    unit=st.sampled_from(sorted(BINARY | DECIMAL)),
)
def test_fractions_of_a_unit_round_down_to_whole_bytes(whole: int, fraction: str, unit: str) -> None:
    # whole.fraction * unit, computed in integers: (whole * 10^n + fraction) * unit // 10^n
    scale = 10 ** len(fraction)
    expected = (whole * scale + int(fraction)) * UNITS[unit] // scale
    assert parse_size(f"{whole}.{fraction}{unit}") == expected


@given(
    whole=st.integers(min_value=0, max_value=10**6),
    fraction=st.text(alphabet="0123456789", min_size=1, max_size=6),
    unit=st.sampled_from(["", "b", "B"]),
)
def test_a_fraction_of_a_byte_is_refused_never_rounded(whole: int, fraction: str, unit: str) -> None:
    # "1.5" bytes used to become 1, and a chunk size the user never typed was then refused.
    text = f"{whole}.{fraction}{unit}"
    if int(fraction) == 0:
        assert parse_size(text) == whole  # "4096.0" is a whole number of bytes
        return
    with pytest.raises(InvalidParameterError) as caught:
        parse_size(text)
    assert repr(text) in str(caught.value)
    assert "whole number" in str(caught.value)
    assert "1.5MiB" in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "abc",
        "k",
        "-1",
        "-1k",
        "+1",
        "1.",
        ".5",
        "1.5.5",
        "1e3",
        "1 PiB",
        "1P",
        "1kk",
        "1 k b",
        "1,000",
        "0x10",
        "1_000",
        "\u0661",
    ],
)
def test_malformed_sizes_are_refused_showing_examples(text: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        parse_size(text)
    assert repr(text) in str(caught.value)
    assert "512MiB" in str(caught.value)


@pytest.mark.parametrize("digits", [400, 5000])
def test_absurdly_long_numbers_are_refused_as_sizes(digits: int) -> None:
    with pytest.raises(InvalidParameterError):
        parse_size("9" * digits)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, "0 B"),
        (1, "1 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (1024**2, "1.0 MiB"),
        (5 * 1024**3 // 2, "2.5 GiB"),
        (1024**4, "1.0 TiB"),
        (1024**5, "1024.0 TiB"),
        (-2048, "-2.0 KiB"),
        (1024**2 - 1, "1.0 MiB"),
        (1024**3 - 1, "1.0 GiB"),
        (1024**4 - 1, "1.0 TiB"),
    ],
)
def test_sizes_are_shown_in_binary_units(size: int, expected: str) -> None:
    assert format_size(size) == expected


@given(size=st.integers(min_value=0, max_value=1024**5))
def test_shown_sizes_have_at_most_three_integer_digits_below_tebibytes(size: int) -> None:
    shown = format_size(size)
    match = re.fullmatch(r"([0-9]+)(\.[0-9])? (B|KiB|MiB|GiB|TiB)", shown)
    assert match is not None
    if match.group(3) != "TiB":
        assert float(match.group(1) + (match.group(2) or "")) < 1024


@given(size=st.integers(min_value=0, max_value=1024**5))
def test_shown_sizes_read_back_within_rounding(size: int) -> None:
    # One decimal of a unit at least 1 wide: at most 5 % off, plus the byte lost rounding down.
    back = parse_size(format_size(size))
    assert abs(back - size) <= size * 0.05 + 1
    if size < 1024:
        assert back == size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("90", 90.0),
        ("30s", 30.0),
        ("10m", 600.0),
        ("1h", 3600.0),
        ("2d", 172800.0),
        (" 1.5H ", 5400.0),
    ],
)
def test_durations_as_people_write_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "-1", "1w", "h", "1 h m", "1e3"])
def test_bad_durations_say_what_would_be_right(text: str) -> None:
    with pytest.raises(InvalidParameterError, match="10m"):
        parse_duration(text)
