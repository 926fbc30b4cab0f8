"""A definition's retention policy: which old versions shrink to the home region, and why not.

The policy keeps the ``keep_global`` newest versions that are Completed everywhere and not
excluded from ``latest`` on their full target regions: those are the versions deployments
get (when the definition makes ``latest`` skip versions past their end of life, those do
not count either). Every version older than the oldest of them shrinks to the policy's home
region with one replica. Versions excluded from ``latest`` do not count toward
``keep_global`` (a canary or a test build never pushes a release out of the global set), but
one older than the kept ones shrinks like any other; a version newer than the oldest kept
one is left alone whatever its state, since it may still be on its way to being kept.

Shrinking follows the rules of any update: a version cannot leave its source region, and
removing replicated regions needs ``allowDeletionOfReplicatedLocations`` in the version's
safety profile. A version those rules keep as it is gets a :class:`RetentionStep` that says
why, so ``show`` can tell a user what the policy could not do.

This module only plans; :mod:`blobrep.service.retention` carries the plan out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from blobrep.core.gallery import (
    AggregatedState,
    GalleryImageVersion,
    ProvisioningState,
    RetentionPolicy,
    TargetRegion,
)
from blobrep.core.lifecycle import past_end_of_life
from blobrep.core.regions import check_known_regions, normalize_region
from blobrep.errors import InvalidParameterError

#: How a mark saying why a version was left as it was begins.
NOT_SHRUNK = "not shrunk"
#: How the mark of a version grown back to its earlier targets begins.
GROWN_BACK = "grown back"

#: The replica count a version keeps in the home region once shrunk.
SHRUNK_REPLICA_COUNT = 1


@dataclass(frozen=True, slots=True)
class RetentionStep:
    """What the policy does to one version: shrink it to ``targets``, or (``targets`` None)
    leave it as it is for the reason in ``details``; ``shrunk`` says whether the version, so
    left, lives in one region with one replica already (in its source region, where the
    policy's home region is another)."""

    version: GalleryImageVersion
    targets: tuple[TargetRegion, ...] | None
    details: str
    shrunk: bool = False

    @property
    def grows(self) -> bool:
        """The step gives a shrunk version its earlier targets back (:func:`plan_regrowth`)."""
        return self.targets is not None and self.details.startswith(GROWN_BACK)

    @property
    def shrinks(self) -> bool:
        """The step shrinks the version to the home region (:func:`plan_retention`)."""
        return self.targets is not None and not self.grows


def _counts(version: GalleryImageVersion, past_end_of_life_at: datetime | None) -> bool:
    """True if ``version`` is one the policy keeps global: Completed everywhere (or being grown
    back to its targets: it was kept already), not excluded from ``latest`` (nor past its end
    of life, when ``latest`` skips those)."""
    end_of_life = version.publishing_profile.end_of_life
    mark = version.retention
    growing = mark is not None and not mark.shrunk and mark.details.startswith(GROWN_BACK)
    return (
        version.provisioning_state is ProvisioningState.SUCCEEDED
        and (version.aggregated_state is AggregatedState.COMPLETED or growing)
        and not version.publishing_profile.exclude_from_latest
        and not (past_end_of_life_at is not None and past_end_of_life(end_of_life, past_end_of_life_at))
    )


def kept_versions(
    policy: RetentionPolicy,
    versions: Sequence[GalleryImageVersion],
    past_end_of_life_at: datetime | None = None,
) -> list[GalleryImageVersion]:
    """The versions the policy keeps on their full target regions, newest first.

    ``past_end_of_life_at`` is given when the definition makes ``latest`` skip versions past
    their end of life: those then count no more than versions excluded from ``latest``.
    """
    counted = sorted(
        (version for version in versions if _counts(version, past_end_of_life_at)), key=lambda v: v.version
    )
    return list(reversed(counted[-policy.keep_global :]))


def is_shrunk(version: GalleryImageVersion, home_region: str) -> bool:
    """True if ``version`` lives in ``home_region`` alone, with one replica."""
    profile = version.publishing_profile
    targets = profile.target_regions
    return (
        len(targets) == 1
        and targets[0].name == home_region
        and profile.effective_replica_count(targets[0]) == SHRUNK_REPLICA_COUNT
    )


def _rule(policy: RetentionPolicy) -> str:
    """The policy in the words every mark quotes."""
    return f"keep-global {policy.keep_global}, home region {policy.home_region}"


def _step(policy: RetentionPolicy, version: GalleryImageVersion) -> RetentionStep:
    home = policy.home_region
    profile = version.publishing_profile
    rule = _rule(policy)
    if version.location != home:
        if is_shrunk(version, version.location):
            return RetentionStep(
                version,
                None,
                f"shrunk to {version.location}, its source region ({rule}): a version cannot leave"
                " its source region, and it lives there alone with one replica",
                shrunk=True,
            )
        return RetentionStep(
            version,
            None,
            f"{NOT_SHRUNK} ({rule}): its source region is {version.location}, which a version cannot leave;"
            f" shrink it by hand, or set the policy's home region to {version.location}",
        )
    removed = [target.name for target in profile.target_regions if target.name != home]
    if removed and not version.safety_profile.allow_deletion_of_replicated_locations:
        return RetentionStep(
            version,
            None,
            f"{NOT_SHRUNK} ({rule}): its safety profile does not allow deleting replicated locations"
            f" ({', '.join(removed)}); allow it with image-version update"
            " --allow-replicated-location-deletion",
        )
    source = profile.target(home)
    assert source is not None  # the source region is always a target
    shrunk = TargetRegion(home, SHRUNK_REPLICA_COUNT, source.storage_type, source.exclude_from_latest)
    what = f"removed {', '.join(removed)}" if removed else "lowered to one replica"
    return RetentionStep(version, (shrunk,), f"shrunk to {home} ({rule}): {what}")


def plan_retention(
    policy: RetentionPolicy,
    versions: Sequence[GalleryImageVersion],
    past_end_of_life_at: datetime | None = None,
) -> list[RetentionStep]:
    """What ``policy`` does to ``versions`` (one definition's), oldest version first.

    Only versions due to shrink appear: older than every kept version, published
    (``Succeeded``) and not already shrunk. None while fewer than ``keep_global`` versions
    count: the policy never shrinks the newest complete release anywhere.
    ``past_end_of_life_at`` is as for :func:`kept_versions`.
    """
    due = sorted(
        (
            version
            for version in older_than_kept(policy, versions, past_end_of_life_at)
            if version.provisioning_state is ProvisioningState.SUCCEEDED
            and not is_shrunk(version, policy.home_region)
        ),
        key=lambda v: v.version,
    )
    return [_step(policy, version) for version in due]


def plan_regrowth(
    policy: RetentionPolicy,
    versions: Sequence[GalleryImageVersion],
    past_end_of_life_at: datetime | None = None,
) -> list[RetentionStep]:
    """The versions ``policy`` keeps global that it shrank before, each to grow back to the
    target regions it had then (a newer version deleted, the policy widened, ``latest`` no
    longer skipping a newer one): without this, the newest usable version of a region whose
    newer versions went away would be nowhere but the home region. Oldest version first.

    A version is grown back only as the policy left it (its source region alone, one
    replica) and only if its mark records its earlier targets; one changed by hand since is
    the user's to change.
    """
    steps: list[RetentionStep] = []
    for version in sorted(kept_versions(policy, versions, past_end_of_life_at), key=lambda v: v.version):
        mark = version.retention
        if mark is None or not mark.shrunk or not mark.previous or not is_shrunk(version, version.location):
            continue
        added = [target.name for target in mark.previous if target.name != version.location]
        what = f"{GROWN_BACK} to {', '.join(added)}" if added else f"{GROWN_BACK} to its replicas"
        details = f"{what} ({_rule(policy)}): it is among the {policy.keep_global} newest again"
        steps.append(RetentionStep(version, mark.previous, details))
    return steps


def older_than_kept(
    policy: RetentionPolicy,
    versions: Sequence[GalleryImageVersion],
    past_end_of_life_at: datetime | None = None,
) -> list[GalleryImageVersion]:
    """The versions older than every version the policy keeps global: those it may shrink.
    None while fewer than ``keep_global`` versions count."""
    kept = kept_versions(policy, versions, past_end_of_life_at)
    if len(kept) < policy.keep_global:
        return []
    return [version for version in versions if version.version < kept[-1].version]


def stale_mark(
    policy: RetentionPolicy, version: GalleryImageVersion, *, due: bool, older: bool
) -> str | None:
    """What the retention mark of ``version`` should say now, where what it says has gone
    stale; None to keep it as it is. ``due``: the plan shrinks it (its step marks it);
    ``older``: it is older than every version the policy keeps.

    An older version shrunk to the home region says so under the rule that holds now (a mark
    of another rule, or one saying it could not be shrunk, is rewritten). A mark saying a
    version could not be shrunk is cleared (``""``) once it is no longer due. A mark saying
    it was shrunk is history otherwise, and stays.
    """
    mark = version.retention
    if mark is None or due:
        return None
    if is_shrunk(version, policy.home_region) and older:
        now = f"shrunk to {policy.home_region} ({_rule(policy)})"
        return None if mark.shrunk and mark.details.startswith(now) else now
    return "" if not mark.shrunk and mark.details.startswith(NOT_SHRUNK) else None


#: The largest ``keep_global``: more versions than any definition sensibly keeps everywhere.
MAX_KEEP_GLOBAL = 1000


def updated_policy(
    old: RetentionPolicy | None,
    keep_global: int | None,
    home_region: str | None,
    *,
    default_home: str,
    known_regions: Collection[str],
) -> RetentionPolicy | None:
    """The retention policy after an update giving ``keep_global`` and ``home_region`` (None:
    not given). ``keep_global`` 0 removes the policy; a new policy's home region defaults to
    ``default_home`` (the gallery's location).

    Raises:
        InvalidParameterError: a count out of range, a home region without a policy, or a
            home region given with ``keep_global`` 0.
        InvalidRegionError: the home region is not one of ``known_regions``.
    """
    if keep_global is not None and (isinstance(keep_global, bool) or not 0 <= keep_global <= MAX_KEEP_GLOBAL):
        raise InvalidParameterError(
            f"invalid keep-global {keep_global!r}: give how many of the newest versions stay in all"
            f" their target regions, 1 to {MAX_KEEP_GLOBAL} (0 removes the retention policy)"
        )
    if keep_global == 0:
        if home_region is not None:
            raise InvalidParameterError(
                "keep-global 0 removes the retention policy, which then has no home region:"
                " leave out the home region, or keep at least one version global"
            )
        return None
    home = None if home_region is None else normalize_region(home_region)
    if home is not None:
        check_known_regions([home], known_regions)
    if keep_global is None:
        if home is None:
            return old
        if old is None:
            raise InvalidParameterError(
                f"home region {home} given without a retention policy: give keep-global too,"
                " for example --keep-global 2"
            )
        return dataclasses.replace(old, home_region=home)
    if home is None:
        home = old.home_region if old is not None else default_home
    return RetentionPolicy(keep_global, home)
