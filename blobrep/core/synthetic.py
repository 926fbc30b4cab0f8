"""Deterministic VM-like disk images, for the demo, tests and benchmarks.

Real images are runs of zeros (unallocated space), incompressible data (packed binaries,
compressed archives) and compressible text-like data (configuration, logs, source). This
generator lays out regions of 64 KiB to 16 MiB, aligned to 4 KiB, drawn with the proportions
seen on real images (about 30 % zeros, 30 % random, 40 % text), all from one seed, so the same
seed and size give the same bytes on every machine.

Text is made of phrases of words from a seeded vocabulary, picked by random 16-bit indices:
it compresses with zstd about as well as real text does, and is generated at hundreds of MB/s.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Iterator
from typing import Final

_ALIGN: Final = 4096
_MIN_REGION: Final = 64 * 1024
_MAX_REGION: Final = 16 * 1024 * 1024
_PIECE: Final = 4 * 1024 * 1024
_LETTERS: Final = "etaoinshrdlcumwfgypbvkjxqz"
_LETTER_WEIGHTS: Final = (
    12,
    9,
    8,
    7,
    7,
    7,
    6,
    6,
    6,
    4,
    4,
    3,
    3,
    2,
    2,
    2,
    2,
    2,
    2,
    1.5,
    1,
    0.8,
    0.2,
    0.2,
    0.1,
    0.1,
)
_KINDS: Final = ("zero", "random", "text")
_KIND_WEIGHTS: Final = (0.30, 0.30, 0.40)


def _phrase_table(rng: random.Random) -> list[bytes]:
    words = ["".join(rng.choices(_LETTERS, _LETTER_WEIGHTS, k=rng.randint(2, 11))) for _ in range(8192)]
    phrases = []
    for _ in range(65536):
        text = " ".join(rng.choices(words, k=rng.randint(3, 14)))
        roll = rng.random()
        if roll < 0.15:
            text += f" {rng.randint(0, 10**6)}"
        text += "\n" if roll > 0.85 else ". "
        phrases.append(text.encode())
    return phrases


class SyntheticImage:
    """A reproducible VM-like image of ``size`` bytes from ``seed``."""

    def __init__(self, size: int, seed: int = 12345) -> None:
        if size < 0:
            raise ValueError(f"image size must not be negative, got {size}")
        self.size = size
        self.seed = seed

    def blocks(self) -> Iterator[bytes]:
        """The image's bytes in order, in pieces of at most 4 MiB."""
        rng = random.Random(self.seed)
        phrases = _phrase_table(random.Random(self.seed ^ 0x5EED))
        remaining = self.size
        while remaining > 0:
            kind = rng.choices(_KINDS, _KIND_WEIGHTS)[0]
            length = rng.randrange(_MIN_REGION, _MAX_REGION + 1, _ALIGN)
            length = min(length, remaining)
            remaining -= length
            while length > 0:
                piece = min(length, _PIECE)
                length -= piece
                if kind == "zero":
                    yield bytes(piece)
                elif kind == "random":
                    yield rng.randbytes(piece)
                else:
                    yield _text(rng, phrases, piece)


def _text(rng: random.Random, phrases: list[bytes], length: int) -> bytes:
    pieces: list[bytes] = []
    produced = 0
    while produced < length:
        indices = array("H")
        indices.frombytes(rng.randbytes(2 * max(64, (length - produced) // 40)))
        block = b"".join([phrases[index] for index in indices])
        pieces.append(block)
        produced += len(block)
    return b"".join(pieces)[:length]


def rewrite_runs(size: int, fraction: float, runs: int, seed: int) -> list[tuple[int, bytes]]:
    """``runs`` (offset, new bytes) edits that rewrite ``fraction`` of an image in place.

    Used to make the "next version" of an image: like changed files, scattered at random.
    """
    rng = random.Random(seed)
    run_length = max(1, int(size * fraction) // max(1, runs))
    edits = []
    for _ in range(runs):
        offset = rng.randrange(0, max(1, size - run_length))
        edits.append((offset, rng.randbytes(min(run_length, size - offset))))
    return sorted(edits)
