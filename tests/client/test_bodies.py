"""What a command was given, sent as a body the daemon reads back into the same options, so
the service behind the daemon is called as a local command calls it."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from blobrep.client.bodies import definition_body, version_body
from blobrep.client.resources import version_from
from blobrep.client.versions import flagged_targets
from blobrep.core.gallery import GalleryImageVersion, PublishingProfile, TargetRegion
from blobrep.core.version import ImageVersion
from blobrep.daemon import arm
from blobrep.daemon.galleries import _definition_fields
from blobrep.daemon.version_bodies import version_options
from blobrep.service import DefinitionFields, VersionOptions
from blobrep.service.version_options import targets_from
from blobrep.service.views import version_view
from tests.core.strategies import few_regions, replica_counts, storage_types, target_lists

CONTENT = "/galleries/g/images/i/versions/1.0.0/content"
maybe_text = st.none() | st.text(max_size=20)
maybe_count = st.none() | st.integers(min_value=1, max_value=2**31 - 1)


def _token(target: TargetRegion) -> str:
    parts = [target.name]
    if target.replica_count is not None:
        parts.append(str(target.replica_count))
    if target.storage_type is not None:
        parts.append(str(target.storage_type))
    return "=".join(parts)


@st.composite
def version_options_given(draw: st.DrawFn) -> VersionOptions:
    """Options as the command line gives them: tokens, per-region flags, the rest or None."""
    targets = draw(st.none() | target_lists())
    flagged = draw(st.none() | st.dictionaries(few_regions, st.booleans(), max_size=3))
    return VersionOptions(
        target_regions=None if targets is None else [_token(target) for target in targets],
        replica_count=draw(st.none() | replica_counts),
        storage_type=draw(st.none() | storage_types.map(str)),
        exclude_from_latest=draw(st.none() | st.booleans()),
        regional_exclude_from_latest=flagged,
        end_of_life=draw(st.none() | st.sampled_from(["2027-12-31", "2030-01-01T10:00:00+02:00"])),
        allow_replicated_location_deletion=draw(st.none() | st.booleans()),
    )


@given(version_options_given(), st.none() | few_regions)
def test_a_version_body_reads_back_as_the_options_given(
    options: VersionOptions, location: str | None
) -> None:
    body = version_body(options, location=location, source=CONTENT)
    read = version_options(body, content_path=CONTENT, create=True)
    given_targets = options.target_regions is not None or options.regional_exclude_from_latest is not None
    if given_targets:
        expected = targets_from(options.target_regions, options.regional_exclude_from_latest)
        assert targets_from(read.target_regions, read.regional_exclude_from_latest) == expected
    else:
        assert read.target_regions is None and read.regional_exclude_from_latest is None
    unchanged = ("target_regions", "regional_exclude_from_latest")
    for field in dataclasses.fields(VersionOptions):
        if field.name not in unchanged:
            assert getattr(read, field.name) == getattr(options, field.name), field.name
    assert body.get("location") == location


fields_given = st.builds(
    DefinitionFields,
    publisher=maybe_text,
    offer=maybe_text,
    sku=maybe_text,
    os_type=maybe_text,
    os_state=maybe_text,
    hyper_v_generation=maybe_text,
    architecture=maybe_text,
    min_vcpus=maybe_count,
    max_vcpus=maybe_count,
    min_memory_gib=maybe_count,
    max_memory_gib=maybe_count,
    end_of_life=maybe_text,
    description=maybe_text,
)


@given(fields_given)
def test_a_definition_body_reads_back_as_the_fields_given(fields: DefinitionFields) -> None:
    assert _definition_fields(definition_body(fields)) == fields


@st.composite
def flagged_versions(draw: st.DrawFn) -> tuple[GalleryImageVersion, dict[str, bool]]:
    targets = draw(target_lists(min_size=1))
    profile = PublishingProfile(
        tuple(targets),
        replica_count=draw(replica_counts),
        storage_type=draw(storage_types),
        exclude_from_latest=draw(st.booleans()),
    )
    names = [target.name for target in targets]
    flags = draw(st.dictionaries(st.sampled_from(names), st.booleans(), min_size=1))
    return GalleryImageVersion("g", "i", ImageVersion(1, 0, 0), names[0], profile), flags


@given(flagged_versions())
def test_flags_alone_keep_the_targets_and_set_their_flags(
    case: tuple[GalleryImageVersion, dict[str, bool]],
) -> None:
    """The target list sent for flags given without targets makes, for every region, the
    effective count, storage type and flag a local update makes (it keeps the targets and
    sets their flags)."""
    version, flags = case
    profile = version.publishing_profile
    local = PublishingProfile(
        tuple(
            dataclasses.replace(target, exclude_from_latest=flags[target.name])
            if target.name in flags
            else target
            for target in profile.target_regions
        ),
        profile.replica_count,
        profile.storage_type,
        profile.exclude_from_latest,
    )
    served = version_from(arm.resource(version_view(version, expand_replication=True)))
    remote = dataclasses.replace(profile, target_regions=tuple(flagged_targets(served, flags)))
    for mine, theirs in zip(remote.target_regions, local.target_regions, strict=True):
        assert mine.name == theirs.name
        assert remote.effective_replica_count(mine) == local.effective_replica_count(theirs)
        assert remote.effective_storage_type(mine) == local.effective_storage_type(theirs)
        assert remote.excluded_from_latest(mine.name) == local.excluded_from_latest(theirs.name)
