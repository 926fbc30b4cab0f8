"""Regions: listing, showing and adding them, and whether their storage can be reached.

A region is a local directory or a prefix of an S3 bucket or Azure container
(:mod:`blobrep.service.region_config`). Adding one proves it usable first: a local directory
must be its own (never another region's, never holding the home), an object region's bucket
must exist and take these credentials. ``show`` and ``list`` say whether each region can be
reached now, and why not; the daemon's readiness asks the same.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import anyio
import anyio.to_thread

from blobrep.core.access import Action
from blobrep.core.ids import ResourceId
from blobrep.core.regions import normalize_region
from blobrep.errors import AlreadyExistsError, BlobrepError, InvalidParameterError
from blobrep.service._base import _Base
from blobrep.service.home import LOCAL_KIND, REGIONS_DIR, RegionConfig
from blobrep.service.region_config import object_url, profile_options

#: Seconds a reachability probe of one region may take before the region counts as unreachable.
PROBE_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class RegionInfo:
    """A region as users see it: names, where its replicas live, how many, and if it answers."""

    name: str
    display_name: str
    kind: str
    path: Path | None
    """The directory of a local region; None for an object region."""
    replicas: int
    """Replicas the catalog knows may hold data in the region."""
    url: str | None = None
    """``s3://bucket/prefix`` or ``az://container/prefix`` of an object region."""
    profile: str | None = None
    """The ``[profiles.NAME]`` an object region uses; None: the environment's credentials."""
    problem: str | None = None
    """Why the region's storage cannot be reached now; None if it can (or was not probed)."""
    probed: bool = False

    @property
    def reachable(self) -> bool | None:
        """True or False once probed; None if not asked."""
        return None if not self.probed else self.problem is None


