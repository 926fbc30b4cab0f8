"""Regions as ``blobrep.toml`` declares them: where each keeps its replicas, of three kinds.

* ``local``: a directory; replica n is ``{path}/replica-{n}``;
* ``s3``: a bucket and prefix (``url = "s3://bucket/prefix"``); replica n is the prefix
  ``{prefix}/replica-{n}/``;
* ``azure``: a container and prefix (``url = "az://container/prefix"``), likewise.

An object region reaches its service with the standard environment variables of that service
(``AWS_*``, ``AZURE_STORAGE_*``) unless it names a profile: a ``[profiles.NAME]`` table of
the same file whose keys (endpoint, region, credentials) replace the environment's. Profiles
hold secrets, so they are never shown: :class:`RegionConfig` keeps the options it resolved out
of its ``repr``, and nothing prints them; they never reach the catalog either, which records
region names only.

Pure: parsing and rendering text. :mod:`blobrep.service.home` reads and writes the file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from blobrep.core.regions import normalize_region
from blobrep.errors import InvalidInputError, InvalidParameterError

if TYPE_CHECKING:
    from blobrep.storage.base import Store
    from blobrep.storage.object_url import ObjectUrl
    from blobrep.storage.objects import ObjectStore

LOCAL_KIND: Final = "local"
S3_KIND: Final = "s3"
AZURE_KIND: Final = "azure"
KINDS: Final = (LOCAL_KIND, S3_KIND, AZURE_KIND)
#: The keys a profile of each kind may set (obstore's configuration keys); anything else is a
#: typo that would otherwise quietly fall back to the environment.
PROFILE_KEYS: Final[Mapping[str, frozenset[str]]] = {
    S3_KIND: frozenset(
        {"endpoint", "region", "access_key_id", "secret_access_key", "session_token", "allow_http"}
    ),
    AZURE_KIND: frozenset({"endpoint", "account_name", "account_key", "sas_key", "allow_http"}),
}
_REGION_KEYS: Final = {
    LOCAL_KIND: frozenset({"display_name", "kind", "path"}),
    S3_KIND: frozenset({"display_name", "kind", "url", "profile"}),
    AZURE_KIND: frozenset({"display_name", "kind", "url", "profile"}),
}


@dataclass(frozen=True, slots=True)
class RegionConfig:
    """One region: its name, how people spell it, and where its replicas live."""

    name: str
    display_name: str
    kind: str
    path: Path | None
    """Absolute directory holding ``replica-{n}`` for a local region; None for an object region."""
    url: ObjectUrl | None = None
    """Bucket or container and prefix holding ``replica-{n}/`` for an object region."""
    profile: str | None = None
    """The ``[profiles.NAME]`` an object region reaches its service with; None: the environment."""
    options: Mapping[str, str] = field(default_factory=dict, repr=False)
    """The profile's options, secrets included: never shown."""

    @property
    def location(self) -> str:
        """Where the replicas live, for people: the directory or the URL."""
        return str(self.url if self.url is not None else self.path)

    @property
    def is_local(self) -> bool:
        return self.kind == LOCAL_KIND

    def replica_path(self, number: int) -> Path:
        """The directory of replica ``number`` of a local region."""
        if self.path is None:
            raise InvalidParameterError(f"region {self.name!r} is on {self.kind}, not a local directory")
        return self.path / f"replica-{number}"

    def replica_name(self, number: int) -> str:
        return f"{self.name}/replica-{number}"

    def store(self, number: int, *, create: bool) -> Store:
        """Replica ``number`` (1-based) as a store; ``create`` makes a local one's directory if
        needed (an object prefix needs no making)."""
        if self.url is None:
            from blobrep.storage.local import LocalStore  # imported here: most commands read no replica

            return LocalStore(self.replica_path(number), name=self.replica_name(number), create=create)
        from blobrep.storage.shared_objects import shared_object_store

        return shared_object_store(
            self.url.child(f"replica-{number}"),
            self.options,
            name=self.replica_name(number),
        )

    def probe_store(self) -> ObjectStore:
        """The region's whole prefix as a store, to prove its bucket answers (an object region)."""
        if self.url is None:
            raise InvalidParameterError(f"region {self.name!r} is a local directory, not an object store")
        from blobrep.storage.shared_objects import shared_object_store

        return shared_object_store(self.url, self.options, name=f"region {self.name}")


def _toml_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _toml_value(value: str | bool) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else _toml_string(value)


Profiles = Mapping[str, Mapping[str, str | bool]]


