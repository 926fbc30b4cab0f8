"""Names of galleries, image definitions and blobs, validated before they reach a key.

The patterns follow the gallery model blobrep is built on: ASCII letters and digits with a
few separators allowed in the middle, at most 80 characters. Validating here, once, means a
name can be pasted into a storage key without any further escaping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from blobrep.core.version import ImageVersion
from blobrep.errors import InvalidNameError

MAX_NAME_LENGTH = 80
#: The highest logical unit number of a data disk: a version has data disks at LUNs 0..63.
MAX_LUN = 63

_GALLERY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._]{0,79}")
_IMAGE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
_LUN_RE = re.compile(r"lun(0|[1-9][0-9]?)")


def _check(kind: str, name: str, pattern: re.Pattern[str], allowed: str) -> str:
    if not name:
        raise InvalidNameError(f"{kind} name is empty: give 1 to {MAX_NAME_LENGTH} characters")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(
            f"{kind} name {name[:20]!r}... is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}"
        )
    if pattern.fullmatch(name) is None or name.endswith((".", "-")):
        endings = "'.' or '-'" if "'-'" in allowed else "'.'"
        raise InvalidNameError(
            f"invalid {kind} name {name!r}: use {allowed}, starting with a letter or digit"
            f" and not ending with {endings}"
        )
    return name


def validate_gallery_name(name: str) -> str:
    """Return ``name`` if it is a valid gallery name, else raise :class:`InvalidNameError`."""
    return _check("gallery", name, _GALLERY_RE, "letters, digits, '_' and '.'")


def validate_image_name(name: str) -> str:
    """Return ``name`` if it is a valid image definition name, else raise."""
    return _check("image definition", name, _IMAGE_RE, "letters, digits, '_', '-' and '.'")


@dataclass(frozen=True, slots=True)
class BlobName:
    """Which blob of a gallery: an image definition, one of its versions and, for a data disk,
    its LUN.

    Written ``{image}/versions/{version}`` for a version's OS disk and
    ``{image}/versions/{version}/lun{N}`` for its data disk at LUN ``N``: the same path that
    appears in the manifest key, so plumbing commands and the gallery catalog name a blob the
    same way. The OS disk keeps the name it always had, so homes published before data disks
    existed read as they did.
    """

    image: str
    version: ImageVersion
    lun: int | None = None
    """None for the OS disk; 0..:data:`MAX_LUN` for a data disk."""

    def __post_init__(self) -> None:
        if self.lun is not None:
            validate_lun(self.lun)

    @classmethod
    def parse(cls, text: str) -> BlobName:
        """Parse ``{image}/versions/{MAJOR.MINOR.PATCH}[/lun{N}]`` or raise :class:`InvalidNameError`."""
        parts = text.split("/")
        lun = None
        if len(parts) == 4 and _LUN_RE.fullmatch(parts[3]) is not None:
            lun = int(parts[3][3:])
            parts = parts[:3]
        if len(parts) != 3 or parts[1] != "versions":
            raise InvalidNameError(
                f"invalid blob name {text!r}: expected {{image}}/versions/{{version}}[/lun{{N}}],"
                " for example ubuntu-22.04/versions/1.0.0 or ubuntu-22.04/versions/1.0.0/lun0"
            )
        return cls(validate_image_name(parts[0]), ImageVersion.parse(parts[2]), lun)

    @property
    def disk(self) -> str:
        """The disk's name within its version: ``osdisk`` or ``lun{N}``."""
        return "osdisk" if self.lun is None else f"lun{self.lun}"

    def __str__(self) -> str:
        base = f"{self.image}/versions/{self.version}"
        return base if self.lun is None else f"{base}/lun{self.lun}"


def validate_lun(lun: object) -> int:
    """Return ``lun`` if it can number a data disk (0..:data:`MAX_LUN`), else raise.

    Raises:
        InvalidNameError: it is not a whole number in that range.
    """
    if isinstance(lun, bool) or not isinstance(lun, int) or not 0 <= lun <= MAX_LUN:
        raise InvalidNameError(f"invalid data disk LUN {lun!r}: use a whole number from 0 to {MAX_LUN}")
    return lun
