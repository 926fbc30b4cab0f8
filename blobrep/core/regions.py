"""Regions, target regions and replica counts: what a version is replicated to, and how often.

A region is written in one spelling everywhere: lower case, no spaces (``westcentralus``).
Input also accepts display names (``"West Central US"``) because both spellings appear in the
gallery model; normalising them before anything compares names is what keeps ``westus`` and
``"West US"`` from becoming two targets for one place.

``--target-regions`` tokens follow the az CLI grammar ``NAME[=COUNT][=STORAGE_TYPE]``: a
missing part stays ``None`` so that the version's global replica count and storage type apply.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from blobrep.core.gallery import (
    MAX_REPLICA_COUNT,
    PublishingProfile,
    StorageType,
    TargetRegion,
    parse_choice,
)
from blobrep.errors import ImmutableFieldError, InvalidParameterError, InvalidRegionError

_REGION_RE = re.compile(r"[a-z][a-z0-9]{1,49}")
_DIGITS_RE = re.compile(r"[0-9]+")
_REGION_EXAMPLE = 'for example westcentralus or "West Central US"'
_TARGET_SHAPE = "NAME[=COUNT][=STORAGE_TYPE], for example eastus2, ukwest=3 or brazilsouth=2=Standard_LRS"
_STORAGE_TYPES = ", ".join(member.value for member in StorageType)


def normalize_region(text: str) -> str:
    """The one spelling of a region: ``"West Central US"`` becomes ``westcentralus``.

    Raises:
        InvalidRegionError: what is left is not a letter followed by 1 to 49 letters or digits.
    """
    compact = text.strip().replace(" ", "")
    # Only ASCII may be lowered: "\u212a".lower() is "k", which would smuggle in a name.
    name = compact.lower() if compact.isascii() else compact
    if _REGION_RE.fullmatch(name) is None:
        raise InvalidRegionError(
            f"invalid region {text!r}: use a short name of 2 to 50 letters and digits starting with"
            f" a letter, or its display name, {_REGION_EXAMPLE}"
        )
    return name


def _out_of_range(what: str, shown: str) -> InvalidRegionError:
    return InvalidRegionError(
        f"invalid {what}: {shown} is out of range; use a whole number from 1 to {MAX_REPLICA_COUNT},"
        " for example 3 (0 is not allowed: a target region holds at least one replica)"
    )


def validate_replica_count(count: int, what: str = "replica count") -> int:
    """Return ``count`` if a region can hold that many replicas.

    Raises:
        InvalidRegionError: ``count`` is outside 1..MAX_REPLICA_COUNT (0 included: a target
            region always holds at least one replica).
    """
    if isinstance(count, bool) or not 1 <= count <= MAX_REPLICA_COUNT:
        raise _out_of_range(what, repr(count))
    return count


def parse_replica_count(text: str, what: str) -> int:
    """A replica count given as text on the command line.

    Raises:
        InvalidRegionError: ``text`` is not ASCII digits, or the number is out of range.
    """
    digits = text.strip()
    if _DIGITS_RE.fullmatch(digits) is None:
        raise InvalidRegionError(
            f"invalid {what}: {text!r} is not a whole number; use 1 to {MAX_REPLICA_COUNT}, for example 3"
        )
    if len(digits) > 10:  # far out of range; int() of a huge string is slow and may refuse
        raise _out_of_range(what, digits)
    return validate_replica_count(int(digits), what)


def _storage_type(text: str) -> StorageType | None:
    """The storage type spelled ``text`` in any case, or None (the caller words the error)."""
    try:
        return parse_choice(StorageType, text, "storage type")
    except InvalidParameterError:
        return None


def parse_target_region(token: str) -> TargetRegion:
    """One ``--target-regions`` token: ``NAME``, ``NAME=COUNT``, ``NAME=TYPE`` or ``NAME=COUNT=TYPE``.

    Storage types are accepted in any letter case; the region is normalised.

    Raises:
        InvalidRegionError: the token is empty, has an empty part, or a part is not what its
            position requires; the message names the token and shows the accepted shape.
    """
    parts = token.split("=", 2)
    if not token.strip() or any(not part.strip() for part in parts):
        raise InvalidRegionError(f"invalid target region {token!r}: expected {_TARGET_SHAPE}")
    name = normalize_region(parts[0])
    if len(parts) == 1:
        return TargetRegion(name)
    what = f"replica count in target region {token!r}"
    if len(parts) == 2:
        if _DIGITS_RE.fullmatch(parts[1].strip()) is not None:
            return TargetRegion(name, replica_count=parse_replica_count(parts[1], what))
        storage = _storage_type(parts[1])
        if storage is None:
            raise InvalidRegionError(
                f"invalid target region {token!r}: {parts[1]!r} is neither a replica count"
                f" (1 to {MAX_REPLICA_COUNT}) nor a storage type ({_STORAGE_TYPES}); expected {_TARGET_SHAPE}"
            )
        return TargetRegion(name, storage_type=storage)
    if _DIGITS_RE.fullmatch(parts[1].strip()) is None:
        raise InvalidRegionError(
            f"invalid target region {token!r}: the middle part {parts[1]!r} must be a replica count"
            f" from 1 to {MAX_REPLICA_COUNT}; expected {_TARGET_SHAPE}"
        )
    count = parse_replica_count(parts[1], what)
    storage = _storage_type(parts[2])
    if storage is None:
        raise InvalidRegionError(
            f"invalid target region {token!r}: {parts[2]!r} is not a storage type; use one of"
            f" {_STORAGE_TYPES} (any letter case)"
        )
    return TargetRegion(name, replica_count=count, storage_type=storage)


def _checked_targets(location: str, targets: Sequence[TargetRegion]) -> tuple[TargetRegion, ...]:
    """Normalised targets without duplicates, with valid counts, that include ``location``."""
    source = normalize_region(location)
    seen: dict[str, str] = {}
    result: list[TargetRegion] = []
    for target in targets:
        name = normalize_region(target.name)
        if name in seen:
            same = (
                "" if seen[name] == target.name else f" ({seen[name]!r} and {target.name!r} are one region)"
            )
            raise InvalidRegionError(f"duplicate target region {name!r}{same}: list each region once")
        seen[name] = target.name
        if target.replica_count is not None:
            validate_replica_count(target.replica_count, f"replica count of target region {name!r}")
        result.append(target if name == target.name else dataclasses.replace(target, name=name))
    if source not in seen:
        given = ", ".join(seen) or "none"
        suggestion = " ".join([source, *seen])
        raise InvalidRegionError(
            f"the source region {source!r} must be one of the target regions (given: {given});"
            f" add it, for example: {suggestion}"
        )
    return tuple(result)


def resolve_target_regions(location: str, targets: Sequence[TargetRegion] | None) -> tuple[TargetRegion, ...]:
    """The target regions of a new version, in the order given.

    No targets means the source region alone, as the az CLI does; otherwise the source region
    must be among them, since replication starts from there.

    Raises:
        InvalidRegionError: a region is listed twice (after normalisation), a regional replica
            count is out of range, or the source region is not a target.
    """
    if not targets:
        return (TargetRegion(normalize_region(location)),)
    return _checked_targets(location, targets)


def unknown_region_message(name: str, known: Collection[str]) -> str:
    """How every command says that ``name`` is no region of this deployment: the same words
    wherever a region is taken, with the regions that do exist."""
    listed = ", ".join(sorted(known)) if known else "none (configure a region first)"
    return f"unknown region {name!r}: known regions are {listed}"


def check_known_regions(targets: Iterable[str], known: Collection[str]) -> None:
    """Refuse regions that this deployment has no storage for.

    Raises:
        InvalidRegionError: for the first unknown region; the message lists the known ones.
    """
    for name in targets:
        if name not in known:
            raise InvalidRegionError(unknown_region_message(name, known))


def check_target_regions(names: Iterable[str], profile: PublishingProfile, version: str) -> None:
    """Refuse regions (known to this deployment) that are not target regions of the version
    whose id is ``version``.

    Raises:
        InvalidRegionError: for the first such region (by name); the message lists the
            version's targets and says how to add one.
    """
    targets = [target.name for target in profile.target_regions]
    for name in sorted(names):
        if name not in targets:
            raise InvalidRegionError(
                f"region {name!r} is not a target region of {version} (its target regions:"
                f" {', '.join(targets)}); add it with --target-regions {' '.join([*targets, name])}"
            )


@dataclass(frozen=True, slots=True)
class TargetRegionUpdate:
    """What an update of a version's target regions changes, and the profile it leads to."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    rescaled: tuple[str, ...]
    """Regions kept whose effective replica count changes."""
    profile: PublishingProfile


