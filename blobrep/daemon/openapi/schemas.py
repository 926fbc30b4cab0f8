"""The schemas of ``/openapi.json``: what the daemon answers and what it reads.

Resources are what :mod:`blobrep.daemon.arm` and :mod:`blobrep.daemon.sharing` answer: ARM's
envelope ``{id, name, type, location, properties}`` with the service's views
(:mod:`blobrep.service.views`) under ``properties``. Request bodies are what
:mod:`blobrep.daemon.bodies` and :mod:`blobrep.daemon.version_bodies` accept: a field may be null
wherever the daemon reads null as "not given", and every object the daemon checks for unknown
fields is closed (``additionalProperties: false``), so a typo is a 400 on both sides of the
contract. Enumerations list the values the daemon prints; where it reads one it takes any letter
case.
"""

from __future__ import annotations

from typing import Final

from blobrep.core.access import PrincipalType, Role
from blobrep.core.async_operations import AsyncStatus
from blobrep.core.gallery import (
    AggregatedState,
    Architecture,
    HyperVGeneration,
    OsState,
    OsType,
    ProvisioningState,
    ReplicationState,
    StorageType,
)
from blobrep.daemon import arm, sharing
from blobrep.daemon.openapi.shapes import COUNT, JSON, STRING, WHEN, arm_resource, choice, closed, nullable

#: Read-only fields a client may send back from a GET: accepted, of any type, and ignored.
IGNORED: Final[JSON] = {"description": "Read-only: accepted (so a GET's body can be sent back) and ignored."}


def _range() -> JSON:
    limit = {"type": ["integer", "null"], "minimum": 1}
    return closed({"min": limit, "max": limit}, "min", "max")


_TARGET: Final = closed(
    {
        "name": STRING,
        "regionalReplicaCount": COUNT,
        "storageAccountType": choice(StorageType),
        "excludeFromLatest": {"type": "boolean"},
    },
    "name",
    "regionalReplicaCount",
    "storageAccountType",
    "excludeFromLatest",
)
_REPLICATION: Final = closed(
    {
        "aggregatedState": choice(AggregatedState),
        "summary": {
            "type": "array",
            "items": closed(
                {
                    "region": STRING,
                    "state": choice(ReplicationState),
                    "progress": {"type": "integer", "minimum": 0, "maximum": 100},
                    "replicas": closed({"completed": COUNT, "target": COUNT}, "completed", "target"),
                    "details": STRING,
                },
                "region",
                "state",
                "progress",
                "replicas",
                "details",
            ),
        },
    },
    "aggregatedState",
    "summary",
)
_RETENTION_POLICY: Final = closed(
    {"keepGlobal": {"type": "integer", "minimum": 1}, "homeRegion": STRING}, "keepGlobal", "homeRegion"
)
_SOURCE: Final = closed({"id": STRING}, "id")
_FIGURES: Final[JSON] = {"sizeInBytes": COUNT, "digest": STRING, "storedBytes": COUNT, "chunks": COUNT}
_DATA_DISKS: Final[JSON] = {
    "type": "array",
    "items": closed({"lun": {"type": "integer", "minimum": 0, "maximum": 63}, **_FIGURES}, "lun"),
    "description": "The version's data disks by LUN (0..63), each a blob of its own.",
}
_VERSION_PROPERTIES: Final = closed(
    {
        "publishingProfile": closed(
            {
                "targetRegions": {"type": "array", "items": _TARGET},
                "replicaCount": COUNT,
                "storageAccountType": choice(StorageType),
                "excludeFromLatest": {"type": "boolean"},
                "endOfLifeDate": WHEN,
                "publishedDate": WHEN,
            },
            "targetRegions",
            "replicaCount",
            "storageAccountType",
            "excludeFromLatest",
            "endOfLifeDate",
            "publishedDate",
        ),
        "safetyProfile": closed(
            {
                "allowDeletionOfReplicatedLocations": {"type": "boolean"},
                "blockDeletionBeforeEndOfLife": {"type": "boolean"},
            },
            "allowDeletionOfReplicatedLocations",
            "blockDeletionBeforeEndOfLife",
        ),
        "storageProfile": nullable(
            {
                "anyOf": [
                    closed(
                        {
                            **_FIGURES,
                            "osDiskImage": closed(_FIGURES, *_FIGURES),
                            "dataDiskImages": _DATA_DISKS,
                            "source": _SOURCE,
                        },
                        "sizeInBytes",
                        "digest",
                        "storedBytes",
                        "chunks",
                    ),
                    closed({"source": _SOURCE, "dataDiskImages": _DATA_DISKS}, "source"),
                    closed({"dataDiskImages": _DATA_DISKS}, "dataDiskImages"),
                ],
                "description": "The published disks: the OS disk (`osDiskImage`, and the flat figures"
                " clients before data disks read) and each data disk by LUN (`dataDiskImages`, the LUN"
                " alone until it is published); `source.id` names the version it was copied from.",
            }
        ),
        "provisioningState": choice(ProvisioningState),
        "retention": nullable(
            {
                **closed(
                    {"shrunk": {"type": "boolean"}, "date": WHEN, "details": STRING},
                    "shrunk",
                    "date",
                    "details",
                ),
                "description": "What the retention policy last did to the version (null: nothing).",
            }
        ),
        "replicationStatus": _REPLICATION,
    },
    "publishingProfile",
    "safetyProfile",
    "storageProfile",
    "provisioningState",
    "retention",
)

