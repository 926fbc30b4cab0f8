"""Image version numbers: ``MAJOR.MINOR.PATCH``, each part a non-negative 32-bit integer.

Versions compare numerically part by part (``1.0.12`` is newer than ``1.0.9``), which is why
they are parsed into a tuple instead of being compared as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from blobrep.errors import InvalidVersionError

#: The largest value of one version part: the range of a signed 32-bit integer.
MAX_VERSION_PART = 2**31 - 1

_VERSION_RE = re.compile(r"([0-9]{1,10})\.([0-9]{1,10})\.([0-9]{1,10})")


@dataclass(frozen=True, slots=True, order=True)
class ImageVersion:
    """A parsed ``MAJOR.MINOR.PATCH``; ordering is numeric, part by part."""

    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> ImageVersion:
        """Parse ``text`` or raise :class:`InvalidVersionError` saying what is wrong.

        Leading zeros are refused (``1.02.0``) because ``1.2.0`` and ``1.02.0`` would
        otherwise name the same version under two spellings.
        """
        match = _VERSION_RE.fullmatch(text)
        if match is None:
            raise InvalidVersionError(
                f"invalid image version {text!r}: expected MAJOR.MINOR.PATCH with digits only,"
                " for example 1.0.0"
            )
        parts = match.groups()
        for part in parts:
            if len(part) > 1 and part.startswith("0"):
                raise InvalidVersionError(
                    f"invalid image version {text!r}: part {part!r} has a leading zero; write {int(part)}"
                )
            if int(part) > MAX_VERSION_PART:
                raise InvalidVersionError(
                    f"invalid image version {text!r}: part {part} is larger than"
                    f" {MAX_VERSION_PART} (a 32-bit integer)"
                )
        return cls(int(parts[0]), int(parts[1]), int(parts[2]))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"
