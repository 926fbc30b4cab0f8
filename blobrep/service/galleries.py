"""Galleries and image definitions: the metadata half of the gallery service (regions are
in :mod:`blobrep.service.regions`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from blobrep.core.access import Action
from blobrep.core.definitions import (
    check_definition_update,
    check_gallery_update,
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
    parse_choice,
)
from blobrep.core.ids import ResourceId
from blobrep.core.names import validate_image_name
from blobrep.core.regions import normalize_region
from blobrep.core.retention import updated_policy
from blobrep.errors import InvalidParameterError
from blobrep.service import queries
from blobrep.service.retention import _Retention


@dataclass(frozen=True, slots=True)
class DefinitionFields:
    """The fields of an image definition, as given on create or update (None: not given).

    On create, publisher, offer, SKU and OS type are required; on update they (and OS state,
    generation and architecture) may be given only with their current values.
    """

    publisher: str | None = None
    offer: str | None = None
    sku: str | None = None
    os_type: str | None = None
    os_state: str | None = None
    hyper_v_generation: str | None = None
    architecture: str | None = None
    min_vcpus: int | None = None
    max_vcpus: int | None = None
    min_memory_gib: int | None = None
    max_memory_gib: int | None = None
    end_of_life: str | None = None
    description: str | None = None
    keep_global: int | None = None
    """The retention policy: how many newest versions stay global; 0 removes the policy."""
    home_region: str | None = None
    """Where older versions shrink to; a new policy defaults to the gallery's location."""
    exclude_end_of_life_from_latest: bool | None = None


class _Galleries(_Retention):
    # --- galleries ------------------------------------------------------------------------

    async def create_gallery(
        self, caller: str, name: str, *, location: str | None = None, description: str = ""
    ) -> Gallery:
        """Create a gallery (Contributor at ``/``); its creator becomes its Owner.

        ``location`` is the home region (default: the first region of the home, by name).
        """
        scope = ResourceId.of_gallery(name)
        await self._check(caller, Action.WRITE, ResourceId.home())
        regions = await self._regions()
        region = normalize_region(location) if location is not None else min(regions)
        await self._region(region)
        gallery = Gallery(name, region, validate_description(description))
        await self._catalog.create_gallery(gallery)
        await self._grant_owner(caller, scope)
        return gallery

    async def list_galleries(self, caller: str) -> list[Gallery]:
        """The galleries the caller can see (a role at the gallery, above it, or below it)."""
        return await self.run_query(caller, queries.list_galleries)

    async def show_gallery(self, caller: str, name: str) -> Gallery:
        return await self.run_query(
            caller, lambda reads, home, acting: queries.show_gallery(reads, home, acting, name)
        )

    async def update_gallery(self, caller: str, name: str, *, description: str | None = None) -> Gallery:
        """Change what may change on a gallery: its description."""
        await self._check(caller, Action.WRITE, ResourceId.of_gallery(name))
        old = await self._catalog.get_gallery(name)
        new = (
            old
            if description is None
            else dataclasses.replace(old, description=validate_description(description))
        )
        check_gallery_update(old, new)
        await self._catalog.update_gallery(new)
        return new

    async def delete_gallery(self, caller: str, name: str) -> None:
        """Delete an empty gallery (its definitions must be deleted first)."""
        await self._check(caller, Action.DELETE, ResourceId.of_gallery(name))
        await self._catalog.delete_gallery(name)

    # --- image definitions ----------------------------------------------------------------

    async def create_definition(
        self,
        caller: str,
        gallery: str,
        name: str,
        fields: DefinitionFields,
    ) -> ImageDefinition:
        """Create an image definition (Contributor on the gallery).

        Raises:
            AlreadyExistsError: the name, or the publisher/offer/sku identifier, is taken in the gallery.
        """
        await self._check(caller, Action.WRITE, ResourceId.of_gallery(gallery))
        await self._catalog.get_gallery(gallery)
        missing = [
            option
            for option, value in (
                ("publisher", fields.publisher),
                ("offer", fields.offer),
                ("sku", fields.sku),
                ("os type", fields.os_type),
            )
            if value is None
        ]
        if missing:
            raise InvalidParameterError(f"an image definition needs {', '.join(missing)}")
        assert fields.os_type is not None
        blank = ImageDefinition(
            gallery=gallery,
            name=validate_image_name(name),
            identifier=ImageIdentifier("", "", ""),
            os_type=parse_choice(OsType, fields.os_type, "OS type"),
        )
        definition = await self._with_policy(_apply(blank, fields), fields)
        await self._catalog.create_definition(definition)
        return definition

    async def list_definitions(self, caller: str, gallery: str) -> list[ImageDefinition]:
        return await self.run_query(
            caller, lambda reads, home, acting: queries.list_definitions(reads, home, acting, gallery)
        )

    async def show_definition(self, caller: str, gallery: str, name: str) -> ImageDefinition:
        return await self.run_query(
            caller, lambda reads, home, acting: queries.show_definition(reads, home, acting, gallery, name)
        )

    async def update_definition(
        self, caller: str, gallery: str, name: str, fields: DefinitionFields
    ) -> ImageDefinition:
        """Change the updatable fields; OS type/state, generation, architecture and identifier are fixed.

        A retention policy set or changed here (or the end-of-life rule it counts by) applies
        at once: the versions it no longer keeps global shrink to its home region before this
        returns.
        """
        await self._check(caller, Action.WRITE, ResourceId.of_image(gallery, name))
        old = await self._catalog.get_definition(gallery, name)
        new = await self._with_policy(_apply(old, fields), fields)
        check_definition_update(old, new)
        await self._catalog.update_definition(new)
        changed = (new.retention_policy, new.exclude_end_of_life_from_latest) != (
            old.retention_policy,
            old.exclude_end_of_life_from_latest,
        )
        if new.retention_policy is not None and changed:
            await self._apply_retention(gallery, name)
        return await self._catalog.get_definition(gallery, name)

    async def _with_policy(self, definition: ImageDefinition, fields: DefinitionFields) -> ImageDefinition:
        """``definition`` with the retention policy ``fields`` ask for, checked."""
        if fields.keep_global is None and fields.home_region is None:
            return definition
        policy = updated_policy(
            definition.retention_policy,
            fields.keep_global,
            fields.home_region,
            default_home=(await self._catalog.get_gallery(definition.gallery)).location,
            known_regions=await self._regions(),
        )
        return dataclasses.replace(definition, retention_policy=policy)

    async def delete_definition(self, caller: str, gallery: str, name: str) -> None:
        """Delete a definition that has no versions left."""
        await self._check(caller, Action.DELETE, ResourceId.of_image(gallery, name))
        await self._catalog.delete_definition(gallery, name)


