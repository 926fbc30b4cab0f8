"""Paths of ``/openapi.json``: image versions, their disks (upload and read) and long-running operations."""

from __future__ import annotations

from typing import Final

from blobrep.daemon.openapi.shapes import (
    DELETES,
    JSON,
    WRITES,
    answer,
    failures,
    listing,
    operation,
    ref,
)

UPLOAD_FLOW: Final = """Creating a version over HTTP takes two requests:

1. `PUT /galleries/{gallery}/images/{image}/versions/{version}` with the version's description
   (publishing and safety profiles; `storageProfile.osDiskImage.source.uri` may name the
   version's `/content` route, nothing else) answers `201` at once with `provisioningState:
   Creating`; `Azure-AsyncOperation` names the operation to poll, which succeeds once the disk is
   published and every target region is `Completed`.
2. `PUT /galleries/{gallery}/images/{image}/versions/{version}/content` with the disk as the raw
   body (`application/octet-stream`, any size) streams it into the publish pipeline as it arrives,
   and answers `200` with the version once the disk is published. A body that ends short of its
   `Content-Length`, or a client that goes away, leaves the version `Failed` with no blob; the
   same two requests redo it, reusing the chunks already written.
3. A version described with `storageProfile.dataDiskImages: [{"lun": 0}, ...]` waits for those
   data disks too: each is uploaded the same way to `.../versions/{version}/dataDisks/{lun}/content`,
   one at a time. Its source region is `Completed` once the last disk arrived; until then its
   details name the disks still awaited. A disk uploaded twice, or a LUN not described, is refused."""

COPY_FLOW: Final = """A body naming another version in `storageProfile.source.id`
(`/galleries/G/images/I/versions/X.Y.Z`, in this gallery or another one the caller can read)
creates the version from that version's disk, which must be `Completed` in the new version's
source region: `201` once it is recorded, the copy running on (in the same gallery nothing but
the manifest is written; from another gallery each chunk is copied once, verified as it is
read). The operation succeeds once every target region is `Completed`."""

_VERSION: Final = ("gallery", "image", "version")
#: A version named by its number alone: the writes, which never resolve ``latest``.
_NUMBERED: Final = ("gallery", "image", "versionNumber")
_POLLED: Final = ("Azure-AsyncOperation", "Retry-After")
_ACCEPTED: Final = ("Location", *_POLLED)
_CONTENT_HEADERS: Final = frozenset({"ETag", "Accept-Ranges"})
_RANGED: Final = ("range", "ifNoneMatch", "ifRange", "location")
_READ_DESCRIPTION: Final = (
    "`{version}` may be `latest` (resolved in the region). The body streams through the version's"
    " shared reader, every chunk verified, failing over between replicas. `ETag` is the quoted"
    " whole-disk digest; one `Range` gets `206`; several ranges, a malformed one, or `If-Range`"
    " naming another tag get the whole disk. The version must be Completed in the region (409"
    " otherwise)."
)


def versions() -> JSON:
    """The version paths: the list, one version, and its disk."""
    return {
        "/galleries/{gallery}/images/{image}/versions": {
            "get": listing(
                "GalleryImageVersions_List",
                "Image versions",
                "ImageVersion",
                "Image versions",
                "gallery",
                "image",
                "expand",
                extra=failures(404),
            ),
        },
        "/galleries/{gallery}/images/{image}/versions/{version}": _version(),
        "/galleries/{gallery}/images/{image}/versions/{version}/content": _content(),
        "/galleries/{gallery}/images/{image}/versions/{version}/dataDisks/{lun}/content": _content(lun=True),
    }


