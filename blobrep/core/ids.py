"""Resource ids: the one spelling of a gallery, definition or version that users and scopes share.

::

    /                                              the home (scope of the bootstrap admin)
    /galleries/{g}                                 a gallery
    /galleries/{g}/images/{i}                      an image definition
    /galleries/{g}/images/{i}/versions/{X.Y.Z}     an image version
    /galleries/{g}/images/{i}/versions/latest      the latest version in a region (resolved later)

Role assignments sit at one of these ids and apply to everything below it, which is why an
id knows its ancestors. ``latest`` is only a reference: it never names a scope, and the
service resolves it per region before anything else happens.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from blobrep.core.names import validate_gallery_name, validate_image_name
from blobrep.core.version import ImageVersion
from blobrep.errors import InvalidNameError

LATEST = "latest"


class ResourceKind(StrEnum):
    HOME = "home"
    GALLERY = "gallery"
    IMAGE_DEFINITION = "imageDefinition"
    IMAGE_VERSION = "imageVersion"


_EXAMPLE = "/galleries/{gallery}/images/{definition}/versions/{X.Y.Z|latest}"


@dataclass(frozen=True, slots=True)
class ResourceId:
    """A parsed resource id; fields below the kind's level are None."""

    gallery: str | None = None
    image: str | None = None
    version: ImageVersion | None = None
    latest: bool = False
    """True for ``.../versions/latest``; then ``version`` is None."""

    @classmethod
    def home(cls) -> ResourceId:
        return cls()

    @classmethod
    def of_gallery(cls, gallery: str) -> ResourceId:
        return cls(validate_gallery_name(gallery))

    @classmethod
    def of_image(cls, gallery: str, image: str) -> ResourceId:
        return cls(validate_gallery_name(gallery), validate_image_name(image))

    @classmethod
    def of_version(cls, gallery: str, image: str, version: ImageVersion) -> ResourceId:
        return cls(validate_gallery_name(gallery), validate_image_name(image), version)

    @classmethod
    def parse(cls, text: str) -> ResourceId:
        """Parse an id or raise :class:`InvalidNameError` naming the expected shape."""
        if text == "/":
            return cls()
        if text.endswith("/") and text.strip("/"):
            raise InvalidNameError(f"invalid resource id {text!r}: leave out the trailing '/' ({_EXAMPLE})")
        parts = text.split("/")
        if parts[0] != "" or len(parts) not in (3, 5, 7) or "" in parts[1:]:
            raise InvalidNameError(f"invalid resource id {text!r}: expected '/' or {_EXAMPLE}")
        expected = ("galleries", "images", "versions")
        for position, keyword in zip(range(1, len(parts), 2), expected, strict=False):
            if parts[position] != keyword:
                raise InvalidNameError(
                    f"invalid resource id {text!r}: expected {keyword!r} where it says"
                    f" {parts[position]!r} ({_EXAMPLE})"
                )
        gallery = validate_gallery_name(parts[2])
        if len(parts) == 3:
            return cls(gallery)
        image = validate_image_name(parts[4])
        if len(parts) == 5:
            return cls(gallery, image)
        if parts[6] == LATEST:
            return cls(gallery, image, latest=True)
        return cls(gallery, image, ImageVersion.parse(parts[6]))

    @property
    def kind(self) -> ResourceKind:
        if self.gallery is None:
            return ResourceKind.HOME
        if self.image is None:
            return ResourceKind.GALLERY
        if self.version is None and not self.latest:
            return ResourceKind.IMAGE_DEFINITION
        return ResourceKind.IMAGE_VERSION

    @property
    def parent(self) -> ResourceId | None:
        """The id one level up; None for the home."""
        kind = self.kind
        if kind is ResourceKind.HOME:
            return None
        if kind is ResourceKind.GALLERY:
            return ResourceId()
        if kind is ResourceKind.IMAGE_DEFINITION:
            return ResourceId(self.gallery)
        return ResourceId(self.gallery, self.image)

    def lineage(self) -> list[ResourceId]:
        """This id and every ancestor up to the home, nearest first."""
        result: list[ResourceId] = []
        current: ResourceId | None = self
        while current is not None:
            result.append(current)
            current = current.parent
        return result

    def contains(self, other: ResourceId) -> bool:
        """True if ``other`` is this id or lies below it (so a role here applies there)."""
        return self in other.lineage()

    def __str__(self) -> str:
        if self.gallery is None:
            return "/"
        text = f"/galleries/{self.gallery}"
        if self.image is not None:
            text += f"/images/{self.image}"
            if self.latest:
                text += f"/versions/{LATEST}"
            elif self.version is not None:
                text += f"/versions/{self.version}"
        return text


def image_reference(text: str) -> tuple[str, str, ImageVersion | None]:
    """``(gallery, image, version)`` of an image reference: a version id
    (``/galleries/G/images/I/versions/1.0.0``), its ``.../versions/latest`` form, or the
    definition id alone; the version is None for the last two, which mean latest.

    Raises:
        InvalidNameError: the id is malformed or names a gallery or the home.
    """
    reference = ResourceId.parse(text)
    if reference.kind not in (ResourceKind.IMAGE_DEFINITION, ResourceKind.IMAGE_VERSION):
        raise InvalidNameError(
            f"{text!r} names a {reference.kind}, not an image: give a definition id"
            " (/galleries/G/images/I), .../versions/latest or .../versions/X.Y.Z"
        )
    assert reference.gallery is not None and reference.image is not None
    return reference.gallery, reference.image, reference.version
