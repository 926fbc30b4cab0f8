"""Every disk of a version over HTTP: uploaded one after the other on create, downloaded one
after the other by ``vm create``.

A version with data disks is described with their LUNs, then each disk goes to its own route
(``.../content`` for the OS disk, ``.../dataDisks/{lun}/content`` for a data disk); the daemon
completes the version with the last. A deployment writes the disks where a local one does
(``D/{name}/osdisk.img``, ``D/{name}/lun{N}.img``), each checked against its own digest, and
removes the disk files it wrote if a later disk fails: a VM is deployed whole or not at all.
Progress counts the bytes of every disk, as locally.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from blobrep.client.transfers import download, upload_pieces
from blobrep.core.ids import ResourceId
from blobrep.engine.disk_dirs import write_disks_in_turn

if TYPE_CHECKING:
    from collections.abc import Sequence

    import httpx2

    from blobrep.client.connection import Connection
    from blobrep.core.disks import VersionDisk
    from blobrep.core.gallery import GalleryImageVersion
    from blobrep.engine.deploy import DeploymentResult
    from blobrep.engine.publish import ProgressCallback, PublishProgressCallback
    from blobrep.engine.source import BlobSource


def disk_route(path: str, lun: int | None) -> str:
    """The route of the disk ``lun`` (None: the OS disk) of the version at ``path``."""
    return f"{path}/content" if lun is None else f"{path}/dataDisks/{lun}/content"


@dataclass(frozen=True, slots=True)
class Uploaded:
    """The daemon's answers to the uploads of a version's disks, in order."""

    responses: tuple[httpx2.Response, ...]
    size: int
    """Bytes sent, over every disk."""


async def upload_disks(
    connection: Connection,
    path: str,
    disks: Sequence[tuple[int | None, BlobSource]],
    progress: PublishProgressCallback | None,
) -> Uploaded:
    """Upload each of ``disks`` (LUN None: the OS disk) to its route, one after the other.

    Raises:
        SourceError: a source ended short while it was sent (the daemon leaves the version
            Failed, as a local create that fails).
        What the daemon answers a failed upload with (:mod:`blobrep.client.errors`).
    """
    sizes = [source.size for _, source in disks]
    total = None if any(size is None for size in sizes) else sum(size or 0 for size in sizes)
    responses: list[httpx2.Response] = []
    before = 0
    for lun, source in disks:
        length = {} if source.size is None else {"Content-Length": str(source.size)}
        sent = _Sent(progress, before, total)
        responses.append(
            await connection.send(
                "PUT",
                disk_route(path, lun),
                content=upload_pieces(source, sent.update),
                headers={**length, "Content-Type": "application/octet-stream"},
            )
        )
        before += sent.done
    return Uploaded(tuple(responses), before)


class _Sent:
    """One disk's bytes sent, reported as part of every disk's."""

    def __init__(self, forward: PublishProgressCallback | None, before: int, total: int | None) -> None:
        self._forward, self._before, self._total = forward, before, total
        self.done = 0

    def update(self, done: int, _size: int | None) -> None:
        self.done = done
        if self._forward is not None:
            self._forward(self._before + done, self._total)


async def download_disks(
    connection: Connection,
    version: GalleryImageVersion,
    target: Path | None,
    *,
    name: str,
    location: str | None,
    progress: ProgressCallback | None,
) -> DeploymentResult:
    """Download every disk of ``version``: the OS disk into ``target`` and each data disk
    beside it (``lun{N}.img``), or read and discard them all (``target`` None).

    The result is the OS disk's, with the data disks' in ``data_disks``. If a disk fails, the
    files of the disks before it are removed before the error goes on.

    Raises:
        BlobDigestMismatchError: a disk's bytes do not hash to the digest the daemon named.
        EndpointError: the daemon broke off before a disk's last byte.
    """
    path = str(ResourceId.of_version(version.gallery, version.image, version.version))
    params = None if location is None else {"location": location}

    async def write(
        disk: VersionDisk, output: Path | None, done: ProgressCallback | None
    ) -> DeploymentResult:
        label = "" if disk.lun is None else f" (LUN {disk.lun})"
        async with connection.stream("GET", disk_route(path, disk.lun), params=params) as response:
            return await download(
                response,
                output,
                what=f"deployed {version.gallery}/{version.image}/versions/{version.version}{label}",
                stored_bytes=0 if disk.info is None else disk.info.stored_bytes,
                progress=done,
            )

    return await write_disks_in_turn(version, target, name, write, progress)
