"""The catalog's schema as numbered migrations.

``MIGRATIONS[n]`` turns a schema at version ``n`` into version ``n + 1``; ``PRAGMA
user_version`` records how many have been applied. A migration is never edited once released:
a change to the schema is a new script appended to the tuple, so every catalog in the field
walks the same path to the latest version.

Conventions of the tables:

* enumerations are stored as their ``.value`` (``Linux``, ``Standard_LRS``), so the file reads
  the same as the command line and the API;
* datetimes are ISO 8601 text in UTC with microseconds (``2030-01-01T00:00:00.000000+00:00``),
  which also sorts chronologically;
* booleans are 0/1, and NULL wherever the model says "not set" (a target region that inherits
  the global value, a version whose blob is not yet published);
* version parts are INTEGERs, so ``ORDER BY major, minor, patch`` is numeric (1.0.9 < 1.0.12).

Versions carry a surrogate integer id because several tables hang off them; everything above a
version is keyed by its names.
"""

from __future__ import annotations

from typing import Final

#: Written into the database header (``PRAGMA application_id``): "brep" in ASCII. It tells a
#: blobrep catalog apart from any other SQLite file.
APPLICATION_ID: Final = 0x62726570

_V1: Final = (
    f"PRAGMA application_id = {APPLICATION_ID};\n"
    + """

CREATE TABLE galleries (
    name                TEXT NOT NULL PRIMARY KEY,
    location            TEXT NOT NULL,
    description         TEXT NOT NULL,
    provisioning_state  TEXT NOT NULL,
    created_at          TEXT NOT NULL
);

CREATE TABLE image_definitions (
    gallery             TEXT NOT NULL REFERENCES galleries (name) ON DELETE RESTRICT,
    name                TEXT NOT NULL,
    publisher           TEXT NOT NULL,
    offer               TEXT NOT NULL,
    sku                 TEXT NOT NULL,
    os_type             TEXT NOT NULL,
    os_state            TEXT NOT NULL,
    hyper_v_generation  TEXT NOT NULL,
    architecture        TEXT NOT NULL,
    vcpus_min           INTEGER,
    vcpus_max           INTEGER,
    memory_min          INTEGER,
    memory_max          INTEGER,
    end_of_life         TEXT,
    description         TEXT NOT NULL,
    provisioning_state  TEXT NOT NULL,
    PRIMARY KEY (gallery, name),
    UNIQUE (gallery, publisher, offer, sku)
);

CREATE TABLE image_versions (
    id                  INTEGER PRIMARY KEY,
    gallery             TEXT NOT NULL,
    image               TEXT NOT NULL,
    major               INTEGER NOT NULL,
    minor               INTEGER NOT NULL,
    patch               INTEGER NOT NULL,
    location            TEXT NOT NULL,
    replica_count       INTEGER NOT NULL,
    storage_type        TEXT NOT NULL,
    exclude_from_latest INTEGER NOT NULL,
    end_of_life         TEXT,
    published           TEXT,
    allow_deletion_of_replicated_locations INTEGER NOT NULL,
    provisioning_state  TEXT NOT NULL,
    blob_size           INTEGER,
    blob_digest         TEXT,
    blob_stored_bytes   INTEGER,
    blob_chunks         INTEGER,
    UNIQUE (gallery, image, major, minor, patch),
    FOREIGN KEY (gallery, image) REFERENCES image_definitions (gallery, name) ON DELETE RESTRICT,
    CHECK (
        (blob_size IS NULL AND blob_digest IS NULL AND blob_stored_bytes IS NULL AND blob_chunks IS NULL)
        OR (blob_size IS NOT NULL AND blob_digest IS NOT NULL
            AND blob_stored_bytes IS NOT NULL AND blob_chunks IS NOT NULL)
    )
);

CREATE TABLE target_regions (
    version_id          INTEGER NOT NULL REFERENCES image_versions (id) ON DELETE CASCADE,
    position            INTEGER NOT NULL,
    region              TEXT NOT NULL,
    replica_count       INTEGER,
    storage_type        TEXT,
    exclude_from_latest INTEGER,
    PRIMARY KEY (version_id, position),
    UNIQUE (version_id, region)
);

CREATE TABLE region_status (
    version_id          INTEGER NOT NULL REFERENCES image_versions (id) ON DELETE CASCADE,
    region              TEXT NOT NULL,
    state               TEXT NOT NULL,
    progress            INTEGER NOT NULL,
    completed_replicas  INTEGER NOT NULL,
    target_replicas     INTEGER NOT NULL,
    details             TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    PRIMARY KEY (version_id, region)
);

CREATE TABLE principals (
    name                TEXT NOT NULL PRIMARY KEY,
    type                TEXT NOT NULL
);

CREATE TABLE group_members (
    group_name          TEXT NOT NULL REFERENCES principals (name) ON DELETE CASCADE,
    member              TEXT NOT NULL REFERENCES principals (name) ON DELETE CASCADE,
    PRIMARY KEY (group_name, member)
);
CREATE INDEX group_members_by_member ON group_members (member);

CREATE TABLE role_assignments (
    principal           TEXT NOT NULL REFERENCES principals (name) ON DELETE CASCADE,
    role                TEXT NOT NULL,
    scope               TEXT NOT NULL,
    PRIMARY KEY (principal, role, scope)
);
CREATE INDEX role_assignments_by_scope ON role_assignments (scope);

CREATE TABLE settings (
    key                 TEXT NOT NULL PRIMARY KEY,
    value               TEXT NOT NULL
);
"""
)

