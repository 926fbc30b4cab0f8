"""``latest``: which version of an image definition a deployment in one region gets.

``latest`` is resolved per region, because replication finishes at different times in
different regions: the highest version (compared numerically) that is Completed in that
region and not excluded from ``latest`` there. A regional exclusion flag wins over the
version's global one, so a version can be held back in one region while it serves others.
A definition can also ask ``latest`` to skip versions past their end of life: the callers then
pass the moment to judge that by (``past_end_of_life_at``); None keeps them eligible.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final

from blobrep.core.definitions import format_datetime
from blobrep.core.gallery import GalleryImageVersion, ReplicationState
from blobrep.core.lifecycle import past_end_of_life

#: How many skipped versions :func:`latest_error_detail` explains before summing up the rest.
MAX_EXPLAINED: Final = 4


def _expired(version: GalleryImageVersion, past_end_of_life_at: datetime | None) -> bool:
    end_of_life = version.publishing_profile.end_of_life
    return past_end_of_life_at is not None and past_end_of_life(end_of_life, past_end_of_life_at)


def _eligible(version: GalleryImageVersion, region: str, past_end_of_life_at: datetime | None) -> bool:
    return (
        version.is_completed_in(region)
        and not version.publishing_profile.excluded_from_latest(region)
        and not _expired(version, past_end_of_life_at)
    )


def resolve_latest(
    versions: Iterable[GalleryImageVersion], region: str, past_end_of_life_at: datetime | None = None
) -> GalleryImageVersion | None:
    """The version ``latest`` names in ``region`` (a normalised name), or None if there is none.

    With ``past_end_of_life_at``, versions whose end of life is not after it are skipped.
    """
    best: GalleryImageVersion | None = None
    for version in versions:
        if _eligible(version, region, past_end_of_life_at) and (
            best is None or version.version > best.version
        ):
            best = version
    return best


def _why_skipped(version: GalleryImageVersion, region: str, past_end_of_life_at: datetime | None) -> str:
    reasons: list[str] = []
    end_of_life = version.publishing_profile.end_of_life
    if _expired(version, past_end_of_life_at) and end_of_life is not None:
        reasons.append(f"is past its end of life ({format_datetime(end_of_life)})")
    status = version.status(region)
    if status is None:
        if version.publishing_profile.target(region) is None:
            return f"{version.version} " + " and ".join([*reasons, f"is not replicated to {region}"])
        else:
            reasons.append("has not started replicating there")
    elif status.state is ReplicationState.REPLICATING:
        reasons.append(f"is Replicating there ({status.progress}%)")
    elif status.state is ReplicationState.FAILED:
        details = f" ({status.details})" if status.details else ""
        reasons.append(f"failed to replicate there{details}")
    elif status.state is not ReplicationState.COMPLETED:
        reasons.append(f"has replication state {status.state} there")
    profile = version.publishing_profile
    if profile.excluded_from_latest(region):
        target = profile.target(region)
        regional = target is not None and target.exclude_from_latest is not None
        reasons.append("is excluded from latest there" if regional else "is excluded from latest")
    return f"{version.version} " + " and ".join(reasons)


def _hints(
    skipped: list[GalleryImageVersion], region: str, past_end_of_life_at: datetime | None
) -> list[str]:
    hints: list[str] = []
    states = {
        status.state if (status := version.status(region)) is not None else ReplicationState.UNKNOWN
        for version in skipped
        if version.publishing_profile.target(region) is not None
    }
    if states & {ReplicationState.REPLICATING, ReplicationState.UNKNOWN}:
        hints.append("wait for replication there to complete")
    if ReplicationState.FAILED in states:
        hints.append("retry the failed replication")
    if any(version.publishing_profile.target(region) is None for version in skipped):
        hints.append(f"add {region} to a version's target regions")
    if any(_expired(version, past_end_of_life_at) for version in skipped):
        hints.append("publish a version with a later end of life")
    if any(version.is_completed_in(region) for version in skipped):
        hints.append(
            "name a version explicitly (a version excluded from latest can still be deployed by number)"
        )
    return hints


def latest_error_detail(
    versions: Iterable[GalleryImageVersion], region: str, past_end_of_life_at: datetime | None = None
) -> str:
    """Why no version is ``latest`` in ``region``: one sentence for the caller's error message.

    Lists the newest few versions with the reason each was skipped, then what would help.
    Meant for when :func:`resolve_latest` returns None; otherwise it names the latest version.
    """
    ordered = sorted(versions, key=lambda version: version.version, reverse=True)
    if not ordered:
        return "the image definition has no versions yet; publish one first"
    winner = resolve_latest(ordered, region, past_end_of_life_at)
    if winner is not None:
        return f"{winner.version} is the latest version in {region}"
    reasons = [_why_skipped(version, region, past_end_of_life_at) for version in ordered[:MAX_EXPLAINED]]
    if len(ordered) > MAX_EXPLAINED:
        more = len(ordered) - MAX_EXPLAINED
        reasons.append(f"{more} older version{' is' if more == 1 else 's are'} skipped too")
    hints = _hints(ordered, region, past_end_of_life_at) or ["publish a new version"]
    advice = hints[0] if len(hints) == 1 else ", ".join(hints[:-1]) + " or " + hints[-1]
    return f"no version of it is Completed in {region} and included in latest; {', '.join(reasons)}; {advice}"
