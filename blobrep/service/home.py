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

import os
import time
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from blobrep.core.regions import normalize_region
from blobrep.errors import InvalidParameterError, StorageError

if TYPE_CHECKING:
    from blobrep.storage.local import LocalStore

CONFIG_NAME: Final = "blobrep.toml"
CATALOG_NAME: Final = "catalog.db"
REGIONS_DIR: Final = "regions"
LOCAL_KIND: Final = "local"

#: The regions of a fresh home: (display name) -> a local directory region each.
DEFAULT_REGIONS: Final = ("West Central US", "South Central US", "East US 2", "Southeast Asia", "West Europe")


@dataclass(frozen=True, slots=True)
class RegionConfig:
    """One region: its name, how people spell it, and where its replicas live."""

    name: str
    display_name: str
    kind: str
    path: Path
    """Absolute directory holding ``replica-{n}`` for a local region."""

    def replica_path(self, number: int) -> Path:
        return self.path / f"replica-{number}"

    def replica_name(self, number: int) -> str:
        return f"{self.name}/replica-{number}"

    def store(self, number: int, *, create: bool) -> LocalStore:
        """Replica ``number`` (1-based) as a store; ``create`` makes its directory if needed."""
        from blobrep.storage.local import LocalStore  # imported here: most commands read no replica

        return LocalStore(self.replica_path(number), name=self.replica_name(number), create=create)


def _toml_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def render_config(regions: dict[str, RegionConfig], home: Path) -> str:
    """The TOML text for ``regions``; paths under ``home`` are written relative to it."""
    lines = [
        "# blobrep home configuration: the regions of this deployment.",
        "# Each region keeps replica n of a version in {path}/replica-{n}; relative paths are",
        "# relative to this file's directory.",
        "",
    ]
    for region in sorted(regions.values(), key=lambda item: item.name):
        try:
            path = str(region.path.relative_to(home))
        except ValueError:
            path = str(region.path)
        lines += [
            f"[regions.{region.name}]",
            f"display_name = {_toml_string(region.display_name)}",
            f"kind = {_toml_string(region.kind)}",
            f"path = {_toml_string(path)}",
            "",
        ]
    return "\n".join(lines)


def _field(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidParameterError(f"{where}: '{key}' must be a non-empty string")
    return value


def parse_config(text: str, home: Path, source: Path) -> dict[str, RegionConfig]:
    """Regions from the TOML ``text`` of ``source``, validated.

    Raises:
        InvalidParameterError: the file is not TOML, or a region entry is malformed.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidParameterError(f"{source} is not valid TOML: {exc}") from exc
    unknown = set(document) - {"regions"}
    if unknown:
        raise InvalidParameterError(
            f"{source}: unknown section(s) {sorted(unknown)}; expected [regions.NAME]"
        )
    tables = document.get("regions", {})
    if not isinstance(tables, dict):
        raise InvalidParameterError(f"{source}: 'regions' must be a table of [regions.NAME] entries")
    regions: dict[str, RegionConfig] = {}
    for key, table in tables.items():
        where = f"{source} [regions.{key}]"
        if not isinstance(table, dict):
            raise InvalidParameterError(f"{where} must be a table")
        name = normalize_region(key)
        if name != key:
            raise InvalidParameterError(f"{where}: write the region's short name {name!r} as the key")
        extra = set(table) - {"display_name", "kind", "path"}
        if extra:
            raise InvalidParameterError(
                f"{where}: unknown key(s) {sorted(extra)}; expected display_name, kind, path"
            )
        kind = _field(table, "kind", where)
        if kind != LOCAL_KIND:
            raise InvalidParameterError(f"{where}: kind {kind!r} is not supported; use {LOCAL_KIND!r}")
        display = _field(table, "display_name", where)
        if normalize_region(display) != name:
            raise InvalidParameterError(
                f"{where}: display_name {display!r} does not spell the region {name!r}"
            )
        path = Path(_field(table, "path", where))
        regions[name] = RegionConfig(name, display, kind, path if path.is_absolute() else home / path)
    return regions


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
        try:
            text = self.config_path.read_text(encoding="utf-8")
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
        regions = parse_config(text, self.root, self.config_path)
        problem = self.storage_problem(regions)
        if problem is not None:
            raise InvalidParameterError(f"{self.config_path}: {problem}")
        return regions

    def storage_problem(self, regions: Mapping[str, RegionConfig]) -> str | None:
        """:func:`storage_problem` for ``regions`` in this home, symbolic links resolved."""
        places = {name: _place(region.path) for name, region in regions.items()}
        files = [_place(self.config_path), _place(self.catalog_path)]
        return storage_problem(places, _place(self.root), files)

    def save_regions(self, regions: dict[str, RegionConfig]) -> None:
        self._loaded = None
        self._write(regions, replace=True)

    def _write(self, regions: dict[str, RegionConfig], *, replace: bool) -> None:
        """Write the configuration durably; with ``replace=False`` an existing file wins.

        Raises:
            StorageError, StorageFullError: it cannot be written (naming it and the cause);
                the old file, if any, stays as it was and no temporary is left behind.
        """
        from blobrep.storage.files import write_file  # imported here: only writes need it

        write_file(self.config_path, render_config(regions, self.root).encode(), replace=replace)

    def replica_numbers(self, region: RegionConfig) -> list[int]:
        """The replica directories that exist in a local region, by number."""
        numbers = []
        try:
            entries = list(region.path.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []  # nothing there yet (or nothing can be: replication says why, per region)
        except OSError as exc:
            raise StorageError(f"cannot list region {region.name} at {region.path}: {exc.strerror}") from exc
        for entry in entries:
            prefix, _, number = entry.name.partition("-")
            if prefix == "replica" and number.isdigit() and entry.is_dir():
                numbers.append(int(number))
        return sorted(numbers)
