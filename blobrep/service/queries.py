"""The service's reads as plain functions over one catalog transaction.

Each function takes :class:`~blobrep.catalog.reads.CatalogReads` and does everything a read
call does: who the caller is, what it may see, what it asked for. The service runs them on
the catalog's worker thread in one hop (:meth:`Catalog.read_with
<blobrep.catalog.Catalog.read_with>`); a CLI command that only reads runs them on a snapshot
without an event loop (:func:`~blobrep.catalog.reads.read_snapshot`). One implementation, so
the fast path and the service cannot answer differently.

Blocking (the catalog, the home's configuration file): call from a worker thread or from a
program without an event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from blobrep.core.access import Action, PrincipalType, Reach, allows, can_see, check, reach
from blobrep.core.gallery import ReplicationState
from blobrep.core.ids import LATEST, ResourceId, image_reference
from blobrep.core.latest import latest_error_detail, resolve_latest
from blobrep.core.principals import validate_principal_name
from blobrep.core.regions import normalize_region, unknown_region_message
from blobrep.core.version import ImageVersion
from blobrep.errors import AccessDeniedError, InvalidNameError, ResourceNotFoundError, UnavailableError

if TYPE_CHECKING:
    from pathlib import Path

    from blobrep.catalog.reads import CatalogReads
    from blobrep.core.access import RoleAssignment
    from blobrep.core.gallery import Gallery, GalleryImageVersion, ImageDefinition
    from blobrep.service.home import Home, RegionConfig

T = TypeVar("T")

Query = Callable[["CatalogReads", "Home", str], T]
"""``(reads, home, caller) -> answer``: a read the service and a loop-free command both run."""

#: The catalog setting that names the home's bootstrap admin.
BOOTSTRAP_SETTING = "bootstrap_admin"


class Authorizer:
    """One caller's view of the assignments at one moment: checks and visibility filters."""

    def __init__(
        self, caller: str, assignments: list[RoleAssignment], memberships: dict[str, frozenset[str]]
    ) -> None:
        self.caller = caller
        self._assignments = assignments
        self._memberships = memberships

    def check(self, action: Action, scope: ResourceId) -> None:
        check(self.caller, action, scope, self._assignments, self._memberships)

    def may(self, action: Action, scope: ResourceId) -> bool:
        """True if the caller may do ``action`` at ``scope`` (and so anywhere below it)."""
        return allows(self.caller, action, scope, self._assignments, self._memberships)

    def sees(self, scope: ResourceId) -> bool:
        return can_see(self.caller, scope, self._assignments, self._memberships)

    def reach(
        self, action: Action, gallery: str, images: list[str], versions: list[GalleryImageVersion]
    ) -> Reach:
        """Where in ``gallery`` (holding ``images`` and their ``versions``) the caller may do
        ``action``; see :func:`blobrep.core.access.reach`."""
        resources = {ResourceId.of_image(gallery, image) for image in images}
        resources.update(ResourceId.of_version(gallery, v.image, v.version) for v in versions)
        return reach(
            self.caller,
            action,
            ResourceId.of_gallery(gallery),
            resources,
            self._assignments,
            self._memberships,
        )


def authorizer_for(reads: CatalogReads, caller: str) -> Authorizer:
    """The caller's view of access, once it is known to be someone who can act.

    Only users and service principals act. A group holds roles for its members; letting
    it call would let anyone who names the group use its roles without being in it.

    Raises:
        InvalidNameError: ``caller`` is empty or only whitespace (no one was named).
        AccessDeniedError: ``caller`` is not a known principal, or is a group.
    """
    if not caller.strip():
        shown = "empty" if not caller else f"{caller!r}, only whitespace"
        raise InvalidNameError(f"the calling principal is {shown}: name a user or service principal")
    try:
        principal = reads.get_principal(caller)
    except ResourceNotFoundError:
        raise AccessDeniedError(unknown_principal(caller)) from None
    if principal.type is PrincipalType.GROUP:
        raise AccessDeniedError(
            f"{caller!r} is a group; groups hold roles for their members but cannot act:"
            " act as a user or service principal"
        )
    return Authorizer(caller, reads.all_assignments(), reads.memberships())