def plan_target_update(
    old: PublishingProfile,
    new_targets: Sequence[TargetRegion],
    *,
    new_replica_count: int | None,
    allow_deletion: bool,
    location: str,
) -> TargetRegionUpdate:
    """Check an update of the target regions and say which regions it adds, removes and rescales.

    ``new_targets`` is the complete new list. The storage type of a region that stays a target
    cannot change, and removing a region needs ``allow_deletion`` because replicas in a removed
    region are deleted and deployments there would fail.

    Raises:
        InvalidRegionError: duplicates, a count out of range, or the source region dropped.
        ImmutableFieldError: a kept region's effective storage type would change.
        InvalidParameterError: a region would be removed while deletion is not allowed.
    """
    targets = _checked_targets(location, new_targets)
    replica_count = old.replica_count
    if new_replica_count is not None:
        replica_count = validate_replica_count(new_replica_count, "global replica count")
    profile = dataclasses.replace(old, target_regions=targets, replica_count=replica_count)
    old_names = [target.name for target in old.target_regions]
    new_names = [target.name for target in targets]
    rescaled: list[str] = []
    for target in targets:
        before = old.target(target.name)
        if before is None:
            continue
        was, will_be = old.effective_storage_type(before), profile.effective_storage_type(target)
        if was is not will_be:
            raise ImmutableFieldError(
                f"cannot change the storage type of target region {target.name!r} from {was} to"
                f" {will_be}: it is fixed at creation; keep {was} for {target.name}"
            )
        if old.effective_replica_count(before) != profile.effective_replica_count(target):
            rescaled.append(target.name)
    removed = tuple(name for name in old_names if name not in new_names)
    if removed and not allow_deletion:
        raise InvalidParameterError(
            f"cannot remove target regions {', '.join(removed)}: the safety profile does not allow"
            " deleting replicated locations; keep them in the target regions, or allow it with"
            " --allow-replicated-location-deletion"
        )
    added = tuple(name for name in new_names if name not in old_names)
    return TargetRegionUpdate(added=added, removed=removed, rescaled=tuple(rescaled), profile=profile)
