"""Option values parsed into their domain before any command runs.

Each callable here is an argparse ``type=``: it turns the text of one option into a value that
the command can use as is (a finite number in range, a whole number of bytes, a path that can
be what the option needs), or raises :class:`argparse.ArgumentTypeError` with one line that
shows what was typed and what would be right. argparse then exits 2 with that line, before
the home is opened, so input that can never work never reaches the engine (where ``nan`` or
``-1`` used to surface as an internal error, or a fraction of a byte was quietly dropped).

The limits are part of each command's contract and are chosen here, in one place:

- ``wait --timeout``: 0 to 365 days. Waiting longer is no longer waiting; beyond it, values
  like ``1e30`` are typing mistakes, and an infinite or NaN deadline cannot be scheduled.
- ``wait --interval``: 0.1 s to 1 hour. A faster poll only loads the catalog; a slower one
  would outlast what a person watching it expects.
- ``--grace``: zero or more (units as for durations; at most 12 digits).
- sizes: a whole number of bytes. ``1.5`` bytes is refused, not rounded; a fraction of a
  larger unit (``1.5MiB``) is rounded down to whole bytes, as
  :func:`~blobrep.core.units.parse_size` documents. ``--chunk-size`` takes 64 bytes to 16 MiB
  (what some method accepts; the method chosen then narrows it), ``demo --size`` 1 byte to
  1 TiB (it writes two images and a restored copy).
- counts: whole ASCII numbers only (no ``1.5``, ``1e3``, ``nan`` or other scripts' digits):
  ``--level`` 1 to 19, ``--replica-count`` 1 to 100, ``--instance-count`` 1 to 1000,
  recommended vCPUs and memory 1 to 2**31-1 (the gallery API's 32-bit integers), ``--seed``
  0 to 2**64-1.
- VM names (``vm create -n``, ``vmss create -n``): 1 to 64 ASCII letters, digits, ``-``, ``_``
  and ``.``, starting with a letter or digit: a name is a directory inside ``--output-dir``.

Paths are refused when empty, blank or holding a NUL, and, where the option needs a
directory or a file to write, when they name something that exists and is of another kind:
a regular file where a directory is needed, a directory, FIFO or device where a file is to be
written. Those are checked with ``stat`` only, never by opening: a FIFO would block the command.
Whether a missing path may be created, and everything that depends on the home (does that
region exist?), is decided later by the command itself.

This module stays cheap to import (the CLI builds its parser on every start): what it needs
from heavier modules it imports inside the callables, which run only for options given.
"""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from jmespath.parser import ParsedResult

    from blobrep.engine.source import StreamSource
    from blobrep.storage.object_url import ObjectUrl

#: Bounds of ``sig image-version wait`` (seconds).
MAX_TIMEOUT: Final = 365 * 86400.0
MIN_INTERVAL: Final = 0.1
MAX_INTERVAL: Final = 3600.0
#: Bounds of ``vmss create --instance-count``.
MAX_INSTANCE_COUNT: Final = 1000
#: ``demo --size``: the demo writes two images and a restored copy, so a terabyte is far past useful.
MAX_DEMO_SIZE: Final = 1024**4
#: Recommended vCPUs and memory (GiB) are 32-bit signed in the gallery API this CLI mirrors.
MAX_RESOURCE: Final = 2**31 - 1
#: Seeds of the synthetic image.
MAX_SEED: Final = 2**64 - 1

_BINARY_UNITS: Final = (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))


