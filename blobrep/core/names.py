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

_GALLERY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._]{0,79}")
_IMAGE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")


def _check(kind: str, name: str, pattern: re.Pattern[str], allowed: str) -> str:
    if not name:
        raise InvalidNameError(f"{kind} name is empty: give 1 to {MAX_NAME_LENGTH} characters")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(
            f"{kind} name {name[:20]!r}... is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}"
        )
    if pattern.fullmatch(name) is None or name.endswith((".", "-")):
        raise InvalidNameError(
            f"invalid {kind} name {name!r}: use {allowed}, starting with a letter or digit"
            " and not ending with '.' or '-'"
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
    """Which blob of a gallery: an image definition and one of its versions.

    Written ``{image}/versions/{version}``, the same path that appears in the manifest key,
    so plumbing commands and the gallery catalog name a blob the same way.
    """

    image: str
    version: ImageVersion

    @classmethod
    def parse(cls, text: str) -> BlobName:
        """Parse ``{image}/versions/{MAJOR.MINOR.PATCH}`` or raise :class:`InvalidNameError`."""
        parts = text.split("/")
        if len(parts) != 3 or parts[1] != "versions":
            raise InvalidNameError(
                f"invalid blob name {text!r}: expected {{image}}/versions/{{version}},"
                " for example ubuntu-22.04/versions/1.0.0"
            )
        return cls(validate_image_name(parts[0]), ImageVersion.parse(parts[2]))

    def __str__(self) -> str:
        return f"{self.image}/versions/{self.version}"