def _version() -> JSON:
    return {
        "get": operation(
            "GalleryImageVersions_Get",
            "Show an image version",
            {"200": answer("The image version.", ref("ImageVersion")), **failures(400, 404, 409)},
            tag="Image versions",
            parameters=(*_VERSION, "expand", "location"),
            description="`latest`: the newest version not excluded from latest (in `location` if given).",
        ),
        "put": operation(
            "GalleryImageVersions_CreateOrUpdate",
            "Describe a new version (which then waits for its disk), or update one",
            {
                "200": answer(
                    "The version was updated; `Azure-AsyncOperation` follows the replication.",
                    ref("ImageVersion"),
                    *_POLLED,
                ),
                "201": answer(
                    "The version is Creating and waits for its disk (PUT .../content), or copies"
                    " the disk of the version `storageProfile.source.id` names.",
                    ref("ImageVersion"),
                    *_POLLED,
                ),
                **failures(*WRITES, 409),
            },
            tag="Image versions",
            parameters=("gallery", "image", "versionNumber", "createOnly"),
            body="ImageVersionBody",
            description=UPLOAD_FLOW
            + "\n\n"
            + COPY_FLOW
            + "\n\nOn a version that exists, PUT updates its publishing and safety profiles (`200`).",
        ),
        "patch": operation(
            "GalleryImageVersions_Update",
            "Update a version's publishing and safety profiles",
            {
                "202": answer(
                    "Accepted; `Location` names the result to poll.", ref("ImageVersion"), *_ACCEPTED
                ),
                **failures(*WRITES, 409),
            },
            tag="Image versions",
            parameters=_NUMBERED,
            body="ImageVersionBody",
            description="A version's location cannot change: leave `location` out. The version is"
            " named by its number: `latest` is a 400 here, as it moves.",
        ),
        "delete": operation(
            "GalleryImageVersions_Delete",
            "Delete a version from every replica",
            {
                "202": answer(
                    "Accepted; `Location` names the result to poll (204 once done).",
                    {"type": "null"},
                    *_ACCEPTED,
                ),
                **failures(*DELETES),
            },
            tag="Image versions",
            parameters=_NUMBERED,
            description="The version is named by its number: `latest` is a 400 here, as it moves.",
        ),
    }


def _content(*, lun: bool = False) -> JSON:
    """The OS disk's route, or (``lun``) a data disk's: read alike, uploaded alike."""
    disk, name, path = ("data disk", "DataDisk", ("lun",)) if lun else ("OS disk", "", ())
    return {
        "get": operation(
            f"GalleryImageVersions_Read{name}",
            f"Read a version's {disk}",
            _disk(head=False),
            tag="Content",
            parameters=(*_VERSION, *path, *_RANGED),
            description=_READ_DESCRIPTION,
        ),
        "head": operation(
            f"GalleryImageVersions_Head{name}",
            "What GET would answer, without the body",
            _disk(head=True),
            tag="Content",
            parameters=(*_VERSION, *path, *_RANGED),
        ),
        "put": {
            **operation(
                f"GalleryImageVersions_Upload{name}",
                f"Upload the {disk} of a version waiting for it",
                {
                    "200": answer(
                        "The disk is published; the version, replicating to its targets.",
                        ref("ImageVersion"),
                        "x-blobrep-new-chunks",
                        "x-blobrep-written-bytes",
                    ),
                    **failures(*WRITES, 409, 415),
                },
                tag="Content",
                parameters=("gallery", "image", "versionNumber", *path, "contentDigest"),
                description=UPLOAD_FLOW,
            ),
            "requestBody": {
                "description": "The disk's bytes, of any length (none is an empty disk).",
                "required": False,
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            },
        },
    }


def _disk(head: bool) -> JSON:
    """The answers of a read of the disk (without bodies for ``HEAD``)."""

    def read(description: str, *headers: str) -> JSON:
        response = answer(description, None, *sorted({*_CONTENT_HEADERS, *headers}))
        if not head:
            response["content"] = {"application/octet-stream": {}}
        return response

    unsatisfiable = answer(
        "RangeNotSatisfiable: the range asks for no byte of the disk.",
        None if head else ref("Error"),
        "Content-Range",
    )
    return {
        "200": read("The whole disk.", "Content-Length"),
        "206": read("The one range asked for.", "Content-Length", "Content-Range"),
        "304": answer("`If-None-Match` names the disk's tag.", None, *sorted(_CONTENT_HEADERS)),
        "416": unsatisfiable,
        **failures(400, 404, 409, body=not head),
    }


def operations() -> JSON:
    running = answer(
        "Still running: poll again after `Retry-After`.",
        ref("Operation"),
        "Location",
        "Azure-AsyncOperation",
        "Retry-After",
    )
    return {
        "/operations/{operation}": {
            "get": operation(
                "Operations_Get",
                "Where a long-running operation stands",
                {"200": answer("The operation.", ref("Operation")), **failures(404)},
                tag="Operations",
                parameters=("operation",),
            ),
        },
        "/operations/{operation}/result": {
            "get": operation(
                "Operations_GetResult",
                "The result of a long-running operation",
                {
                    "200": answer("Succeeded: the version as it is now.", ref("ImageVersion")),
                    "202": running,
                    "204": answer("Succeeded: the version was deleted."),
                    **failures(404),
                    "409": answer("The operation failed: its error.", ref("Error")),
                },
                tag="Operations",
                parameters=("operation",),
            ),
        },
    }