def _fail(message: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(message)


def show_size(size: int) -> str:
    """``size`` bytes as a user could type it back: the largest binary unit that divides it."""
    for name, unit in _BINARY_UNITS:
        if size and size % unit == 0:
            return f"{size // unit}{name}"
    return "1 byte" if size == 1 else f"{size} bytes"


def show_seconds(seconds: float) -> str:
    """``seconds`` in the largest duration unit that divides it (``365d``, ``1h``, ``0.1s``)."""
    for name, unit in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % unit == 0:
            return f"{seconds / unit:g}{name}"
    return f"{seconds:g}s"


class Integer:
    """A whole number written in ASCII digits (an optional leading ``-``), from ``minimum`` to
    ``maximum``. argparse puts the option's name before the message."""

    __slots__ = ("maximum", "minimum")

    def __init__(self, minimum: int, maximum: int) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def __call__(self, text: str) -> int:
        digits = text.strip()
        body = digits[1:] if digits.startswith("-") else digits
        if not body or not body.isascii() or not body.isdigit():
            raise _fail(
                f"{text!r} is not a whole number: give one from {self.minimum} to {self.maximum},"
                f" for example {self._example()}"
            )
        # Far out of range either way; int() of thousands of digits is slow and may refuse.
        value = int(digits) if len(body) <= 40 else None
        if value is None or not self.minimum <= value <= self.maximum:
            raise _fail(
                f"{text!r} is out of range: give a whole number from {self.minimum} to {self.maximum}"
            )
        return value

    def _example(self) -> int:
        return max(self.minimum, min(self.maximum, 3))


class Duration:
    """Seconds written as ``parse_duration`` reads them (``90``, ``30s``, ``10m``, ``1h``, ``2d``),
    from ``minimum`` to ``maximum`` (None: no upper bound beyond what can be written)."""

    __slots__ = ("maximum", "minimum")

    def __init__(self, minimum: float, maximum: float | None) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def __call__(self, text: str) -> float:
        from blobrep.core.units import parse_duration
        from blobrep.errors import InvalidParameterError

        try:
            seconds = parse_duration(text)
        except InvalidParameterError:  # nan, inf, -1, 1e3, "": none of them a duration
            raise _fail(
                f"{text!r} is not a duration: give {self._range()} as a number of seconds or with a"
                " unit s, m, h or d, for example 30s or 10m"
            ) from None
        if seconds < self.minimum or (self.maximum is not None and seconds > self.maximum):
            raise _fail(f"{text!r} is out of range: give {self._range()}, for example 30s or 10m")
        return seconds

    def _range(self) -> str:
        if self.maximum is None:
            return f"{show_seconds(self.minimum)} or more"
        return f"{show_seconds(self.minimum)} to {show_seconds(self.maximum)}"


class Size:
    """A whole number of bytes written as ``parse_size`` reads them (``4096``, ``64KiB``,
    ``1.5MiB``), from ``minimum`` to ``maximum``."""

    __slots__ = ("maximum", "minimum")

    def __init__(self, minimum: int, maximum: int) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def __call__(self, text: str) -> int:
        from blobrep.core.units import parse_size
        from blobrep.errors import InvalidParameterError

        try:
            size = parse_size(text)
        except InvalidParameterError as exc:
            raise _fail(str(exc)) from None
        if not self.minimum <= size <= self.maximum:
            meant = "" if text.strip() == str(size) else f" ({size} bytes)"
            raise _fail(
                f"{text!r}{meant} is out of range: give a size from {show_size(self.minimum)}"
                f" to {show_size(self.maximum)}"
            )
        return size


def jmespath_query(text: str) -> ParsedResult:
    """A ``--query`` option: a JMESPath expression, compiled before the command runs."""
    from blobrep.cli.output import compile_query

    try:
        return compile_query(text)
    except ValueError as exc:
        raise _fail(
            f'{text!r} is not a JMESPath expression: {exc} (e.g. "[].name" or "{{id: id}}")'
        ) from None


def chunk_size(text: str) -> int:
    """A chunk size any chunking method may take; the method's own range is checked with it."""
    from blobrep.core.chunking import MAX_CHUNK_SIZE, MIN_CHUNK_SIZE

    return Size(MIN_CHUNK_SIZE, MAX_CHUNK_SIZE)(text)


def zero_run(text: str) -> int | None:
    """``off`` (None: FastCDC alone), or the shortest zero run that ends a chunk: whole 4 KiB blocks."""
    from blobrep.core.chunking import MAX_ZERO_RUN
    from blobrep.core.zero_runs import BLOCK_SIZE

    if text.strip().lower() == "off":
        return None
    size = Size(BLOCK_SIZE, MAX_ZERO_RUN)(text)
    if size % BLOCK_SIZE:
        raise _fail(
            f"{text!r} is not a whole number of {BLOCK_SIZE} byte blocks: give 4KiB, 8KiB, ... or off"
        )
    return size


def pack_size(text: str) -> int | None:
    """``off`` (None: each chunk stored on its own), or the size at which a pack is full."""
    from blobrep.core.packs import MAX_PACK_SIZE

    if text.strip().lower() == "off":
        return None
    return Size(1, MAX_PACK_SIZE // 2)(text)


def zstd_level(text: str) -> int:
    """A zstd level blobrep accepts (``MIN_LEVEL`` to ``MAX_LEVEL`` of the codec)."""
    from blobrep.core.codec import MAX_LEVEL, MIN_LEVEL

    return Integer(MIN_LEVEL, MAX_LEVEL)(text)


def replica_count(text: str) -> int:
    """Replicas per region: 1 to ``MAX_REPLICA_COUNT``."""
    from blobrep.core.gallery import MAX_REPLICA_COUNT

    return Integer(1, MAX_REPLICA_COUNT)(text)


def region(text: str) -> str:
    """A region name in either spelling (``westus2``, ``"West US 2"``), returned as typed.

    Only its shape is checked here; whether the home has such a region is the command's to say.
    """
    from blobrep.core.regions import normalize_region
    from blobrep.errors import InvalidRegionError

    try:
        normalize_region(text)
    except InvalidRegionError as exc:
        raise _fail(str(exc)) from None
    return text


def vm_name(text: str) -> str:
    """The name of a VM or a scale set (``vm create -n``, ``vmss create -n``): one path
    component inside the output directory, so no ``/``, no ``..``, nothing hidden."""
    from blobrep.core.vm_names import validate_vm_name
    from blobrep.errors import InvalidNameError

    try:
        return validate_vm_name(text)
    except InvalidNameError as exc:
        raise _fail(str(exc)) from None


def target_region(text: str) -> str:
    """One ``--target-regions`` token, ``NAME[=COUNT][=STORAGE_TYPE]``, returned as typed."""
    from blobrep.core.regions import parse_target_region
    from blobrep.errors import InvalidRegionError

    try:
        parse_target_region(text)
    except InvalidRegionError as exc:
        raise _fail(str(exc)) from None
    return text


def regional_flag(text: str) -> tuple[str, bool]:
    """``REGION=true`` or ``REGION=false`` (also yes/no, 1/0), for per-region flags."""
    name, separator, flag = text.partition("=")
    if not separator or not name.strip():
        raise _fail(f"invalid {text!r}: use REGION=true or REGION=false, for example westus2=true")
    region(name)
    value = flag.strip().lower()
    if value in ("true", "yes", "1"):
        return name, True
    if value in ("false", "no", "0"):
        return name, False
    raise _fail(f"invalid {text!r}: the flag {flag!r} is not true or false; use REGION=true or REGION=false")


def _path(text: str) -> Path:
    """``text`` as a path, refusing what no file system can name or what only a slip writes."""
    if not text.strip():
        # Path("") is ".", so an empty variable would quietly mean the current directory.
        raise _fail(f"the path {text!r} is empty: give a file or directory, for example ./images")
    if "\0" in text:
        raise _fail(f"the path {text!r} holds a NUL character, which no file name can contain")
    return Path(text)


def _kind(path: Path) -> str | None:
    """What ``path`` is (following links), or None if it cannot be looked at (missing, ...)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None  # missing, or a parent that is a file: the command says what it needs
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def source_file(text: str) -> Path | StreamSource:
    """A file to read: not empty or blank, no NUL; or ``-``, standard input as a stream.

    What a path names (a regular file, not a FIFO or a device) is checked where it is opened,
    which is the only check that cannot go stale; a file named ``-`` is given as ``./-``.
    ``-`` is refused when standard input is a terminal (nobody types a disk image; it is a
    pipe forgotten) or is closed.
    """
    if text != "-":
        return _path(text)
    from blobrep.engine.source import StreamSource
    from blobrep.errors import SourceError

    if os.isatty(0):
        raise _fail(
            "'-' reads the image from standard input, which is a terminal: pipe the image in"
            " (qemu-img convert -O raw disk.qcow2 /dev/stdout | blobrep ... -) or give a file"
        )
    try:
        return StreamSource.stdin()
    except SourceError as exc:
        raise _fail(str(exc)) from None


def directory(text: str) -> Path:
    """A directory, or a path where one may be created: not an existing file, FIFO or device."""
    result = _path(text)
    kind = _kind(result)
    if kind is not None and kind != "a directory":
        raise _fail(f"{text!r} is {kind}, not a directory: give a directory, or a path where one can be made")
    return result


def store_place(text: str) -> Path | ObjectUrl:
    """Where a store is: ``s3://BUCKET/PREFIX``, ``az://CONTAINER/PREFIX``, or a directory."""
    if "://" in text:
        from blobrep.errors import InvalidInputError
        from blobrep.storage.object_url import ObjectUrl

        try:
            return ObjectUrl.parse(text)
        except InvalidInputError as exc:
            raise _fail(str(exc)) from None
    return directory(text)


def output_file(text: str) -> Path:
    """A file to (re)write: missing or a regular file, never a directory, FIFO or device.

    Output is written to a temporary name and renamed over the path, so a device or a FIFO
    there would be replaced (or, opened directly, would block or swallow the data).
    """
    result = _path(text)
    kind = _kind(result)
    if kind is not None and kind != "a regular file":
        raise _fail(f"{text!r} is {kind}: give the path of a regular file to write")
    return result


def data_disk(text: str) -> tuple[int, Path]:
    """``LUN=PATH``: a data disk at LUN 0..63 published from the regular file PATH."""
    from blobrep.core.names import MAX_LUN

    lun, sep, path = text.partition("=")
    if not sep or not (lun.isascii() and lun.isdigit()) or not 0 <= int(lun) <= MAX_LUN:
        raise _fail(f"{text!r} is not LUN=PATH with a LUN from 0 to {MAX_LUN}, for example 0=data0.img")
    result = _path(path)
    kind = _kind(result)
    if kind != "a regular file":
        raise _fail(f"data disk {path!r} is {kind or 'missing'}: give the path of an image file")
    return int(lun), result
