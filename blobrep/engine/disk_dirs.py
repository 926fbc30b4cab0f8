"""Where a deployment writes its disk, and the directories it makes for it.

A disk placed below the output directory (``D/web1/osdisk.img``, see
:mod:`blobrep.core.vm_names`) needs its directory first. The deployment makes the missing
ones itself, so that each instance of a scale set succeeds or fails on its own, and when it
fails it removes again what it made and left empty: a failed deployment leaves nothing
behind, as a failed write of a disk file leaves nothing.

:func:`vm_disk_file` is that for one VM, whether it is read here (the service) or from a
daemon (the client): the two write the same file for the same options.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from blobrep.core.disks import version_disks
from blobrep.core.vm_names import data_disk, lun_of_data_disk, os_disk, validate_vm_name
from blobrep.errors import InvalidInputError, InvalidParameterError
from blobrep.storage.files import file_error

if TYPE_CHECKING:
    from blobrep.core.disks import VersionDisk
    from blobrep.core.gallery import GalleryImageVersion
    from blobrep.engine.deploy import DeploymentResult
    from blobrep.engine.publish import ProgressCallback


@asynccontextmanager
async def vm_disk_file(
    *, output: Path | None, output_dir: Path | None, name: str, data_disks: Collection[int] = ()
) -> AsyncIterator[Path | None]:
    """The disk file of the VM ``name``, for the block: ``output`` itself, or
    ``output_dir/{name}/osdisk.img`` with its directory made (and removed again if the block
    fails and leaves it empty); None, to read and discard, when neither is given.

    The VM's directory then holds the disks of the version deployed, its data disks at the
    LUNs ``data_disks`` and no others: a data disk left there by an earlier version is removed
    once the block succeeds (see :func:`directories_for`).

    Raises:
        InvalidNameError: ``name`` cannot name a VM.
        InvalidParameterError: both ``output`` and ``output_dir`` are given.
        InvalidInputError: ``output_dir`` is not a directory, or the VM's path in it is
            something else than a directory.
        StorageError, StorageFullError: the VM's directory cannot be made.
    """
    validate_vm_name(name)
    if output is not None and output_dir is not None:
        raise InvalidParameterError(
            f"give an output file ({output}) or an output directory ({output_dir}), not both"
        )
    if output_dir is None:
        yield output
        return
    if not await anyio.to_thread.run_sync(os.path.isdir, output_dir):
        raise InvalidInputError(f"output directory {output_dir} does not exist or is not a directory")
    disk = place(output_dir, os_disk(name))
    async with directories_for(output_dir, disk, data_disks=data_disks):
        yield disk


def place(output_dir: Path, relative: str) -> Path:
    """``output_dir / relative``, for a ``relative`` path that stays below ``output_dir``.

    Raises:
        InvalidParameterError: ``relative`` is empty, absolute, holds ``.`` or ``..`` parts or
            a NUL: it would not name a file inside ``output_dir``.
    """
    path = PurePosixPath(relative)
    if (
        not relative
        or "\0" in relative
        or path.is_absolute()
        or any(part in (".", "..") for part in relative.split("/"))
    ):
        raise InvalidParameterError(
            f"{relative!r} does not name a file inside the output directory {output_dir}"
        )
    return output_dir.joinpath(*path.parts)


@asynccontextmanager
async def directories_for(
    output_dir: Path, disk: Path, *, data_disks: Collection[int] = ()
) -> AsyncIterator[None]:
    """Make the directories between ``output_dir`` (which must exist) and ``disk`` that are
    missing, for the block; if the block fails, remove the ones made here that it left empty.

    ``disk`` below a directory of its own is a VM's OS disk in the VM's directory: once the
    block succeeds, every ``lun{N}.img`` there whose LUN is not among ``data_disks`` is
    removed, so that deploying a version over a VM deployed before never leaves it with a data
    disk of the older version. (A disk directly in ``output_dir`` is a file the user named,
    and nothing beside it is touched.)

    Raises:
        InvalidInputError: one of them exists and is not a directory.
        StorageError, StorageFullError: one cannot be made (naming ``disk`` and the cause),
            or an older data disk cannot be removed.
    """
    if disk.parent == output_dir:
        yield  # nothing to make (a disk file directly in the output directory)
        return
    made = await anyio.to_thread.run_sync(_make, output_dir, disk)
    try:
        yield
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_remove_empty, made)
        raise
    await anyio.to_thread.run_sync(_remove_older_data_disks, disk.parent, frozenset(data_disks))


def _make(output_dir: Path, disk: Path) -> list[Path]:
    made: list[Path] = []
    current = output_dir
    try:
        for part in disk.parent.relative_to(output_dir).parts:
            current = current / part
            try:
                os.mkdir(current)
            except FileExistsError:
                if not os.path.isdir(current):
                    raise InvalidInputError(
                        f"cannot write {disk}: {current} exists and is not a directory"
                    ) from None
                continue
            except OSError as exc:
                raise file_error(exc, disk) from exc
            made.append(current)
    except BaseException:
        _remove_empty(made)
        raise
    return made


def _remove_older_data_disks(directory: Path, keep: frozenset[int]) -> None:
    """Remove each data disk file (``lun{N}.img``, N a LUN) in the VM directory ``directory``
    whose LUN is not in ``keep``."""
    try:
        names = os.listdir(directory)
    except OSError as exc:
        raise file_error(exc, directory) from exc
    for name in names:
        lun = lun_of_data_disk(name)
        if lun is None or lun in keep:
            continue
        try:
            os.unlink(directory / name)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise file_error(exc, directory / name) from exc


def _remove_empty(made: list[Path]) -> None:
    """Remove the directories ``made``, deepest first, while they are empty."""
    for directory in reversed(made):
        try:
            os.rmdir(directory)
        except FileNotFoundError:
            continue
        except OSError:
            return  # not empty: what is above it stays too


#: Writes one disk of a VM to a file (None: reads and discards it), reporting bytes done.
DiskWriter = Callable[
    ["VersionDisk", "Path | None", "ProgressCallback | None"], Awaitable["DeploymentResult"]
]


async def write_disks_in_turn(
    version: GalleryImageVersion,
    target: Path | None,
    name: str,
    write: DiskWriter,
    progress: ProgressCallback | None,
) -> DeploymentResult:
    """Write every disk of ``version`` with ``write``, one after the other: the OS disk at
    ``target`` and each data disk beside it (``lun{N}.img`` in ``target``'s directory), or
    read and discard them all (``target`` None).

    The service (reading replicas) and the client (downloading from a daemon) write a VM the
    same way through this: the same files, one progress over every disk, and if a disk fails
    the files of the disks before it are removed before the error goes on, so a VM is written
    whole or not at all. The result is the OS disk's, with the data disks' in ``data_disks``.
    """
    disks = version_disks(version)
    total = sum(disk.info.size for disk in disks if disk.info is not None)
    written: list[Path] = []
    results: list[DeploymentResult] = []
    before = 0
    try:
        for disk in disks:
            path = target
            if target is not None and disk.lun is not None:
                path = target.parent / Path(data_disk(name, disk.lun)).name
            result = await write(disk, path, _offset(progress, before, total))
            before += result.size
            if path is not None:
                written.append(path)
            results.append(dataclasses.replace(result, lun=disk.lun))
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_remove, written)
        raise
    first, *data = results
    return dataclasses.replace(first, data_disks=tuple(data))


def _offset(progress: ProgressCallback | None, before: int, total: int) -> ProgressCallback | None:
    if progress is None:
        return None
    return lambda done, _: progress(before + done, total)


def _remove(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            os.unlink(path)
