"""Galleries and image definitions: the two levels of the hierarchy above versions.

Each function runs inside a transaction that :class:`~blobrep.catalog.db.Database` opened and
takes its connection. Existence is checked explicitly before each insert or delete, inside the
same transaction, so errors name the resource in words a user knows; the table constraints
are a second line of defence, not the source of the messages.
"""

from __future__ import annotations

import sqlite3

from blobrep.catalog._columns import now, text_to_time, time_to_text, to_choice
from blobrep.catalog.assignments import delete_assignments_within
from blobrep.core.gallery import (
    Architecture,
    Gallery,
    HyperVGeneration,
    ImageDefinition,
    ImageIdentifier,
    OsState,
    OsType,
    ProvisioningState,
    ResourceRange,
    RetentionPolicy,
)
from blobrep.core.ids import ResourceId
from blobrep.errors import AlreadyExistsError, PreconditionError, ResourceNotFoundError

# --- galleries --------------------------------------------------------------------------------


def require_gallery(connection: sqlite3.Connection, name: str) -> None:
    """Check that gallery ``name`` exists.

    Raises:
        ResourceNotFoundError: no gallery ``name``.
    """
    if connection.execute("SELECT 1 FROM galleries WHERE name = ?", (name,)).fetchone() is None:
        raise _gallery_not_found(connection, name)


def _gallery_not_found(connection: sqlite3.Connection, name: str) -> ResourceNotFoundError:
    """No gallery ``name``: said with the one whose name differs only in letter case, if any
    (names are matched exactly, so ``G`` does not find ``g``)."""
    row = connection.execute("SELECT name FROM galleries WHERE name = ? COLLATE NOCASE", (name,)).fetchone()
    meant = "" if row is None else f" (names are matched exactly: did you mean {row['name']!r}?)"
    return ResourceNotFoundError(f"gallery {name!r} not found{meant}")


def create_gallery(connection: sqlite3.Connection, gallery: Gallery) -> None:
    """Store a new gallery.

    Names are looked up exactly, but a name that differs from an existing one only in letter
    case is refused too: on a case-insensitive filesystem both would share one directory, and
    a gallery is a trust boundary.

    Raises:
        AlreadyExistsError: a gallery of that name (in any letter case) exists.
    """
    row = connection.execute(
        "SELECT name FROM galleries WHERE name = ? COLLATE NOCASE", (gallery.name,)
    ).fetchone()
    if row is not None:
        same = (
            ""
            if row["name"] == gallery.name
            else f" (as {row['name']!r}; names differing only in case clash)"
        )
        raise AlreadyExistsError(f"gallery {gallery.name!r} already exists{same}")
    connection.execute(
        "INSERT INTO galleries (name, location, description, provisioning_state, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (gallery.name, gallery.location, gallery.description, gallery.provisioning_state.value, now()),
    )


def _gallery(row: sqlite3.Row) -> Gallery:
    return Gallery(
        name=row["name"],
        location=row["location"],
        description=row["description"],
        provisioning_state=to_choice(ProvisioningState, row["provisioning_state"], "provisioning state"),
    )


