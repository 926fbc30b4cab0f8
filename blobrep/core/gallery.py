"""The gallery model: galleries, image definitions, image versions and their profiles.

These are plain values, shared by the catalog (which stores them), the service (which
combines them with the engine) and the faces (which print them). The rules that derive one
value from others live here too, as pure functions: the effective replica count and storage
type of a target region, whether a version is excluded from ``latest`` in a region, and the
aggregated replication state of a version.

Enumerations keep the spelling of the gallery model blobrep follows (``Linux``,
``Standard_LRS``, ``InProgress``); :func:`parse_choice` accepts any letter case on input and
names the valid choices when a value is wrong.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Final, TypeVar

from blobrep.errors import InvalidParameterError

if TYPE_CHECKING:
    from blobrep.core.pins import ManifestPin
    from blobrep.core.version import ImageVersion

#: Regional and global replica counts are 1..MAX_REPLICA_COUNT.
MAX_REPLICA_COUNT: Final = 100
DEFAULT_REPLICA_COUNT: Final = 1

_Choice = TypeVar("_Choice", bound=enum.StrEnum)


class OsType(enum.StrEnum):
    LINUX = "Linux"
    WINDOWS = "Windows"


class OsState(enum.StrEnum):
    GENERALIZED = "Generalized"
    SPECIALIZED = "Specialized"


class HyperVGeneration(enum.StrEnum):
    V1 = "V1"
    V2 = "V2"


class Architecture(enum.StrEnum):
    X64 = "x64"
    ARM64 = "Arm64"


class StorageType(enum.StrEnum):
    """The kind of storage a region's replicas live on; fixed per region once created."""

    STANDARD_LRS = "Standard_LRS"
    STANDARD_ZRS = "Standard_ZRS"
    PREMIUM_LRS = "Premium_LRS"


DEFAULT_STORAGE_TYPE: Final = StorageType.STANDARD_LRS


class ProvisioningState(enum.StrEnum):
    """The state of the last control-plane operation on a resource, apart from replication."""

    CREATING = "Creating"
    UPDATING = "Updating"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    DELETING = "Deleting"


class ReplicationState(enum.StrEnum):
    """The state of one version in one region; only ``Completed`` can be read there."""

    UNKNOWN = "Unknown"
    REPLICATING = "Replicating"
    COMPLETED = "Completed"
    FAILED = "Failed"


class AggregatedState(enum.StrEnum):
    """A version's replication state over all its target regions."""

    UNKNOWN = "Unknown"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"


def parse_choice(choices: type[_Choice], text: str, what: str) -> _Choice:
    """The member of ``choices`` spelled ``text`` in any letter case, or a clear error.

    Raises:
        InvalidParameterError: ``text`` names no member; the message lists the valid ones.
    """
    for member in choices:
        if member.value.lower() == text.strip().lower():
            return member
    valid = ", ".join(member.value for member in choices)
    raise InvalidParameterError(f"invalid {what} {text!r}: use one of {valid}")


@dataclass(frozen=True, slots=True)
class Gallery:
    name: str
    location: str
    """The home region: where the gallery's versions are published unless told otherwise."""
    description: str = ""
    provisioning_state: ProvisioningState = ProvisioningState.SUCCEEDED


@dataclass(frozen=True, slots=True)
class ImageIdentifier:
    """Publisher, offer and SKU: unique together within a gallery."""

    publisher: str
    offer: str
    sku: str