#: What the daemon answers.
RESOURCES: Final[JSON] = {
    "Error": closed({"error": closed({"code": STRING, "message": STRING}, "code", "message")}, "error"),
    "Gallery": arm_resource(
        arm.TYPES["gallery"],
        closed(
            {"description": STRING, "provisioningState": choice(ProvisioningState)},
            "description",
            "provisioningState",
        ),
    ),
    "ImageDefinition": arm_resource(
        arm.TYPES["imageDefinition"],
        closed(
            {
                "identifier": closed(
                    {"publisher": STRING, "offer": STRING, "sku": STRING}, "publisher", "offer", "sku"
                ),
                "osType": choice(OsType),
                "osState": choice(OsState),
                "hyperVGeneration": choice(HyperVGeneration),
                "architecture": choice(Architecture),
                "recommended": closed({"vCPUs": _range(), "memory": _range()}, "vCPUs", "memory"),
                "endOfLifeDate": WHEN,
                "excludeEndOfLifeFromLatest": {"type": "boolean"},
                "retentionPolicy": nullable(_RETENTION_POLICY),
                "description": STRING,
                "provisioningState": choice(ProvisioningState),
            },
            "identifier",
            "osType",
            "osState",
            "hyperVGeneration",
            "architecture",
            "recommended",
            "endOfLifeDate",
            "excludeEndOfLifeFromLatest",
            "retentionPolicy",
            "description",
            "provisioningState",
        ),
        location={"type": ["string", "null"], "description": "Null: a definition is where its gallery is."},
    ),
    "ImageVersion": {
        **arm_resource(arm.TYPES["imageVersion"], _VERSION_PROPERTIES),
        "description": (
            "`properties.replicationStatus` only with `$expand=ReplicationStatus` (always on writes)."
        ),
    },
    "Operation": closed(
        {
            "id": STRING,
            "name": STRING,
            "status": choice(AsyncStatus),
            "percentComplete": {"type": "integer", "minimum": 0, "maximum": 100},
            "startTime": {"type": "string", "format": "date-time"},
            "endTime": WHEN,
            "error": nullable(closed({"code": STRING, "message": STRING}, "code", "message")),
        },
        "id",
        "name",
        "status",
        "percentComplete",
        "startTime",
        "endTime",
        "error",
    ),
    "Principal": arm_resource(
        sharing.PRINCIPAL_TYPE,
        closed({"principalType": choice(PrincipalType)}, "principalType"),
        location=None,
    ),
    "Member": arm_resource(
        sharing.MEMBER_TYPE,
        closed({"groupName": STRING, "principalName": STRING}, "groupName", "principalName"),
        location=None,
    ),
    "RoleAssignment": arm_resource(
        sharing.ASSIGNMENT_TYPE,
        closed(
            {"principalName": STRING, "roleDefinitionName": choice(Role), "scope": STRING},
            "principalName",
            "roleDefinitionName",
            "scope",
        ),
        location=None,
    ),
}