def _apply(definition: ImageDefinition, fields: DefinitionFields) -> ImageDefinition:
    """``definition`` with every given field of ``fields`` parsed and set."""
    changes: dict[str, object] = {}
    if (fields.publisher, fields.offer, fields.sku) != (None, None, None):
        old_identifier = definition.identifier
        changes["identifier"] = validate_identifier(
            fields.publisher if fields.publisher is not None else old_identifier.publisher,
            fields.offer if fields.offer is not None else old_identifier.offer,
            fields.sku if fields.sku is not None else old_identifier.sku,
        )
    if fields.os_type is not None:
        changes["os_type"] = parse_choice(OsType, fields.os_type, "OS type")
    if fields.os_state is not None:
        changes["os_state"] = parse_choice(OsState, fields.os_state, "OS state")
    if fields.hyper_v_generation is not None:
        changes["hyper_v_generation"] = parse_choice(
            HyperVGeneration, fields.hyper_v_generation, "Hyper-V generation"
        )
    if fields.architecture is not None:
        changes["architecture"] = parse_choice(Architecture, fields.architecture, "architecture")
    if fields.min_vcpus is not None or fields.max_vcpus is not None:
        old = definition.recommended_vcpus
        changes["recommended_vcpus"] = validate_resource_range(
            _pick(fields.min_vcpus, old.min), _pick(fields.max_vcpus, old.max), "recommended vCPUs"
        )
    if fields.min_memory_gib is not None or fields.max_memory_gib is not None:
        old = definition.recommended_memory_gib
        changes["recommended_memory_gib"] = validate_resource_range(
            _pick(fields.min_memory_gib, old.min),
            _pick(fields.max_memory_gib, old.max),
            "recommended memory (GiB)",
        )
    if fields.end_of_life is not None:
        changes["end_of_life"] = parse_datetime(fields.end_of_life, "end-of-life date")
    if fields.description is not None:
        changes["description"] = validate_description(fields.description)
    if fields.exclude_end_of_life_from_latest is not None:
        changes["exclude_end_of_life_from_latest"] = fields.exclude_end_of_life_from_latest
    return dataclasses.replace(definition, **changes)  # type: ignore[arg-type]


def _pick(given: int | None, old: int | None) -> int | None:
    return old if given is None else given