def unknown_principal(caller: str) -> str:
    """Why ``caller`` cannot act, with the command that would add it when it can be added.

    The command is quoted only for a name that could be created: any other (a control
    character, a slash) is shown escaped, never pasted raw into a terminal.
    """
    try:
        validate_principal_name(caller)
    except InvalidNameError as exc:
        return f"unknown principal {caller!r}, and no principal can have that name: {exc}"
    return (
        f"unknown principal {caller!r}: an admin can add it with"
        f" 'blobrep principal create --name {caller} --type user'"
    )


def list_galleries(reads: CatalogReads, home: Home, caller: str) -> list[Gallery]:
    """The galleries the caller can see (a role at the gallery, above it, or below it)."""
    authorizer = authorizer_for(reads, caller)
    return [
        gallery for gallery in reads.list_galleries() if authorizer.sees(ResourceId.of_gallery(gallery.name))
    ]


def show_gallery(reads: CatalogReads, home: Home, caller: str, name: str) -> Gallery:
    authorizer_for(reads, caller).check(Action.READ, ResourceId.of_gallery(name))
    return reads.get_gallery(name)


def list_definitions(reads: CatalogReads, home: Home, caller: str, gallery: str) -> list[ImageDefinition]:
    """The gallery's definitions the caller can see."""
    authorizer = authorizer_for(reads, caller)
    if not authorizer.sees(ResourceId.of_gallery(gallery)):
        authorizer.check(Action.READ, ResourceId.of_gallery(gallery))
    return [
        definition
        for definition in reads.list_definitions(gallery)
        if authorizer.sees(ResourceId.of_image(gallery, definition.name))
    ]


def show_definition(reads: CatalogReads, home: Home, caller: str, gallery: str, name: str) -> ImageDefinition:
    authorizer_for(reads, caller).check(Action.READ, ResourceId.of_image(gallery, name))
    return reads.get_definition(gallery, name)


def list_versions(
    reads: CatalogReads, home: Home, caller: str, gallery: str, image: str
) -> list[GalleryImageVersion]:
    """The definition's versions the caller can see, in version order."""
    definition_id = ResourceId.of_image(gallery, image)
    authorizer = authorizer_for(reads, caller)
    if authorizer.may(Action.READ, definition_id):
        # A role at the definition or above reads every version in it.
        return reads.list_versions(gallery, image)
    if not authorizer.sees(definition_id):
        authorizer.check(Action.READ, definition_id)
    return [
        version
        for version in reads.list_versions(gallery, image)
        if authorizer.sees(ResourceId.of_version(gallery, image, version.version))
    ]


def region_named(home: Home, name: str) -> RegionConfig:
    """The region ``name`` (any spelling: short or display name).

    Raises:
        InvalidRegionError: ``name`` cannot be a region name at all.
        ResourceNotFoundError: this home has no such region; the message lists those it has.
    """
    short = normalize_region(name)
    regions = home.load_regions()
    if short not in regions:
        raise ResourceNotFoundError(unknown_region_message(short, regions))
    return regions[short]


def show_version(
    reads: CatalogReads, home: Home, caller: str, gallery: str, image: str, version: str, location: str | None
) -> GalleryImageVersion:
    """One version; ``latest`` resolves in ``location`` (default: the gallery's home region).

    Raises:
        ResourceNotFoundError: no such version, no such region, or no version can be
            ``latest`` in that region (the message says why each candidate was skipped).
    """
    if version != LATEST:
        number = ImageVersion.parse(version)
        authorizer_for(reads, caller).check(Action.READ, ResourceId.of_version(gallery, image, number))
        if location is not None:
            region_named(home, location)
        return reads.get_version(gallery, image, number)
    return latest_version(reads, home, caller, gallery, image, location)


