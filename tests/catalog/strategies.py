"""Hypothesis strategies for catalog values: whatever the model can hold, not only valid input.

The catalog stores what the service hands it without judging it, so counts range over every
64-bit integer and text over all of Unicode; only what SQLite itself cannot hold (integers
beyond 64 bits, times without a zone) is left out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

from blobrep.core.gallery import (
    BlobInfo,
    GalleryImageVersion,
    ProvisioningState,
    PublishingProfile,
    RegionStatus,
    ReplicationState,
    SafetyProfile,
    StorageType,
    TargetRegion,
)
from blobrep.core.pins import ManifestPin
from tests.core.strategies import digests, versions

int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
region_names = st.from_regex(r"[a-z][a-z0-9]{0,15}", fullmatch=True)

#: Manifest pins: the catalog refuses a pin that no document could match, so sizes are byte
#: counts and SHA-256s are 64 lower-case hex characters.
manifest_pins = st.builds(
    ManifestPin,
    size=st.integers(min_value=0, max_value=2**63 - 1),
    sha256=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
)

_ZONES = (UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)))
#: Aware datetimes in a few zones, far enough from year 1 and 9999 to convert to UTC.
times = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2500, 1, 1), timezones=st.sampled_from(_ZONES)
)

target_regions = st.builds(
    TargetRegion,
    name=region_names,
    replica_count=st.none() | int64,
    storage_type=st.none() | st.sampled_from(StorageType),
    exclude_from_latest=st.none() | st.booleans(),
)


def region_status(region: str) -> st.SearchStrategy[RegionStatus]:
    return st.builds(
        RegionStatus,
        region=st.just(region),
        state=st.sampled_from(ReplicationState),
        progress=int64,
        completed_replicas=int64,
        target_replicas=int64,
        details=st.text(),
    )


@st.composite
def gallery_image_versions(draw: st.DrawFn, gallery: str = "g", image: str = "img") -> GalleryImageVersion:
    """Versions whose ``regions`` are in the order the catalog returns them: status rows of
    targets in target order, then rows of regions that are not targets, by name."""
    targets = draw(st.lists(target_regions, max_size=6, unique_by=lambda target: target.name))
    target_names = {target.name for target in targets}
    reported = [target.name for target in targets if draw(st.booleans())]
    leftovers = draw(
        st.lists(region_names.filter(lambda name: name not in target_names), max_size=3, unique=True)
    )
    statuses = tuple(draw(region_status(name)) for name in [*reported, *sorted(leftovers)])
    profile = PublishingProfile(
        target_regions=tuple(targets),
        replica_count=draw(int64),
        storage_type=draw(st.sampled_from(StorageType)),
        exclude_from_latest=draw(st.booleans()),
        end_of_life=draw(st.none() | times),
        published=draw(st.none() | times),
    )
    blob = draw(
        st.none()
        | st.builds(
            BlobInfo,
            size=int64,
            digest=digests,
            stored_bytes=int64,
            chunks=int64,
            manifest=st.none() | manifest_pins,
        )
    )
    return GalleryImageVersion(
        gallery=gallery,
        image=image,
        version=draw(versions),
        location=draw(region_names),
        publishing_profile=profile,
        safety_profile=SafetyProfile(draw(st.booleans())),
        provisioning_state=draw(st.sampled_from(ProvisioningState)),
        blob=blob,
        regions=statuses,
    )