def render_config(regions: Mapping[str, RegionConfig], home: Path, profiles: Profiles | None = None) -> str:
    """The TOML text for ``regions`` and ``profiles``; paths under ``home`` are written relative to it."""
    lines = [
        "# blobrep home configuration: the regions of this deployment.",
        "# A local region keeps replica n of a version in {path}/replica-{n} (relative paths are",
        "# relative to this file's directory); an s3 or azure region in {url}/replica-{n}/.",
        "",
    ]
    for region in sorted(regions.values(), key=lambda item: item.name):
        lines += [
            f"[regions.{region.name}]",
            f"display_name = {_toml_string(region.display_name)}",
            f"kind = {_toml_string(region.kind)}",
        ]
        if region.path is not None:
            try:
                path = str(region.path.relative_to(home))
            except ValueError:
                path = str(region.path)
            lines.append(f"path = {_toml_string(path)}")
        if region.url is not None:
            lines.append(f"url = {_toml_string(str(region.url))}")
        if region.profile is not None:
            lines.append(f"profile = {_toml_string(region.profile)}")
        lines.append("")
    for name, options in sorted((profiles or {}).items()):
        lines.append(f"[profiles.{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in sorted(options.items())]
        lines.append("")
    return "\n".join(lines)


def _field(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidParameterError(f"{where}: '{key}' must be a non-empty string")
    return value


def _document(text: str, source: Path) -> dict[str, Any]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidParameterError(f"{source} is not valid TOML: {exc}") from exc
    unknown = set(document) - {"regions", "profiles"}
    if unknown:
        raise InvalidParameterError(
            f"{source}: unknown section(s) {sorted(unknown)}; expected [regions.NAME] and [profiles.NAME]"
        )
    return document


def parse_profiles(text: str, source: Path) -> dict[str, dict[str, str | bool]]:
    """The ``[profiles.NAME]`` tables of ``text``: names to options, checked for shape only
    (which keys a profile may hold depends on the kind of the region that uses it)."""
    tables = _document(text, source).get("profiles", {})
    if not isinstance(tables, dict):
        raise InvalidParameterError(f"{source}: 'profiles' must be a table of [profiles.NAME] entries")
    profiles: dict[str, dict[str, str | bool]] = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise InvalidParameterError(f"{source} [profiles.{name}] must be a table")
        for key, value in table.items():
            if not isinstance(value, (str, bool)):
                raise InvalidParameterError(
                    f"{source} [profiles.{name}]: {key!r} must be a string or true/false"
                )
        profiles[name] = dict(table)
    return profiles


def parse_config(text: str, home: Path, source: Path) -> dict[str, RegionConfig]:
    """Regions from the TOML ``text`` of ``source``, validated, their profiles resolved.

    Raises:
        InvalidParameterError: the file is not TOML, or a region or profile entry is malformed
            (the message names the file, the entry and what would be right).
    """
    document = _document(text, source)
    profiles = parse_profiles(text, source)
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
        kind = _field(table, "kind", where)
        if kind not in KINDS:
            raise InvalidParameterError(
                f"{where}: kind {kind!r} is not supported; use one of {', '.join(KINDS)}"
            )
        extra = set(table) - _REGION_KEYS[kind]
        if extra:
            raise InvalidParameterError(
                f"{where}: unknown key(s) {sorted(extra)} for a {kind} region;"
                f" expected {', '.join(sorted(_REGION_KEYS[kind]))}"
            )
        display = _field(table, "display_name", where)
        if normalize_region(display) != name:
            raise InvalidParameterError(
                f"{where}: display_name {display!r} does not spell the region {name!r}"
            )
        if kind == LOCAL_KIND:
            path = Path(_field(table, "path", where))
            regions[name] = RegionConfig(name, display, kind, path if path.is_absolute() else home / path)
        else:
            regions[name] = _object_region(name, display, kind, table, profiles, where)
    return regions


def _object_region(
    name: str, display: str, kind: str, table: Mapping[str, Any], profiles: Profiles, where: str
) -> RegionConfig:
    url = object_url(_field(table, "url", where), kind, where)
    profile = table.get("profile")
    if profile is None:
        return RegionConfig(name, display, kind, None, url)
    if not isinstance(profile, str) or profile not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise InvalidParameterError(
            f"{where}: profile {profile!r} is not a [profiles.NAME] table of this file (profiles: {known})"
        )
    return RegionConfig(
        name, display, kind, None, url, profile, profile_options(profiles[profile], kind, profile)
    )


def object_url(text: str, kind: str, where: str) -> ObjectUrl:
    """``text`` as the URL of a region of ``kind`` (``s3`` wants ``s3://``, ``azure`` ``az://``).

    Raises:
        InvalidParameterError: naming ``where``, what is wrong and what would be right.
    """
    from blobrep.storage.object_url import ObjectUrl  # imported here: local homes never need it

    try:
        url = ObjectUrl.parse(text)
    except InvalidInputError as exc:
        raise InvalidParameterError(f"{where}: {exc}") from exc
    if url.kind != kind:
        scheme = "s3://BUCKET/PREFIX" if kind == S3_KIND else "az://CONTAINER/PREFIX"
        raise InvalidParameterError(f"{where}: a {kind} region's url is {scheme}, not {text!r}")
    return url


def profile_options(options: Mapping[str, str | bool], kind: str, profile: str) -> dict[str, str]:
    """A profile's options as the object store takes them, checked against ``kind``'s keys.

    Raises:
        InvalidParameterError: a key that no region of ``kind`` knows (named, with the known ones).
    """
    allowed = PROFILE_KEYS[kind]
    unknown = set(options) - allowed
    if unknown:
        raise InvalidParameterError(
            f"profile {profile!r}: unknown key(s) {sorted(unknown)} for a {kind} region;"
            f" expected some of {', '.join(sorted(allowed))}"
        )
    return {
        key: ("true" if value else "false") if isinstance(value, bool) else value
        for key, value in options.items()
    }