def get_gallery(connection: sqlite3.Connection, name: str) -> Gallery:
    """The gallery called ``name``.

    Raises:
        ResourceNotFoundError: no gallery ``name``.
    """
    row = connection.execute("SELECT * FROM galleries WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise _gallery_not_found(connection, name)
    return _gallery(row)


def list_galleries(connection: sqlite3.Connection) -> list[Gallery]:
    return [_gallery(row) for row in connection.execute("SELECT * FROM galleries ORDER BY name")]


def update_gallery(connection: sqlite3.Connection, gallery: Gallery) -> None:
    """Replace the gallery's fields (found by name).

    Raises:
        ResourceNotFoundError: no gallery of that name.
    """
    cursor = connection.execute(
        "UPDATE galleries SET location = ?, description = ?, provisioning_state = ? WHERE name = ?",
        (gallery.location, gallery.description, gallery.provisioning_state.value, gallery.name),
    )
    if cursor.rowcount == 0:
        raise ResourceNotFoundError(f"gallery {gallery.name!r} not found")


def delete_gallery(connection: sqlite3.Connection, name: str) -> None:
    """Delete the gallery and every role assignment within it.

    Raises:
        ResourceNotFoundError: no gallery ``name``.
        PreconditionError: the gallery still holds image definitions.
    """
    require_gallery(connection, name)
    (count,) = connection.execute(
        "SELECT count(*) FROM image_definitions WHERE gallery = ?", (name,)
    ).fetchone()
    if count:
        noun = "image definition" if count == 1 else "image definitions"
        raise PreconditionError(f"gallery {name!r} still has {count} {noun}; delete them first")
    delete_assignments_within(connection, ResourceId(name))
    connection.execute("DELETE FROM galleries WHERE name = ?", (name,))


# --- image definitions ------------------------------------------------------------------------


def _definition_not_found(connection: sqlite3.Connection, gallery: str, name: str) -> ResourceNotFoundError:
    """No definition ``name`` in ``gallery``: said with the one whose name differs only in
    letter case, if any."""
    row = connection.execute(
        "SELECT name FROM image_definitions WHERE gallery = ? AND name = ? COLLATE NOCASE", (gallery, name)
    ).fetchone()
    meant = "" if row is None else f" (names are matched exactly: did you mean {row['name']!r}?)"
    return ResourceNotFoundError(f"image definition {name!r} not found in gallery {gallery!r}{meant}")


def require_definition(connection: sqlite3.Connection, gallery: str, name: str) -> None:
    """Check that the definition exists.

    Raises:
        ResourceNotFoundError: no such gallery, or no such definition in it.
    """
    found = connection.execute(
        "SELECT 1 FROM image_definitions WHERE gallery = ? AND name = ?", (gallery, name)
    ).fetchone()
    if found is None:
        require_gallery(connection, gallery)
        raise _definition_not_found(connection, gallery, name)


def _check_identifier(connection: sqlite3.Connection, definition: ImageDefinition) -> None:
    """Check that no other definition in the gallery has this one's identifier.

    Raises:
        AlreadyExistsError: another definition in the gallery has the same identifier.
    """
    identifier = definition.identifier
    row = connection.execute(
        "SELECT name FROM image_definitions"
        " WHERE gallery = ? AND publisher = ? AND offer = ? AND sku = ? AND name != ?",
        (definition.gallery, identifier.publisher, identifier.offer, identifier.sku, definition.name),
    ).fetchone()
    if row is not None:
        raise AlreadyExistsError(
            f"image definition {row['name']!r} in gallery {definition.gallery!r} already has"
            f" publisher {identifier.publisher!r}, offer {identifier.offer!r} and sku {identifier.sku!r};"
            " an identifier must be unique within a gallery"
        )


def _definition_columns(definition: ImageDefinition) -> dict[str, object]:
    policy = definition.retention_policy
    return {
        "gallery": definition.gallery,
        "name": definition.name,
        "publisher": definition.identifier.publisher,
        "offer": definition.identifier.offer,
        "sku": definition.identifier.sku,
        "os_type": definition.os_type.value,
        "os_state": definition.os_state.value,
        "hyper_v_generation": definition.hyper_v_generation.value,
        "architecture": definition.architecture.value,
        "vcpus_min": definition.recommended_vcpus.min,
        "vcpus_max": definition.recommended_vcpus.max,
        "memory_min": definition.recommended_memory_gib.min,
        "memory_max": definition.recommended_memory_gib.max,
        "end_of_life": time_to_text(definition.end_of_life, "end of life"),
        "description": definition.description,
        "provisioning_state": definition.provisioning_state.value,
        "keep_global": None if policy is None else policy.keep_global,
        "home_region": None if policy is None else policy.home_region,
        "exclude_end_of_life_from_latest": int(definition.exclude_end_of_life_from_latest),
    }


def create_definition(connection: sqlite3.Connection, definition: ImageDefinition) -> None:
    """Store a new definition.

    Raises:
        ResourceNotFoundError: the gallery does not exist.
        AlreadyExistsError: the name, or the identifier, is taken in the gallery.
    """
    require_gallery(connection, definition.gallery)
    taken = connection.execute(
        "SELECT name FROM image_definitions WHERE gallery = ? AND name = ? COLLATE NOCASE",
        (definition.gallery, definition.name),
    ).fetchone()
    if taken is not None:
        same = (
            ""
            if taken["name"] == definition.name
            else f" (as {taken['name']!r}; names differing only in case clash)"
        )
        raise AlreadyExistsError(
            f"image definition {definition.name!r} already exists in gallery {definition.gallery!r}{same}"
        )
    _check_identifier(connection, definition)
    columns = _definition_columns(definition)
    names = ", ".join(columns)
    values = ", ".join(f":{name}" for name in columns)
    connection.execute(f"INSERT INTO image_definitions ({names}) VALUES ({values})", columns)


def _definition(row: sqlite3.Row) -> ImageDefinition:
    return ImageDefinition(
        gallery=row["gallery"],
        name=row["name"],
        identifier=ImageIdentifier(row["publisher"], row["offer"], row["sku"]),
        os_type=to_choice(OsType, row["os_type"], "OS type"),
        os_state=to_choice(OsState, row["os_state"], "OS state"),
        hyper_v_generation=to_choice(HyperVGeneration, row["hyper_v_generation"], "Hyper-V generation"),
        architecture=to_choice(Architecture, row["architecture"], "architecture"),
        recommended_vcpus=ResourceRange(row["vcpus_min"], row["vcpus_max"]),
        recommended_memory_gib=ResourceRange(row["memory_min"], row["memory_max"]),
        end_of_life=text_to_time(row["end_of_life"]),
        description=row["description"],
        provisioning_state=to_choice(ProvisioningState, row["provisioning_state"], "provisioning state"),
        retention_policy=(
            None if row["keep_global"] is None else RetentionPolicy(row["keep_global"], row["home_region"])
        ),
        exclude_end_of_life_from_latest=bool(row["exclude_end_of_life_from_latest"]),
    )


def get_definition(connection: sqlite3.Connection, gallery: str, name: str) -> ImageDefinition:
    """The definition ``name`` of ``gallery``.

    Raises:
        ResourceNotFoundError: no such gallery, or no such definition in it.
    """
    row = connection.execute(
        "SELECT * FROM image_definitions WHERE gallery = ? AND name = ?", (gallery, name)
    ).fetchone()
    if row is None:
        require_gallery(connection, gallery)
        raise _definition_not_found(connection, gallery, name)
    return _definition(row)


def list_definitions(connection: sqlite3.Connection, gallery: str) -> list[ImageDefinition]:
    """The gallery's definitions, sorted by name.

    Raises:
        ResourceNotFoundError: no gallery ``gallery``.
    """
    require_gallery(connection, gallery)
    rows = connection.execute("SELECT * FROM image_definitions WHERE gallery = ? ORDER BY name", (gallery,))
    return [_definition(row) for row in rows]


def update_definition(connection: sqlite3.Connection, definition: ImageDefinition) -> None:
    """Replace every field but the gallery and the name.

    Raises:
        ResourceNotFoundError: no such gallery, or no such definition in it.
        AlreadyExistsError: the new identifier belongs to another definition in the gallery.
    """
    require_definition(connection, definition.gallery, definition.name)
    _check_identifier(connection, definition)
    columns = _definition_columns(definition)
    assignments = ", ".join(f"{name} = :{name}" for name in columns if name not in ("gallery", "name"))
    connection.execute(
        f"UPDATE image_definitions SET {assignments} WHERE gallery = :gallery AND name = :name", columns
    )


def delete_definition(connection: sqlite3.Connection, gallery: str, name: str) -> None:
    """Delete the definition and every role assignment within it.

    Raises:
        ResourceNotFoundError: no such gallery, or no such definition in it.
        PreconditionError: the definition still holds versions.
    """
    require_definition(connection, gallery, name)
    (count,) = connection.execute(
        "SELECT count(*) FROM image_versions WHERE gallery = ? AND image = ?", (gallery, name)
    ).fetchone()
    if count:
        noun = "version" if count == 1 else "versions"
        raise PreconditionError(
            f"image definition {name!r} in gallery {gallery!r} still has {count} {noun}; delete them first"
        )
    delete_assignments_within(connection, ResourceId(gallery, name))
    connection.execute("DELETE FROM image_definitions WHERE gallery = ? AND name = ?", (gallery, name))