# Version 2: the manifest pin and the operations that own non-terminal states.
#
# The pin (exact size and SHA-256 of the manifest every replica must hold) is NULL for
# versions published before it existed: they have no pin, and readers fall back to the
# blob's size and digest. A pin is whole or absent, and only a published blob has one; the
# CHECK keeps a hand-edited row from holding half of one (it passes every older row, whose
# new columns are NULL).
#
# ``operations`` records who runs the operation behind a Creating, Updating or Deleting
# version (``region`` is '') or a region that is Replicating, so that a later process can tell
# a live operation from an abandoned one. ``owner`` is the JSON of a ProcessIdentity; the
# heartbeat is refreshed by the owner while it works. The rows go with their version.
_V2: Final = """
ALTER TABLE image_versions ADD COLUMN manifest_size INTEGER;
ALTER TABLE image_versions ADD COLUMN manifest_sha256 TEXT
    CHECK (
        (manifest_sha256 IS NULL) = (manifest_size IS NULL)
        AND (manifest_size IS NULL OR blob_size IS NOT NULL)
    );

CREATE TABLE operations (
    version_id          INTEGER NOT NULL REFERENCES image_versions (id) ON DELETE CASCADE,
    region              TEXT NOT NULL,
    kind                TEXT NOT NULL,
    owner               TEXT NOT NULL,
    started_at          TEXT NOT NULL,
    heartbeat_at        TEXT NOT NULL,
    PRIMARY KEY (version_id, region)
);
"""

# Version 3: bearer tokens (see :mod:`blobrep.core.tokens`).
#
# A token is found by its public id and checked against the SHA-256 of its secret; neither
# the secret nor the token text is ever stored. Revoking keeps the row, with the time, so
# that listings still show the token and a second revoke changes nothing. The tokens of a
# principal go with it (ON DELETE CASCADE): a principal created later under the same name
# does not inherit them.
_V3: Final = """
CREATE TABLE tokens (
    id                  TEXT NOT NULL PRIMARY KEY,
    principal           TEXT NOT NULL REFERENCES principals (name) ON DELETE CASCADE,
    secret_sha256       TEXT NOT NULL CHECK (length(secret_sha256) = 64),
    created_at          TEXT NOT NULL,
    expires_at          TEXT NOT NULL,
    revoked_at          TEXT
);
CREATE INDEX tokens_by_principal ON tokens (principal);
"""

# Version 4: asynchronous operations (see :mod:`blobrep.core.async_operations`).
#
# What a client polls after a version write that answers before the work is done. Only what
# cannot be derived is kept (who asked for what, on which version, when, and how it ended);
# while it runs its state is judged from the version. The rows outlive their version (a
# deletion's operation must still say Succeeded after the version is gone), so the version is
# named by its resource id, not by a key into image_versions.
_V4: Final = """
CREATE TABLE async_operations (
    id                  TEXT NOT NULL PRIMARY KEY,
    kind                TEXT NOT NULL,
    resource            TEXT NOT NULL,
    principal           TEXT NOT NULL,
    status              TEXT NOT NULL,
    started_at          TEXT NOT NULL,
    ended_at            TEXT,
    percent             INTEGER CHECK (percent IS NULL OR percent BETWEEN 0 AND 100),
    error_code          TEXT,
    error_message       TEXT,
    CHECK ((ended_at IS NULL) = (status = 'InProgress'))
);
CREATE INDEX async_operations_by_resource ON async_operations (resource, status);
"""

