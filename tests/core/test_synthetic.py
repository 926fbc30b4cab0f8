"""Deterministic VM-like images and the edits that make their next version."""

from __future__ import annotations

import hashlib

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from blobrep.core.synthetic import SyntheticImage, rewrite_runs

MIB = 1 << 20
BLOCK = 4096
TEXT_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789 .\n")
IMAGE_SIZE = 64 * MIB


def sha256_of(image: SyntheticImage) -> str:
    digest = hashlib.sha256()
    for block in image.blocks():
        digest.update(block)
    return digest.hexdigest()


def kind_of(block: bytes) -> str:
    if block.count(0) == len(block):
        return "zero"
    if frozenset(block) <= TEXT_BYTES:
        return "text"
    return "random"


@pytest.fixture(scope="module")
def image() -> bytes:
    """The default-seed image the demo and benchmarks use, large enough for many regions."""
    return b"".join(SyntheticImage(IMAGE_SIZE).blocks())


@pytest.fixture(scope="module")
def kinds(image: bytes) -> list[str]:
    return [kind_of(image[start : start + BLOCK]) for start in range(0, len(image), BLOCK)]


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 65537, 3 * MIB + 5, 9 * MIB])
def test_blocks_add_up_to_exactly_the_size(size: int) -> None:
    blocks = list(SyntheticImage(size, seed=size).blocks())
    assert sum(len(block) for block in blocks) == size
    assert all(0 < len(block) <= 4 * MIB for block in blocks)


def test_the_same_seed_gives_the_same_bytes() -> None:
    assert sha256_of(SyntheticImage(3 * MIB, seed=7)) == sha256_of(SyntheticImage(3 * MIB, seed=7))
    # Iterating twice over one image gives the same bytes too.
    image = SyntheticImage(2 * MIB, seed=9)
    assert sha256_of(image) == sha256_of(image)


def test_different_seeds_give_different_bytes() -> None:
    all_zero = hashlib.sha256(bytes(2 * MIB)).hexdigest()
    hashes = [sha256_of(SyntheticImage(2 * MIB, seed=seed)) for seed in range(6)]
    # A seed whose first region is zeros gives zeros, like any other such seed; the rest differ.
    distinct = [digest for digest in hashes if digest != all_zero]
    assert len(distinct) >= 3
    assert len(set(distinct)) == len(distinct)


def test_a_negative_size_is_refused() -> None:
    with pytest.raises(ValueError, match="-1"):
        SyntheticImage(-1)


def test_image_is_zero_random_and_text_regions(image: bytes, kinds: list[str]) -> None:
    counts = {kind: kinds.count(kind) for kind in ("zero", "random", "text")}
    # Regions are at least 64 KiB (16 blocks); each kind shows up.
    assert all(count >= 16 for count in counts.values()), counts
    assert sum(counts.values()) == len(image) // BLOCK


def test_regions_are_4k_aligned(image: bytes, kinds: list[str]) -> None:
    # Each 4 KiB block is entirely one kind: random blocks look random throughout (a block
    # mixing text or zeros in would have far fewer distinct byte values).
    for index, kind in enumerate(kinds):
        if kind == "random":
            assert len(set(image[index * BLOCK : (index + 1) * BLOCK])) > 200


def test_regions_are_at_least_64_kib(kinds: list[str]) -> None:
    runs: list[int] = []
    previous = None
    for kind in kinds:
        if kind == previous:
            runs[-1] += 1
        else:
            runs.append(1)
            previous = kind
    # The last region may be cut short by the end of the image.
    assert min(runs[:-1]) >= 16
    assert len(runs) >= 4


def test_whole_image_compresses_like_a_vm_image(image: bytes) -> None:
    ratio = len(image) / len(zstandard.ZstdCompressor(level=1).compress(image))
    assert 1.5 <= ratio <= 4


def test_text_compresses_like_text_and_random_does_not(image: bytes, kinds: list[str]) -> None:
    def joined(kind: str) -> bytes:
        return b"".join(image[i * BLOCK : (i + 1) * BLOCK] for i, k in enumerate(kinds) if k == kind)

    compressor = zstandard.ZstdCompressor(level=1)
    text = joined("text")
    random_data = joined("random")
    assert 1.5 <= len(text) / len(compressor.compress(text)) <= 4
    assert len(compressor.compress(random_data)) >= len(random_data)
    # Text is words and sentences, not one repeated phrase.
    assert text.count(b" ") > len(text) // 20
    assert text.count(b". ") + text.count(b"\n") > len(text) // 200


# --- edits ------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    size=st.integers(min_value=1024, max_value=16 * MIB),
    fraction=st.floats(min_value=0.001, max_value=0.5),
    runs=st.integers(min_value=1, max_value=50),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_rewrite_runs_cover_the_fraction_inside_the_image(
    size: int, fraction: float, runs: int, seed: int
) -> None:
    wanted = int(size * fraction)
    if wanted < runs:
        runs = max(1, wanted)
    edits = rewrite_runs(size, fraction, runs, seed)
    assert len(edits) == runs
    assert edits == sorted(edits)
    lengths = {len(data) for _, data in edits}
    assert len(lengths) == 1  # every run is as long as the others
    for offset, data in edits:
        assert offset >= 0
        assert offset + len(data) <= size
        assert data
    total = sum(len(data) for _, data in edits)
    # Runs split the wanted bytes evenly, so at most one byte per run is lost to rounding.
    assert max(1, wanted - runs) <= total <= max(wanted, runs)


def test_rewrite_runs_are_deterministic_for_a_seed() -> None:
    assert rewrite_runs(10 * MIB, 0.05, 20, seed=1) == rewrite_runs(10 * MIB, 0.05, 20, seed=1)
    assert rewrite_runs(10 * MIB, 0.05, 20, seed=1) != rewrite_runs(10 * MIB, 0.05, 20, seed=2)


def test_rewrite_runs_are_scattered() -> None:
    edits = rewrite_runs(64 * MIB, 0.01, 32, seed=3)
    offsets = [offset for offset, _ in edits]
    # Not bunched at the start: they reach into the last quarter and start in the first.
    assert min(offsets) < 16 * MIB
    assert max(offsets) > 48 * MIB


def test_applying_rewrite_runs_changes_about_the_fraction() -> None:
    size = 4 * MIB
    original = bytearray(b"".join(SyntheticImage(size, seed=5).blocks()))
    edited = bytearray(original)
    for offset, data in rewrite_runs(size, 0.1, 8, seed=5):
        edited[offset : offset + len(data)] = data
    assert len(edited) == size
    changed = sum(
        1
        for start in range(0, size, BLOCK)
        if edited[start : start + BLOCK] != original[start : start + BLOCK]
    )
    # Runs may overlap, so at most about a tenth of the blocks change (plus partly covered ones).
    assert 0 < changed <= size // BLOCK // 10 + 2 * 8
