"""The home directory: ``blobrep.toml`` (regions and where their replicas live) and the catalog.

A fresh home works with no configuration: the first use writes ``blobrep.toml`` with a few
default regions, each a local directory under ``{home}/regions/``. A region named R keeps
replica n in ``{path}/replica-{n}``, one independent store per replica, created on demand.

The file is small and read whole; it is rewritten atomically (temp file, fsync, rename), so a
crash leaves the old configuration or the new one. It is plain TOML so that people can edit
it; every value read from it is validated like any other input.

Storage is never shared. Removing a region from a version's targets deletes that region's
replicas, so two regions on one directory (or one inside the other) would let that removal
delete the data the other region serves; a region that contains the home would hold the
catalog. :func:`storage_problem` decides this from paths alone; :class:`Home` resolves symbolic
links first, so a link to another region's directory is seen for what it is.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from blobrep.core.regions import normalize_region
from blobrep.errors import InvalidParameterError, StorageError
from blobrep.service.region_config import (
    LOCAL_KIND,
    RegionConfig,
    parse_config,
    parse_profiles,
    render_config,
)

__all__ = [
    "CATALOG_NAME",
    "CONFIG_NAME",
    "LOCAL_KIND",
    "REGIONS_DIR",
    "Home",
    "Place",
    "RegionConfig",
    "parse_config",
    "object_storage_problem",
    "render_config",
    "storage_problem",
]

CONFIG_NAME: Final = "blobrep.toml"
CATALOG_NAME: Final = "catalog.db"
REGIONS_DIR: Final = "regions"

#: The regions of a fresh home: (display name) -> a local directory region each.
DEFAULT_REGIONS: Final = ("West Central US", "South Central US", "East US 2", "Southeast Asia", "West Europe")


@dataclass(frozen=True, slots=True)
class Place:
    """A path as it was written, and the same path with symbolic links and ``..`` resolved.

    Overlap is decided on ``real``, since two spellings of one directory are one directory;
    messages show ``given`` too, because that is what the user wrote.
    """

    given: Path
    real: Path
    unusable: str | None = None
    """Why this is no directory, if something else is here (``it is a regular file``, ``it is
    a character device``); None for a directory, or for nothing yet (regions are made on
    demand)."""

    def __str__(self) -> str:
        return str(self.given) if self.given == self.real else f"{self.given} (which is {self.real})"


def _relation(path: Path, other: Path) -> str | None:
    """How ``path`` lies relative to ``other`` (both resolved), or None if neither holds the other."""
    if path == other:
        return "is the same directory as"
    if path.is_relative_to(other):
        return "is inside"
    if other.is_relative_to(path):
        return "contains"
    return None


def storage_problem(regions: Mapping[str, Place], home: Place, home_files: Iterable[Place]) -> str | None:
    """Why some region cannot keep its replicas where it is, or None if each has storage of its own.

    Pure: every path comes in resolved (see :class:`Place`). Each region is compared with the
    ones before it in ``regions``, so a region being added goes last and is named first.
    A region's path must be a directory or not exist yet (it is made on demand): a file
    there would fail every write to it later, far from the mistake. A region may not be,
    contain or lie inside another region's directory (removing one would delete the other's
    data), may not contain the home directory (it would hold the catalog), and may not be or
    lie inside one of ``home_files``.
    """
    files = list(home_files)
    seen: list[tuple[str, Place]] = []
    for name, place in regions.items():
        suggestion = f"give {name!r} a directory of its own, for example {home.given / REGIONS_DIR / name}"
        if home.real.is_relative_to(place.real):
            where = "is the home directory" if place.real == home.real else "contains the home directory"
            return (
                f"region {name!r} at {place} {where} {home}, which holds the catalog and the configuration;"
                f" {suggestion}"
            )
        for file in files:
            if place.real.is_relative_to(file.real):
                where = "is" if place.real == file.real else "is inside"
                return f"region {name!r} at {place} {where} the home's file {file}; {suggestion}"
        if place.unusable is not None:
            return (
                f"region {name!r} at {place} is not a directory: {place.unusable}; a region keeps its"
                f" replicas in a directory (made if missing); {suggestion}"
            )
        for other, other_place in seen:
            relation = _relation(place.real, other_place.real)
            if relation is not None:
                return (
                    f"region {name!r} at {place} {relation} region {other!r} at {other_place}: two regions"
                    " never share storage, since removing a version from one would delete the data the"
                    f" other serves; {suggestion}"
                )
        seen.append((name, place))
    return None


def object_storage_problem(regions: Mapping[str, RegionConfig]) -> str | None:
    """Why two object regions would share storage, or None: as with directories, a region's
    prefix may not be, contain or lie inside another's in the same bucket or container of the
    same service (removing one region's replicas would delete the other's data). Regions on
    different profiles or endpoints may be different services, so only the same kind, bucket,
    profile and endpoint are compared. Pure."""
    seen: list[RegionConfig] = []
    for region in regions.values():
        url = region.url
        if url is None:
            continue
        for other in seen:
            there = other.url
            assert there is not None
            same_service = (other.kind, other.profile, other.options.get("endpoint")) == (
                region.kind,
                region.profile,
                region.options.get("endpoint"),
            )
            if not same_service or there.bucket != url.bucket:
                continue
            mine, theirs = f"{url.prefix}/" if url.prefix else "", f"{there.prefix}/" if there.prefix else ""
            if mine.startswith(theirs) or theirs.startswith(mine):
                relation = "is the same place as" if mine == theirs else "overlaps"
                return (
                    f"region {region.name!r} at {url} {relation} region {other.name!r} at {there}: two"
                    " regions never share storage, since removing a version from one would delete the"
                    f" data the other serves; give {region.name!r} a prefix of its own, for example"
                    f" {dataclasses.replace(url, prefix=region.name)}"
                )
        seen.append(region)
    return None


def _place(path: Path) -> Place:
    """``path`` with its symbolic links resolved, as far as it exists (regions are made on
    demand), and what is there if it is not a directory."""
    import stat

    try:
        real = Path(os.path.realpath(path))
    except OSError as exc:
        raise StorageError(f"cannot resolve {path}: {exc.strerror or exc}") from exc
    try:
        mode = os.stat(real).st_mode
    except NotADirectoryError:
        # Below a file: no directory can ever be made there.
        above = next((parent for parent in real.parents if parent.exists()), real.parent)
        return Place(path, real, f"{above}, above it, is {_kind(above).removeprefix('it is ')}")
    except OSError:
        # Nothing there yet (made on demand), or it cannot be looked at (no permission):
        # making the directory says why that fails, in the region's status.
        return Place(path, real)
    if stat.S_ISDIR(mode):
        return Place(path, real)
    return Place(path, real, _kind(real))


def _kind(path: Path) -> str:
    """What ``path`` is, said for a place where a directory was expected."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    kinds = (
        (stat.S_ISREG, "it is a regular file"),
        (stat.S_ISCHR, "it is a character device"),
        (stat.S_ISBLK, "it is a block device"),
        (stat.S_ISFIFO, "it is a FIFO"),
        (stat.S_ISSOCK, "it is a socket"),
    )
    return next((kind for test, kind in kinds if test(mode)), "it is something else")


