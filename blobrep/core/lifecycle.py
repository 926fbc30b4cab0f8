"""End of life: when a version may be deleted, and whether its end of life has passed.

A version's end-of-life date is informational until its safety profile blocks deletion
before it (``blockDeletionBeforeEndOfLife``), which is for images that must stay deployable
until a date promised to their users: a script that deletes "old" versions must not take one
of them by mistake. The guard needs a date to guard until, so it is refused without one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from blobrep.core.definitions import format_datetime
from blobrep.core.ids import ResourceId
from blobrep.errors import InvalidParameterError, PreconditionError

if TYPE_CHECKING:
    from datetime import datetime

    from blobrep.core.gallery import GalleryImageVersion, SafetyProfile


def past_end_of_life(end_of_life: datetime | None, now: datetime) -> bool:
    """True once ``end_of_life`` is set and not after ``now``."""
    return end_of_life is not None and end_of_life <= now


def check_safety_profile(safety: SafetyProfile, end_of_life: datetime | None, version: str) -> None:
    """Refuse blocking deletion before an end of life that is not set.

    Raises:
        InvalidParameterError: ``blockDeletionBeforeEndOfLife`` without an end-of-life date.
    """
    if safety.block_deletion_before_end_of_life and end_of_life is None:
        raise InvalidParameterError(
            f"{version} would block its deletion before its end of life, but it has no end-of-life"
            " date: give one too (--end-of-life-date 2030-12-31), or leave out"
            " --block-deletion-before-end-of-life"
        )


def check_deletable(version: GalleryImageVersion, now: datetime) -> None:
    """Refuse deleting a version whose safety profile blocks it until its end of life.

    Raises:
        PreconditionError: the guard is on and the end of life is still ahead; the message
            gives the date and how to lift the guard.
    """
    end_of_life = version.publishing_profile.end_of_life
    if not version.safety_profile.block_deletion_before_end_of_life or past_end_of_life(end_of_life, now):
        return
    version_id = ResourceId.of_version(version.gallery, version.image, version.version)
    when = (
        "an end-of-life date" if end_of_life is None else f"its end of life, {format_datetime(end_of_life)}"
    )
    raise PreconditionError(
        f"cannot delete {version_id} before {when}: its safety profile blocks deletion until then;"
        " wait, or lift the guard first (image-version update --block-deletion-before-end-of-life false)"
    )
