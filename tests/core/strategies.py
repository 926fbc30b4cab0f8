"""Hypothesis strategies shared by the core tests."""

from __future__ import annotations

import random

from hypothesis import strategies as st

from blobrep.core.chunking import ChunkingSpec
from blobrep.core.gallery import MAX_REPLICA_COUNT, StorageType, TargetRegion
from blobrep.core.version import ImageVersion

HEX = "0123456789abcdef"

digests = st.text(alphabet=HEX, min_size=32, max_size=32)

_PART = st.integers(min_value=0, max_value=2**31 - 1)
#: Every valid image version.
versions = st.builds(ImageVersion, _PART, _PART, _PART)


def gallery_names(max_length: int = 80) -> st.SearchStrategy[str]:
    """Valid gallery names of 1 to ``max_length`` characters."""
    middle = max_length - 2
    return st.from_regex(rf"[A-Za-z0-9]([A-Za-z0-9._]{{0,{middle}}}[A-Za-z0-9_])?", fullmatch=True)


def image_names(max_length: int = 80) -> st.SearchStrategy[str]:
    """Valid image definition names of 1 to ``max_length`` characters."""
    middle = max_length - 2
    return st.from_regex(rf"[A-Za-z0-9]([A-Za-z0-9._-]{{0,{middle}}}[A-Za-z0-9_])?", fullmatch=True)


@st.composite
def blob_bytes(draw: st.DrawFn, max_size: int = 1 << 20) -> bytes:
    """Bytes shaped like a disk image: random runs, zero runs and short repeating patterns.

    Drawn as (kind, length, seed) segments and expanded with a seeded generator, so a MiB
    of data costs hypothesis a few choices, not a MiB of them.
    """
    segments = draw(
        st.lists(
            st.tuples(
                st.sampled_from(("random", "zero", "pattern")),
                st.integers(min_value=0, max_value=max_size),
                st.integers(min_value=0, max_value=2**32),
            ),
            max_size=6,
        )
    )
    parts: list[bytes] = []
    budget = max_size
    for kind, length, seed in segments:
        length = min(length, budget)
        budget -= length
        rng = random.Random(seed)
        if kind == "random":
            parts.append(rng.randbytes(length))
        elif kind == "zero":
            parts.append(bytes(length))
        else:
            unit = rng.randbytes(rng.randint(1, 64))
            parts.append((unit * (length // len(unit) + 1))[:length])
    return b"".join(parts)


def fastcdc_specs(min_avg: int = 256, max_avg: int = 16384) -> st.SearchStrategy[ChunkingSpec]:
    return st.integers(min_value=min_avg, max_value=max_avg).map(ChunkingSpec.fastcdc)


def fixed_specs(min_size: int = 64, max_size: int = 65536) -> st.SearchStrategy[ChunkingSpec]:
    return st.integers(min_value=min_size, max_value=max_size).map(ChunkingSpec.fixed)


def chunking_specs() -> st.SearchStrategy[ChunkingSpec]:
    return st.one_of(fastcdc_specs(), fixed_specs())


# --- regions and target regions ----------------------------------------------------------------

#: Normalised region names, the one spelling stored: a letter, then 1 to 49 letters or digits.
region_names = st.from_regex(r"[a-z][a-z0-9]{1,49}", fullmatch=True)

#: A small pool of regions, so that generated lists share and repeat regions often.
FEW_REGIONS = ("eastus", "eastus2", "westus", "westcentralus", "ukwest", "brazilsouth")
few_regions = st.sampled_from(FEW_REGIONS)

storage_types = st.sampled_from(StorageType)
replica_counts = st.integers(min_value=1, max_value=MAX_REPLICA_COUNT)


@st.composite
def region_spellings(draw: st.DrawFn, name: str) -> str:
    """Another spelling of the normalised region ``name``: any letter case, spaces anywhere."""
    letters = [char.upper() if draw(st.booleans()) else char for char in name]
    spaced = "".join(char + " " * draw(st.integers(min_value=0, max_value=2)) for char in letters)
    before, after = draw(st.sampled_from(["", " ", "\t", "  "])), draw(st.sampled_from(["", " ", "\n"]))
    return before + spaced + after


def any_case(text: str) -> st.SearchStrategy[str]:
    """``text`` with each letter in either case."""
    return st.tuples(*(st.sampled_from(sorted({char.lower(), char.upper()})) for char in text)).map("".join)


def target_regions(
    names: st.SearchStrategy[str] = few_regions, *, storage: bool = True
) -> st.SearchStrategy[TargetRegion]:
    """Target regions with each override either set or left to the global value."""
    return st.builds(
        TargetRegion,
        names,
        st.none() | replica_counts,
        st.none() | storage_types if storage else st.none(),
        st.none() | st.booleans(),
    )


def target_lists(
    names: st.SearchStrategy[str] = few_regions, *, storage: bool = True, min_size: int = 0
) -> st.SearchStrategy[list[TargetRegion]]:
    """Lists of target regions, each region at most once."""
    return st.lists(
        target_regions(names, storage=storage), min_size=min_size, max_size=6, unique_by=lambda t: t.name
    )