#: Seconds a validated configuration is reused while its file stays the same (see
#: :meth:`Home.load_regions`).
REVALIDATE_AFTER: Final = 1.0


@dataclass(frozen=True, slots=True)
class _Loaded:
    """A validated configuration, the file signature it was read under, and when."""

    signature: tuple[int, int, int, int, int]
    checked: float
    regions: Mapping[str, RegionConfig]


def _signature(status: os.stat_result) -> tuple[int, int, int, int, int]:
    """What changes when a file is written or replaced, as far as ``stat`` tells."""
    return (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)


class Home:
    """Paths and configuration of one deployment's home directory (blocking calls)."""

    def __init__(self, root: Path) -> None:
        self.root = root.absolute()
        self.config_path = self.root / CONFIG_NAME
        self.catalog_path = self.root / CATALOG_NAME
        self._loaded: _Loaded | None = None

    def default_regions(self) -> dict[str, RegionConfig]:
        regions = {}
        for display in DEFAULT_REGIONS:
            name = normalize_region(display)
            regions[name] = RegionConfig(name, display, LOCAL_KIND, self.root / REGIONS_DIR / name)
        return regions

    def ensure(self) -> None:
        """Create the home with the default configuration unless it exists (race-safe)."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            from blobrep.storage.files import file_error

            raise file_error(exc, self.root, "create the home directory") from exc
        if not self.config_path.exists():
            self._write(self.default_regions(), replace=False)

    def load_regions(self) -> dict[str, RegionConfig]:
        """The configured regions, validated.

        A long-running process asks for every request, and reading, parsing and resolving
        every region's path costs far more than the request itself; so the last validated
        configuration is reused while the file's signature (inode, size, change and
        modification times) stays the same, for at most :data:`REVALIDATE_AFTER` seconds,
        after which the file is read and the paths resolved again (a region's directory
        swapped for a link is seen within that time). An edited or replaced file is read at once.

        Raises:
            StorageError: the configuration cannot be read.
            InvalidParameterError: it is malformed, or two regions share storage (or one would
                hold the home); the message names both and their paths.
        """
        loaded = self._loaded
        now = time.monotonic()
        try:
            signature = _signature(os.stat(self.config_path))
        except OSError:
            signature = None  # reading says why, below
        if loaded is not None and loaded.signature == signature and now - loaded.checked < REVALIDATE_AFTER:
            return dict(loaded.regions)
        regions = self._read_regions()
        if signature is not None:
            self._loaded = _Loaded(signature, now, regions)
        return dict(regions)

    def _read_regions(self) -> dict[str, RegionConfig]:
        regions = parse_config(self._text(), self.root, self.config_path)
        problem = self.storage_problem(regions)
        if problem is not None:
            raise InvalidParameterError(f"{self.config_path}: {problem}")
        return regions

    def profiles(self) -> dict[str, dict[str, str | bool]]:
        """The ``[profiles.NAME]`` tables of the configuration, secrets included: never show them.

        Raises:
            StorageError: the configuration cannot be read.
            InvalidParameterError: a profile is malformed.
        """
        return parse_profiles(self._text(), self.config_path)

    def _text(self) -> str:
        """The configuration file's text, its read errors said in words."""
        try:
            return self.config_path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise StorageError(f"{self.config_path} is missing: is {self.root} a blobrep home?") from exc
        except OSError as exc:
            from blobrep.storage.files import file_error

            raise file_error(exc, self.config_path, "read") from exc
        except UnicodeDecodeError as exc:
            raise StorageError(
                f"cannot read {self.config_path}: it is not UTF-8 text (byte {exc.start}); restore the"
                " file or write it again as TOML"
            ) from exc

    def storage_problem(self, regions: Mapping[str, RegionConfig]) -> str | None:
        """:func:`storage_problem` for the local regions of ``regions`` in this home, symbolic
        links resolved, then :func:`object_storage_problem` for the others."""
        places = {name: _place(region.path) for name, region in regions.items() if region.path is not None}
        files = [_place(self.config_path), _place(self.catalog_path)]
        return storage_problem(places, _place(self.root), files) or object_storage_problem(regions)

    def save_regions(self, regions: dict[str, RegionConfig]) -> None:
        """Write ``regions``, keeping the file's ``[profiles.NAME]`` tables as they are."""
        self._loaded = None
        self._write(regions, replace=True)

    def _write(self, regions: dict[str, RegionConfig], *, replace: bool) -> None:
        """Write the configuration durably; with ``replace=False`` an existing file wins.

        Raises:
            StorageError, StorageFullError: it cannot be written (naming it and the cause);
                the old file, if any, stays as it was and no temporary is left behind.
        """
        from blobrep.storage.files import write_file  # imported here: only writes need it

        profiles = {}
        if replace:
            try:
                profiles = self.profiles()
            except StorageError:
                profiles = {}  # nothing readable to keep: the regions were read from it just now
        text = render_config(regions, self.root, profiles).encode()
        # Profiles may hold credentials: a file that has them is for its owner alone.
        write_file(self.config_path, text, replace=replace, mode=0o600 if profiles else None)
