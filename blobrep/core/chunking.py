"""Chunk boundary finding: content-defined (FastCDC 2020) or fixed-size, over a window.

The engine reads a file window by window and asks :meth:`BoundaryFinder.cut` where the
chunks in the window end. With content-defined chunking a cut depends only on the bytes of
its own chunk (the gear hash restarts at every chunk, and a chunk never exceeds ``max_size``),
so every piece of a window except the last is final: the last may continue into the next
window and is carried over. With ``final=True`` (end of input) the last piece is a chunk too.
Boundaries are therefore the same whatever the window size, which the tests check.

Content-defined boundaries are why a new version of an image shares most chunks with the old
one: inserting bytes moves only the boundaries near the insertion. The FastCDC implementation
is ``pyfastcdc`` (Cython, releases the GIL, so windows can be cut on a worker thread).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from blobrep.errors import InvalidParameterError

if TYPE_CHECKING:
    from pyfastcdc import FastCDC

ChunkingMethod = Literal["fastcdc", "fixed"]

KIB: Final = 1024
MIB: Final = 1024 * KIB

#: Defaults: about 1 MiB chunks, min 1/4, max 4x.
DEFAULT_AVG_SIZE: Final = 1 * MIB

# Bounds of the FastCDC implementation; fixed-size chunks share the max bound.
_MIN_SIZE_RANGE: Final = (64, 1 * MIB)
_AVG_SIZE_RANGE: Final = (256, 4 * MIB)
_MAX_SIZE_RANGE: Final = (1 * KIB, 16 * MIB)

#: The smallest and largest chunk size any method accepts (the average of fastcdc or the
#: size of fixed chunks lies within; each method narrows it, see :meth:`ChunkingSpec.validated`).
MIN_CHUNK_SIZE: Final = _MIN_SIZE_RANGE[0]
MAX_CHUNK_SIZE: Final = _MAX_SIZE_RANGE[1]


def _check_range(what: str, value: int, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int):
        # A float would be cut at a fraction of a byte, and 1.5 must not quietly become 1.
        raise InvalidParameterError(
            f"{what} {value!r} is not a whole number of bytes: choose {low} to {high} bytes"
        )
    if not low <= value <= high:
        raise InvalidParameterError(f"{what} {value!r} is out of range: choose {low} to {high} bytes")


@dataclass(frozen=True, slots=True)
class ChunkingSpec:
    """How a blob is cut: the method and its sizes (recorded in every manifest)."""

    method: ChunkingMethod
    min_size: int
    avg_size: int
    max_size: int

    @classmethod
    def fastcdc(cls, avg_size: int = DEFAULT_AVG_SIZE) -> ChunkingSpec:
        """Content-defined chunking with ``min = avg/4`` (rounded down to even) and ``max = 4 * avg``."""
        _check_range("average chunk size", avg_size, _AVG_SIZE_RANGE)  # before deriving from it
        return cls("fastcdc", avg_size // 8 * 2, avg_size, avg_size * 4).validated()

    @classmethod
    def fixed(cls, size: int = 4 * MIB) -> ChunkingSpec:
        """Fixed-size chunks of ``size`` bytes (the last one may be shorter)."""
        return cls("fixed", size, size, size).validated()

    def validated(self) -> ChunkingSpec:
        """Return ``self`` if its sizes are usable, else raise :class:`InvalidParameterError`."""
        if self.method == "fixed":
            _check_range("fixed chunk size", self.avg_size, (_MIN_SIZE_RANGE[0], _MAX_SIZE_RANGE[1]))
            if not self.min_size == self.avg_size == self.max_size:
                raise InvalidParameterError("fixed chunking needs min_size == avg_size == max_size")
            return self
        if self.method != "fastcdc":
            raise InvalidParameterError(
                f"chunking method {self.method!r} is unknown: choose 'fastcdc' or 'fixed'"
            )
        _check_range("minimum chunk size", self.min_size, _MIN_SIZE_RANGE)
        if self.min_size % 2:
            # The FastCDC cut loop steps two bytes at a time from min_size rounded down to
            # even, so an odd minimum would let chunks one byte short of it through.
            raise InvalidParameterError(f"minimum chunk size {self.min_size} must be even")
        _check_range("average chunk size", self.avg_size, _AVG_SIZE_RANGE)
        _check_range("maximum chunk size", self.max_size, _MAX_SIZE_RANGE)
        if not self.min_size <= self.avg_size <= self.max_size:
            raise InvalidParameterError(
                f"chunk sizes must satisfy min <= avg <= max, got {self.min_size},"
                f" {self.avg_size}, {self.max_size}"
            )
        return self

    def to_json(self) -> dict[str, Any]:
        """The form stored in a manifest."""
        return {
            "method": self.method,
            "min_size": self.min_size,
            "avg_size": self.avg_size,
            "max_size": self.max_size,
        }


class BoundaryFinder:
    """Finds chunk ends in consecutive windows of one input.

    Not safe to share between threads at once; make one per input.
    """

    __slots__ = ("_cdc", "_spec")

    def __init__(self, spec: ChunkingSpec) -> None:
        self._spec = spec.validated()
        self._cdc: FastCDC | None = None
        if spec.method == "fastcdc":
            # Loaded here, not at the top: most commands never chunk anything.
            from pyfastcdc import FastCDC

            self._cdc = FastCDC(spec.avg_size, min_size=spec.min_size, max_size=spec.max_size)

    @property
    def spec(self) -> ChunkingSpec:
        return self._spec

    def cut(self, window: bytes | bytearray | memoryview, *, final: bool) -> list[int]:
        """Lengths of the complete chunks at the start of ``window``, in order.

        ``window`` begins at a chunk boundary. Unless ``final``, the bytes after the
        returned chunks are not yet a chunk and must lead the next window; callers
        should pass windows of at least ``max_size`` bytes so progress is guaranteed.
        """
        size = len(window)
        if size == 0:
            return []
        if self._cdc is None:
            step = self._spec.max_size
            lengths = [step] * (size // step)
            rest = size % step
            if final and rest:
                lengths.append(rest)
            return lengths
        lengths = [chunk.length for chunk in self._cdc.cut_buf(window)]
        if not final:
            lengths.pop()
        return lengths