class _Regions(_Base):
    async def _region_info(self, region: RegionConfig, *, probe: bool = True) -> RegionInfo:
        numbers = await self._replica_numbers(region)
        problem = await _problem(region) if probe else None
        return RegionInfo(
            region.name,
            region.display_name,
            region.kind,
            region.path,
            len(numbers),
            None if region.url is None else str(region.url),
            region.profile,
            problem,
            probe,
        )

    async def list_regions(self, caller: str) -> list[RegionInfo]:
        """Every region of the home, each probed (at once); any known principal may list them."""
        await self._authorizer(caller)
        regions = list((await self._regions()).values())
        found: list[RegionInfo | None] = [None] * len(regions)

        async def one(index: int, region: RegionConfig) -> None:
            found[index] = await self._region_info(region)

        async with anyio.create_task_group() as group:
            for index, region in enumerate(regions):
                group.start_soon(one, index, region)
        return [info for info in found if info is not None]

    async def show_region(self, caller: str, name: str) -> RegionInfo:
        await self._authorizer(caller)
        return await self._region_info(await self._region(normalize_region(name)))

    async def unready_regions(self) -> dict[str, str]:
        """Each region whose storage cannot be reached now, with why; empty when all can.

        What a daemon's readiness reports: no caller, since it names regions and places only.
        A local region is reachable when its directory, or the nearest directory above it that
        exists, is a directory this process may write; an object region when its bucket or
        container answers a listing with its credentials.
        """
        problems: dict[str, str] = {}

        async def one(region: RegionConfig) -> None:
            problem = await _problem(region)
            if problem is not None:
                problems[region.name] = problem

        async with anyio.create_task_group() as group:
            for region in (await self._regions()).values():
                group.start_soon(one, region)
        return dict(sorted(problems.items()))

    async def add_region(
        self,
        caller: str,
        name: str,
        *,
        path: str | Path | None = None,
        url: str | None = None,
        profile: str | None = None,
    ) -> RegionInfo:
        """Add a region (Contributor at ``/``); ``name`` may be a display name.

        With ``url`` (``s3://bucket/prefix`` or ``az://container/prefix``) the region is on
        that object store, reached with the standard environment variables or ``profile`` (a
        ``[profiles.NAME]`` table of ``blobrep.toml``); the bucket must exist and answer with
        those credentials, or nothing is added. Otherwise it is a local directory, ``path`` or
        one in the home. A region's storage must be its own: removing a region from a
        version's targets deletes its replicas, which must never be another region's data
        or the home's.

        Raises:
            AlreadyExistsError: the region exists.
            InvalidParameterError: both ``path`` and ``url``; ``profile`` without ``url`` or
                unknown; ``path`` empty or not a directory; ``url`` malformed; the storage is,
                contains or lies inside another region's (the message names both).
            StorageError: the object store cannot be reached, refuses the credentials, or
                has no such bucket or container (its subclasses say which).
        """
        await self._check(caller, Action.WRITE, ResourceId.home())
        short = normalize_region(name)
        display = " ".join(name.split()) if short != name.strip() else short
        regions = await self._regions()
        if short in regions:
            raise AlreadyExistsError(f"region {short!r} already exists (at {regions[short].location})")
        if url is not None:
            if path is not None:
                raise InvalidParameterError(
                    f"cannot add region {short!r} with both a path and a url: a region is a local"
                    " directory or an object-store prefix; give one"
                )
            region = await self._object_region(short, display, url, profile)
        else:
            if profile is not None:
                raise InvalidParameterError(
                    f"cannot add region {short!r}: a profile is for an s3 or azure region; give --url too"
                )
            region = self._local_region(short, display, path)
        regions[short] = region
        problem = await anyio.to_thread.run_sync(self._home.storage_problem, regions)
        if problem is not None:
            raise InvalidParameterError(f"cannot add region {short!r}: {problem}")
        if region.url is not None:
            await region.probe_store().check()
        await anyio.to_thread.run_sync(self._home.save_regions, regions)
        return await self._region_info(region)

    def _local_region(self, short: str, display: str, path: str | Path | None) -> RegionConfig:
        if path is not None and not str(path).strip():
            # Path("") is Path("."): an empty value (a variable expanded to nothing) would
            # quietly put the region in whatever directory the command ran in.
            raise InvalidParameterError(
                f"cannot add region {short!r}: its path is empty; give a directory of its own, or"
                f" leave the path out to keep its replicas in {self._home.root / REGIONS_DIR / short}"
            )
        where = (Path(path) if path is not None else self._home.root / REGIONS_DIR / short).absolute()
        return RegionConfig(short, display, LOCAL_KIND, where)

    async def _object_region(self, short: str, display: str, url: str, profile: str | None) -> RegionConfig:
        where = f"region {short!r}"
        kind = "s3" if url.strip().lower().startswith("s3://") else "azure"
        parsed = object_url(url.strip(), kind, where)
        if profile is None:
            return RegionConfig(short, display, kind, None, parsed)
        profiles = await anyio.to_thread.run_sync(self._home.profiles)
        if profile not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise InvalidParameterError(
                f"cannot add {where}: profile {profile!r} is not a [profiles.NAME] table of"
                f" {self._home.config_path} (profiles: {known})"
            )
        options = profile_options(profiles[profile], kind, profile)
        return RegionConfig(short, display, kind, None, parsed, profile, options)


async def _problem(region: RegionConfig) -> str | None:
    """Why ``region``'s storage cannot be reached now, or None."""
    if region.path is not None:
        return await anyio.to_thread.run_sync(_local_problem, region.path)
    with anyio.move_on_after(PROBE_TIMEOUT_S) as scope:
        try:
            await region.probe_store().check()
        except BlobrepError as exc:
            return str(exc)
    if scope.cancelled_caught:
        return f"{region.location} did not answer within {PROBE_TIMEOUT_S:g} s"
    return None


def _local_problem(path: Path) -> str | None:
    """Blocking part of :func:`_problem` for a local region."""
    place = next((above for above in (path, *path.parents) if above.exists()), None)
    if place is None or not place.is_dir():
        return f"{path}: {place} above it is not a directory"
    if not os.access(place, os.W_OK | os.X_OK):
        return f"{path}: {place} is not writable by this process"
    return None
