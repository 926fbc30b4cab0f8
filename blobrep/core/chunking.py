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

With ``zero_run`` set (the default for publishing), a run of at least that many bytes of
whole, aligned, all-zero blocks (:mod:`blobrep.core.zero_runs`) ends a data segment: the
segment's last chunk ends where the run begins, however short, the run becomes zero chunks,
and FastCDC starts afresh after it. On a disk image this puts boundaries where the
filesystem's data meets free space, which does not move when a new version changes a file,
so a changed block costs the chunk around it and not a chunk reaching across free space into
the next file. On the Debian image chain of ``bench/real_images.py`` it cuts the new bytes of
a small upgrade to a quarter (see docs/architecture.md for the figures).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from blobrep.core.zero_runs import BLOCK_SIZE, cut_at_zero_runs
from blobrep.errors import InvalidParameterError

if TYPE_CHECKING:
    from pyfastcdc import FastCDC

ChunkingMethod = Literal["fastcdc", "fixed"]

KIB: Final = 1024
MIB: Final = 1024 * KIB

#: Defaults: about 1 MiB chunks, min 1/4, max 4x.
DEFAULT_AVG_SIZE: Final = 1 * MIB
#: The default zero run that ends a data segment: one block. Longer settings leave fewer,
#: larger chunks and more new bytes per version (measured in docs/architecture.md).
DEFAULT_ZERO_RUN: Final = BLOCK_SIZE
#: The longest ``zero_run`` accepted; a window must hold a whole chunk plus a run.
MAX_ZERO_RUN: Final = 1 * MIB

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
    zero_run: int | None = None
    """Zero runs of at least this many bytes end a data segment; None: FastCDC alone."""

    @classmethod
    def fastcdc(cls, avg_size: int = DEFAULT_AVG_SIZE, *, zero_run: int | None = None) -> ChunkingSpec:
        """Content-defined chunking with ``min = avg/4`` (rounded down to even) and ``max = 4 * avg``,
        and segments ended by zero runs if ``zero_run`` is given."""
        _check_range("average chunk size", avg_size, _AVG_SIZE_RANGE)  # before deriving from it
        return cls("fastcdc", avg_size // 8 * 2, avg_size, avg_size * 4, zero_run).validated()

    @classmethod
    def default(cls) -> ChunkingSpec:
        """What publishing uses unless told otherwise: 1 MiB FastCDC ended by one-block zero runs."""
        return cls.fastcdc(DEFAULT_AVG_SIZE, zero_run=DEFAULT_ZERO_RUN)

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
            if self.zero_run is not None:
                raise InvalidParameterError(
                    "fixed chunking takes no zero run; zero runs end fastcdc segments"
                )
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
        if self.zero_run is not None:
            self._check_zero_run(self.zero_run)
        return self

    def _check_zero_run(self, zero_run: int) -> None:
        _check_range("zero run", zero_run, (BLOCK_SIZE, MAX_ZERO_RUN))
        if zero_run % BLOCK_SIZE:
            raise InvalidParameterError(
                f"zero run {zero_run} is not a whole number of {BLOCK_SIZE} byte blocks"
            )
        if self.max_size % BLOCK_SIZE:
            # Zero chunks are max_size long; a run split into them must keep the block grid.
            raise InvalidParameterError(
                f"maximum chunk size {self.max_size} is not a multiple of {BLOCK_SIZE}, which"
                f" zero runs need: choose an average size that is a multiple of {BLOCK_SIZE // 4}"
            )

    def to_json(self) -> dict[str, Any]:
        """The form stored in a manifest (``zero_run`` only when set: format 1 has none)."""
        form: dict[str, Any] = {
            "method": self.method,
            "min_size": self.min_size,
            "avg_size": self.avg_size,
            "max_size": self.max_size,
        }
        if self.zero_run is not None:
            form["zero_run"] = self.zero_run
        return form


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

    def cut(
        self,
        window: bytes | bytearray | memoryview,
        *,
        final: bool,
        offset: int = 0,
        length: int | None = None,
        zeros: int = 0,
    ) -> list[int]:
        """Lengths of the complete chunks at the start of ``window``, in order.

        ``window`` (its first ``length`` bytes, if given) begins at a chunk boundary, ``offset``
        bytes into the blob (zero runs are found on blocks aligned to the blob). Unless
        ``final``, the bytes after the returned chunks are not yet a chunk and must lead the
        next window: at most ``max_size`` bytes, or less than ``max_size + zero_run + 4096``
        with zero runs. Pass windows larger than twice that, so each yields chunks; pass
        ``bytes`` or ``bytearray`` rather than a memoryview where zero runs are looked for,
        which saves a copy.

        ``zeros`` says that many zero bytes follow the window, known without being read (a
        hole in a sparse file): with zero runs only, not ``final``, the window ending on the
        block grid and ``zeros`` at least ``zero_run``. The chunks returned may then reach into
        them, and the tail to carry over may be zeros too.
        """
        size = len(window) if length is None else length
        if zeros:
            self._check_zeros(size, offset, zeros, final=final)
        elif size == 0:
            return []
        if self._cdc is None:
            step = self._spec.max_size
            lengths = [step] * (size // step)
            rest = size % step
            if final and rest:
                lengths.append(rest)
            return lengths
        if self._spec.zero_run is None:
            return self._content_defined(memoryview(window)[:size], final=final)
        if isinstance(window, memoryview):
            window = bytes(window[:size])
        return self._segmented(window, size, final=final, offset=offset, zeros=zeros)

    def _check_zeros(self, size: int, offset: int, zeros: int, *, final: bool) -> None:
        zero_run = self._spec.zero_run
        if zero_run is None or final or (offset + size) % BLOCK_SIZE or zeros < self.least_known_zeros:
            raise ValueError(
                f"{zeros} known zeros after {size} bytes at {offset} need zero runs, a window"
                " that is not final and ends on the block grid, and a long zero run of them"
                f" (at least {self.least_known_zeros} bytes)"
            )

    @property
    def least_known_zeros(self) -> int:
        """The fewest known zeros :meth:`cut` takes: a run long enough to end any chunk."""
        return max(self._spec.avg_size, self._spec.zero_run or 0)

    def _content_defined(self, view: memoryview, *, final: bool) -> list[int]:
        """FastCDC over one data segment; unless ``final``, its last piece is left uncut."""
        if not view:
            return []
        assert self._cdc is not None
        lengths = [chunk.length for chunk in self._cdc.cut_buf(view)]
        if not final:
            lengths.pop()
        return lengths

    def _segmented(
        self, buffer: bytes | bytearray, size: int, *, final: bool, offset: int, zeros: int
    ) -> list[int]:
        """Cut by FastCDC and zero runs (:func:`blobrep.core.zero_runs.cut_at_zero_runs`)."""
        spec = self._spec
        assert spec.zero_run is not None and self._cdc is not None
        cdc = self._cdc

        def content_cuts(view: memoryview) -> Iterator[int]:
            # Lazy: a chunk cut short by a zero run stops the scan there.
            return (chunk.length for chunk in cdc.cut_buf(view)) if view else iter(())

        return cut_at_zero_runs(
            buffer,
            size,
            final=final,
            offset=offset,
            zeros=zeros,
            sizes=(spec.min_size, spec.avg_size, spec.max_size, spec.zero_run),
            content_cuts=content_cuts,
        )