# Version 5: which replicas of a region may hold data (see :mod:`blobrep.catalog.region_replicas`).
#
# Per region, the highest replica number anything was ever written to (or is about to be):
# replicas 1..highest are the ones gc, scrub, fsck and removals visit, for every kind of region,
# since an object store cannot be listed for "replica directories". The mark only rises: a
# lowered replica count still leaves data in the replicas above it until they are emptied.
# Seeded from the regional status already recorded, so an existing home keeps seeing its
# replicas: a region has held at most as many replicas as any version completed or aimed at there.
_V5: Final = """
CREATE TABLE region_replicas (
    region              TEXT NOT NULL PRIMARY KEY,
    highest             INTEGER NOT NULL CHECK (highest >= 0)
);
INSERT INTO region_replicas (region, highest)
    SELECT region, max(max(completed_replicas, target_replicas, 0))
    FROM region_status GROUP BY region;
"""

# Version 6: the gallery lifecycle.
#
# * A definition's retention policy: ``keep_global`` newest versions keep their target
#   regions, older ones shrink to ``home_region`` (both NULL: no policy; both set together).
#   ``exclude_end_of_life_from_latest`` makes ``latest`` skip versions past their end of life.
# * A version's ``block_deletion_before_end_of_life`` (its safety profile), what the retention
#   policy last did to it (``retention_at`` and ``retention_details``, with ``retention_shrunk``
#   saying whether it shrank the version or had to leave it as it was), and ``source_id``: the
#   resource id of the version its disk was created from, NULL for a disk published from a file.
# Every existing row gets the defaults: no policy, no guard, nothing done.
_V6: Final = """
ALTER TABLE image_definitions ADD COLUMN keep_global INTEGER CHECK (keep_global IS NULL OR keep_global >= 1);
ALTER TABLE image_definitions ADD COLUMN home_region TEXT
    CHECK ((home_region IS NULL) = (keep_global IS NULL));
ALTER TABLE image_definitions ADD COLUMN exclude_end_of_life_from_latest INTEGER NOT NULL DEFAULT 0;
ALTER TABLE image_versions ADD COLUMN block_deletion_before_end_of_life INTEGER NOT NULL DEFAULT 0;
ALTER TABLE image_versions ADD COLUMN retention_at TEXT;
ALTER TABLE image_versions ADD COLUMN retention_shrunk INTEGER;
ALTER TABLE image_versions ADD COLUMN retention_details TEXT
    CHECK ((retention_at IS NULL) = (retention_details IS NULL)
           AND (retention_at IS NULL) = (retention_shrunk IS NULL));
ALTER TABLE image_versions ADD COLUMN source_id TEXT;
"""

# Version 7: data disks (see :mod:`blobrep.catalog.data_disks`).
#
# A version's OS disk stays in the version row; each data disk is a row of its own, keyed by the
# version and its LUN (0..63), holding what its manifest records (NULL until it is published,
# as for the OS disk) and its manifest pin. Rows go with their version. Every existing version
# has no data disk, so nothing is seeded.
_V7: Final = """
CREATE TABLE data_disks (
    version_id          INTEGER NOT NULL REFERENCES image_versions (id) ON DELETE CASCADE,
    lun                 INTEGER NOT NULL CHECK (lun BETWEEN 0 AND 63),
    blob_size           INTEGER CHECK (blob_size IS NULL OR blob_size >= 0),
    blob_digest         TEXT,
    blob_stored_bytes   INTEGER,
    blob_chunks         INTEGER,
    manifest_size       INTEGER,
    manifest_sha256     TEXT,
    PRIMARY KEY (version_id, lun),
    CHECK ((blob_size IS NULL) = (blob_digest IS NULL)
           AND (blob_size IS NULL) = (blob_stored_bytes IS NULL)
           AND (blob_size IS NULL) = (blob_chunks IS NULL)),
    CHECK ((manifest_size IS NULL) = (manifest_sha256 IS NULL))
);
"""

# Version 8: what a retention shrink removed.
#
# ``retention_previous`` holds the target regions a version had before the retention policy
# shrank it, as a JSON list of ``{"name", "replicaCount", "storageType", "excludeFromLatest"}``
# (null where the target took the global value), so that the policy can grow the version back
# when it is kept global again. NULL for every other mark, and for every existing row: a version
# shrunk before this version of the schema is not grown back by itself.
_V8: Final = """
ALTER TABLE image_versions ADD COLUMN retention_previous TEXT
    CHECK (retention_previous IS NULL OR retention_at IS NOT NULL);
"""

#: Every migration, oldest first; ``len(MIGRATIONS)`` is the schema version this code writes.
MIGRATIONS: Final[tuple[str, ...]] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8)

SCHEMA_VERSION: Final = len(MIGRATIONS)