@dataclass(frozen=True, slots=True)
class ResourceRange:
    """A recommended range (vCPUs or memory in GiB); either end may be open."""

    min: int | None = None
    max: int | None = None


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Which versions of a definition keep their target regions: the ``keep_global`` newest
    that are Completed and not excluded from ``latest``; older ones shrink to ``home_region``
    with one replica (see :mod:`blobrep.core.retention`)."""

    keep_global: int
    home_region: str


@dataclass(frozen=True, slots=True)
class ImageDefinition:
    gallery: str
    name: str
    identifier: ImageIdentifier
    os_type: OsType
    os_state: OsState = OsState.GENERALIZED
    hyper_v_generation: HyperVGeneration = HyperVGeneration.V1
    architecture: Architecture = Architecture.X64
    recommended_vcpus: ResourceRange = ResourceRange()
    recommended_memory_gib: ResourceRange = ResourceRange()
    end_of_life: datetime | None = None
    description: str = ""
    provisioning_state: ProvisioningState = ProvisioningState.SUCCEEDED
    retention_policy: RetentionPolicy | None = None
    exclude_end_of_life_from_latest: bool = False
    """``latest`` skips versions whose end of life has passed; off by default, as a version
    past its end of life is still supported until someone says otherwise."""


@dataclass(frozen=True, slots=True)
class TargetRegion:
    """One region a version is replicated to; ``None`` fields fall back to the global value."""

    name: str
    replica_count: int | None = None
    storage_type: StorageType | None = None
    exclude_from_latest: bool | None = None


@dataclass(frozen=True, slots=True)
class PublishingProfile:
    target_regions: tuple[TargetRegion, ...]
    replica_count: int = DEFAULT_REPLICA_COUNT
    """The global replica count, used by every region without its own."""
    storage_type: StorageType = DEFAULT_STORAGE_TYPE
    exclude_from_latest: bool = False
    end_of_life: datetime | None = None
    published: datetime | None = None

    def target(self, region: str) -> TargetRegion | None:
        """The target entry for ``region`` (a normalised name), or None if it is not a target."""
        for target in self.target_regions:
            if target.name == region:
                return target
        return None

    def effective_replica_count(self, target: TargetRegion) -> int:
        return self.replica_count if target.replica_count is None else target.replica_count

    def effective_storage_type(self, target: TargetRegion) -> StorageType:
        return self.storage_type if target.storage_type is None else target.storage_type

    def excluded_from_latest(self, region: str) -> bool:
        """True if ``latest`` must skip this version in ``region``: the regional flag wins."""
        target = self.target(region)
        if target is not None and target.exclude_from_latest is not None:
            return target.exclude_from_latest
        return self.exclude_from_latest


@dataclass(frozen=True, slots=True)
class SafetyProfile:
    allow_deletion_of_replicated_locations: bool = False
    block_deletion_before_end_of_life: bool = False
    """Refuse deleting the version before its end-of-life date (which it then must have)."""


@dataclass(frozen=True, slots=True)
class RetentionMark:
    """What a definition's retention policy last did to a version, and when."""

    at: datetime
    shrunk: bool
    """True: the version was shrunk to the home region; False: it was due to be and could not,
    or it was grown back to its earlier targets."""
    details: str
    previous: tuple[TargetRegion, ...] = ()
    """For a version the policy shrank: its target regions before, which it gets back if it is
    among the versions the policy keeps global again (a newer one deleted, a policy widened)."""


@dataclass(frozen=True, slots=True)
class RegionStatus:
    """Where one version stands in one region."""

    region: str
    state: ReplicationState = ReplicationState.UNKNOWN
    progress: int = 0
    """0..100, by bytes."""
    completed_replicas: int = 0
    target_replicas: int = 0
    details: str = ""


def aggregate_state(states: Iterable[ReplicationState]) -> AggregatedState:
    """Any Failed -> Failed; all Completed -> Completed; none at all -> Unknown; else InProgress."""
    listed = list(states)
    if not listed:
        return AggregatedState.UNKNOWN
    if ReplicationState.FAILED in listed:
        return AggregatedState.FAILED
    if all(state is ReplicationState.COMPLETED for state in listed):
        return AggregatedState.COMPLETED
    return AggregatedState.IN_PROGRESS


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """What the source blob of a version is, as its manifest records it."""

    size: int
    digest: str
    stored_bytes: int
    chunks: int
    manifest: ManifestPin | None = None
    """The manifest every replica must hold, byte for byte; None only for versions published
    before the catalog pinned manifests (readers then check size, digest and counts)."""


@dataclass(frozen=True, slots=True)
class DataDisk:
    """One data disk of a version: its logical unit number and what its blob is.

    A data disk is a blob of its own (its own manifest, its own pin), stored in the same
    chunks and packs as every other disk of the gallery.
    """

    lun: int
    """0..63 (:data:`blobrep.core.names.MAX_LUN`), unique within the version."""
    blob: BlobInfo | None = None
    """None until the disk has been published (a daemon upload still to arrive)."""


@dataclass(frozen=True, slots=True)
class GalleryImageVersion:
    gallery: str
    image: str
    version: ImageVersion
    location: str
    """The source region: published there first, replicated from there."""
    publishing_profile: PublishingProfile
    safety_profile: SafetyProfile = SafetyProfile()
    provisioning_state: ProvisioningState = ProvisioningState.SUCCEEDED
    blob: BlobInfo | None = None
    """None until the source has been published."""
    regions: tuple[RegionStatus, ...] = field(default=())
    """Replication status per target region, in target order."""
    retention: RetentionMark | None = None
    """None until the definition's retention policy has acted on the version."""
    source_id: str | None = None
    """The resource id of the version this one's disk was created from; None for a disk
    published from a file or an upload."""
    data_disks: tuple[DataDisk, ...] = field(default=())
    """The version's data disks, by LUN (the OS disk is :attr:`blob`)."""

    def status(self, region: str) -> RegionStatus | None:
        for status in self.regions:
            if status.region == region:
                return status
        return None

    def is_completed_in(self, region: str) -> bool:
        status = self.status(region)
        return status is not None and status.state is ReplicationState.COMPLETED

    @property
    def published(self) -> bool:
        """True once the OS disk and every data disk have a blob."""
        return self.blob is not None and all(disk.blob is not None for disk in self.data_disks)

    @property
    def aggregated_state(self) -> AggregatedState:
        return aggregate_state(status.state for status in self.regions)