_TEXT: Final = nullable(STRING)
_WHOLE: Final = {"type": ["integer", "null"]}
_FLAG: Final = {"type": ["boolean", "null"]}
_LIMITS: Final = nullable(closed({"min": _WHOLE, "max": _WHOLE}))
_SHOWN: Final = dict.fromkeys(("sizeInBytes", "digest", "storedBytes", "chunks"), IGNORED)
_VERSION_BODY_PROPERTIES: Final = closed(
    {
        "publishingProfile": nullable(
            closed(
                {
                    "targetRegions": nullable(
                        {
                            "type": "array",
                            "items": closed(
                                {
                                    "name": {"type": "string", "pattern": "^[^=]+$"},
                                    "regionalReplicaCount": _WHOLE,
                                    "storageAccountType": _TEXT,
                                    "excludeFromLatest": _FLAG,
                                },
                                "name",
                            ),
                        }
                    ),
                    "replicaCount": _WHOLE,
                    "storageAccountType": _TEXT,
                    "excludeFromLatest": _FLAG,
                    "endOfLifeDate": _TEXT,
                    "publishedDate": IGNORED,
                }
            )
        ),
        "safetyProfile": nullable(
            closed({"allowDeletionOfReplicatedLocations": _FLAG, "blockDeletionBeforeEndOfLife": _FLAG})
        ),
        "storageProfile": nullable(
            closed(
                {
                    "osDiskImage": nullable(
                        closed(
                            {
                                "source": nullable(
                                    closed(
                                        {"uri": {**_TEXT, "description": "This version's `/content` route."}}
                                    )
                                )
                            }
                        )
                    ),
                    "source": nullable(
                        closed(
                            {
                                "id": {
                                    **_TEXT,
                                    "description": "A version whose disk a new version takes"
                                    " (`/galleries/G/images/I/versions/X.Y.Z`); fixed once created.",
                                }
                            }
                        )
                    ),
                    "dataDiskImages": nullable(
                        {
                            "type": "array",
                            "description": "The data disks a new version waits for, by LUN (each"
                            " uploaded to `.../dataDisks/{lun}/content`); fixed once created.",
                            "items": closed(
                                {"lun": {"type": "integer", "minimum": 0, "maximum": 63}, **_SHOWN}, "lun"
                            ),
                        }
                    ),
                    **_SHOWN,
                }
            )
        ),
        "provisioningState": IGNORED,
        "replicationStatus": IGNORED,
        "retention": IGNORED,
    }
)

#: What the daemon reads (JSON bodies of at most 64 KiB; an empty body is ``{}``).
BODIES: Final[JSON] = {
    "GalleryBody": closed(
        {
            "location": {**_TEXT, "description": "Fixed at creation."},
            "properties": nullable(closed({"description": _TEXT})),
        }
    ),
    "GalleryPatch": closed({"properties": nullable(closed({"description": _TEXT}))}),
    "ImageDefinitionBody": closed(
        {
            "location": {"description": "Ignored: a definition is in its gallery's location."},
            "properties": nullable(
                closed(
                    {
                        "identifier": nullable(closed({"publisher": _TEXT, "offer": _TEXT, "sku": _TEXT})),
                        "osType": nullable(choice(OsType)),
                        "osState": nullable(choice(OsState)),
                        "hyperVGeneration": nullable(choice(HyperVGeneration)),
                        "architecture": nullable(choice(Architecture)),
                        "recommended": nullable(closed({"vCPUs": _LIMITS, "memory": _LIMITS})),
                        "endOfLifeDate": _TEXT,
                        "excludeEndOfLifeFromLatest": _FLAG,
                        "retentionPolicy": {
                            **nullable(
                                closed({"keepGlobal": _WHOLE, "homeRegion": _TEXT}),
                            ),
                            "description": "Null removes the policy; absent leaves it as it is.",
                        },
                        "description": _TEXT,
                    }
                )
            ),
        }
    ),
    "ImageVersionBody": closed(
        {
            "location": {
                **_TEXT,
                "description": "The source region (the gallery's by default); fixed at creation.",
            },
            "properties": nullable(_VERSION_BODY_PROPERTIES),
            **dict.fromkeys(("id", "name", "type"), IGNORED),
        }
    ),
    "PrincipalBody": closed(
        {"properties": closed({"principalType": choice(PrincipalType)}, "principalType")}, "properties"
    ),
    "MemberBody": closed({"properties": nullable({"type": "object", "maxProperties": 0})}),
    "RoleAssignmentBody": closed(
        {
            "properties": closed(
                {
                    "principalName": STRING,
                    "roleDefinitionName": choice(Role),
                    "scope": {"type": "string", "examples": ["/", "/galleries/gallery1"]},
                },
                "principalName",
                "roleDefinitionName",
                "scope",
            )
        },
        "properties",
    ),
}