def latest_version(
    reads: CatalogReads, home: Home, caller: str, gallery: str, image: str, location: str | None
) -> GalleryImageVersion:
    """The highest version Completed in the region and not excluded from latest there.

    Only versions the caller may read are candidates: someone given Reader on one version
    gets that one as latest, and learns nothing of the versions beside it.

    Raises:
        ResourceNotFoundError: no such region, or no version the caller may read can be
            ``latest`` there (the message says why each was skipped).
    """
    definition_id = ResourceId.of_image(gallery, image)
    authorizer = authorizer_for(reads, caller)
    if not authorizer.sees(definition_id):
        authorizer.check(Action.READ, definition_id)
    region = (
        region_named(home, location).name if location is not None else reads.get_gallery(gallery).location
    )
    versions = [
        found
        for found in reads.list_versions(gallery, image)
        if authorizer.sees(ResourceId.of_version(gallery, image, found.version))
    ]
    # The definition may ask latest to skip versions past their end of life, judged now.
    expired_at = (
        datetime.now(UTC) if reads.get_definition(gallery, image).exclude_end_of_life_from_latest else None
    )
    chosen = resolve_latest(versions, region, expired_at)
    if chosen is None:
        raise ResourceNotFoundError(
            f"{definition_id}/versions/latest has no version usable in {region}: "
            + latest_error_detail(versions, region, expired_at)
        )
    authorizer.check(Action.READ, ResourceId.of_version(gallery, image, chosen.version))
    return chosen


def resolve_image(
    reads: CatalogReads, home: Home, caller: str, image_id: str, location: str | None
) -> GalleryImageVersion:
    """The version an image reference names in a region: a version id
    (``/galleries/G/images/I/versions/1.0.0``), its ``.../versions/latest`` form, or the
    definition id alone, which also means latest; ``latest`` resolves in ``location``
    (default: the gallery's home region).

    Raises:
        InvalidNameError: the id is malformed or names a gallery or the home.
    """
    gallery, image, version = image_reference(image_id)
    if version is not None:
        return show_version(reads, home, caller, gallery, image, str(version), location)
    return latest_version(reads, home, caller, gallery, image, location)


def readable_version(
    reads: CatalogReads, home: Home, caller: str, image_id: str, location: str | None
) -> tuple[GalleryImageVersion, RegionConfig]:
    """The version ``image_id`` names (see :func:`resolve_image`), checked for reading in a
    region: the caller may deploy from it, and the region (``location``, default the
    gallery's home region) is Completed; with that region's configuration.

    Raises:
        AccessDeniedError: the caller may not deploy from the version.
        UnavailableError: the region is not one of the version's targets, or is not
            Completed there yet (the message says what it is and how to get there).
    """
    resolved = resolve_image(reads, home, caller, image_id, location)
    version_id = ResourceId.of_version(resolved.gallery, resolved.image, resolved.version)
    authorizer_for(reads, caller).check(Action.DEPLOY, version_id)
    region = region_named(home, location if location is not None else resolved.location)
    status = resolved.status(region.name)
    if status is None:
        targets = [target.name for target in resolved.publishing_profile.target_regions]
        raise UnavailableError(
            f"{version_id} cannot be read in {region.name}: {region.name} is not one of its target"
            f" regions ({', '.join(targets)}); add it with --target-regions"
            f" {' '.join([*targets, region.name])} and replicate, or read it in one of those"
        )
    if status.state is not ReplicationState.COMPLETED:
        why = f"it is {status.state} there ({status.progress}%)"
        if status.details:
            why += f": {status.details}"
        raise UnavailableError(
            f"{version_id} cannot be read in {region.name} yet: {why}; it can be read in a region"
            " once replication there is Completed"
        )
    return resolved, region


def read_without_loop(home_dir: Path, caller: str | None, query: Query[T]) -> tuple[T] | None:
    """``(query(reads, home, caller),)`` on a snapshot of the home's catalog, or None when the
    service must open the home instead.

    The service opening a home may write: it creates a fresh home, migrates an older
    catalog, adds the bootstrap admin, and recovers operations whose process died. A read
    that skipped those would see what the service would not, so it is done here only when
    none applies: the catalog exists at this schema version, the admin is there, and no
    version is in the middle of an operation. ``caller`` None means the bootstrap admin.
    """
    from blobrep.catalog.reads import read_snapshot
    from blobrep.service.home import Home

    home = Home(home_dir)

    def run(reads: CatalogReads) -> tuple[T] | None:
        acting = caller if caller is not None else reads.get_setting(BOOTSTRAP_SETTING)
        if acting is None or reads.unfinished_versions():
            return None
        return (query(reads, home, acting),)

    done = read_snapshot(home.catalog_path, run)
    return None if done is None else done[0]
