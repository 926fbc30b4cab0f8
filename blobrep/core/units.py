"""Byte sizes as people write them (``4GiB``, ``512M``, ``1048576``) and as we print them."""

from __future__ import annotations

import re
from fractions import Fraction

from blobrep.errors import InvalidParameterError

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1000,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1000**4,
    "tib": 1024**4,
}
_SIZE_RE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*")


def parse_size(text: str) -> int:
    """Bytes in ``text``: a number with an optional unit (k/M/G/T are powers of 1024).

    A fraction of a unit larger than a byte is rounded down to whole bytes (``0.1k`` is 102),
    the way sizes are shown (``1.1 KiB``) and typed back. A fraction of a byte is refused:
    ``1.5`` or ``1.5B`` has no whole-byte meaning, and rounding it would act on a size the
    user never wrote.

    Raises:
        InvalidParameterError: naming the text and showing valid forms.
    """
    match = _SIZE_RE.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS or len(match.group(1)) > 100:  # 10**100 bytes is no size
        raise InvalidParameterError(
            f"invalid size {text!r}: write a number with an optional unit, e.g. 4096, 512MiB, 1GiB"
        )
    # Fraction, not float: "1.001kB" is 1001 bytes and big byte counts stay exact.
    size = Fraction(match.group(1)) * _UNITS[unit]
    if _UNITS[unit] == 1 and size.denominator != 1:
        raise InvalidParameterError(
            f"invalid size {text!r}: a size in bytes is a whole number; write e.g. 4096,"
            " or a fraction of a larger unit such as 1.5KiB or 1.5MiB"
        )
    return int(size)


def format_size(size: int | float) -> str:
    """``size`` bytes for people: ``1.5 GiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        digits = 0 if unit == "B" else 1
        # Compare what will be shown, so 1048575 bytes is "1.0 MiB", not "1024.0 KiB".
        if abs(round(value, digits)) < 1024 or unit == "TiB":
            return f"{value:.{digits}f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_RE = re.compile(r"\s*([0-9]{1,12}(?:\.[0-9]{1,9})?)\s*([smhd]?)\s*")


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a number with an optional unit ``s``, ``m``, ``h`` or ``d``.

    Raises:
        InvalidParameterError: naming the text and showing valid forms.
    """
    match = _DURATION_RE.fullmatch(text.lower())
    if match is None:
        raise InvalidParameterError(f"invalid duration {text!r}: write e.g. 0, 90, 30s, 10m, 1h or 2d")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]
