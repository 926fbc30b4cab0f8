"""The space of ``blobrep`` argument vectors: every command and option, hostile values, and which
of them can never work.

Commands and options are read from :func:`blobrep.cli.main.build_parser`, so an option added
later is fuzzed without anyone listing it here. What each option accepts is read from its
argparse ``type`` (the callables of :mod:`blobrep.cli._types` carry their bounds) and
``choices``; :func:`never_works` then decides, with rules written out here rather than by
calling the code under test, whether a value lies outside the option's domain.
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import re
import shutil
import stat
from collections.abc import Iterator, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

import jmespath
from jmespath.exceptions import JMESPathError

from blobrep.cli import _ids, _types, deploy
from blobrep.cli._common import parse_bool
from blobrep.cli.main import build_parser, main
from blobrep.core.codec import MAX_LEVEL, MIN_LEVEL
from blobrep.core.gallery import MAX_REPLICA_COUNT
from blobrep.core.selection import Policy
from blobrep.errors import InvalidInputError
from blobrep.service import SyntheticImage
from blobrep.storage.object_url import ObjectUrl

GLOBAL: Final[tuple[str, ...]] = ("(global)",)

#: Values no option should choke on; ``{file}`` and friends are replaced by paths in a sandbox.
HOSTILE: Final = (
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "1",
    "1" + "0" * 30,
    "1.5",
    "",
    " ",
    "名前",
    "\u202e",
    "a\x00b",
    "../../etc",
    "{file}",
    "{directory}",
    "/dev/null",
    "/dev/zero",
    "{fifo}",
)

#: Kinds whose domain argparse checks before the command runs: a value outside it is exit 2
#: whatever else the command line holds.
PARSED: Final = frozenset(
    {
        "integer",
        "size",
        "zero run",
        "duration",
        "region",
        "target",
        "regional",
        "bool",
        "choice",
        "directory",
        "store",
        "output",
        "id",
        "vm name",
        "data disk",
    }
)


@dataclass(frozen=True, repr=False)
class Option:
    """One option of one command: ``command`` is the words after ``blobrep`` (GLOBAL for the
    options before them), ``flag`` its longest spelling, or None for a positional."""

    command: tuple[str, ...]
    flag: str | None
    action: argparse.Action

    @property
    def dest(self) -> str:
        return self.action.dest

    @property
    def required(self) -> bool:
        return self.flag is None or self.action.required

    @property
    def name(self) -> str:
        return self.flag or self.dest

    @property
    def takes_value(self) -> bool:
        return self.action.nargs != 0

    @property
    def many(self) -> bool:
        return self.action.nargs == "+"

    @property
    def kind(self) -> str:
        return kind_of(self.action)

    def __str__(self) -> str:
        return f"{' '.join(self.command)} {self.name}"

    def __repr__(self) -> str:
        return f"<option {self}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # what Hypothesis shows of a failing example


def _leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    groups = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    if not groups:
        yield path, parser
        return
    for name, sub in groups[0].choices.items():
        yield from _leaves(sub, (*path, name))


def _options(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> list[Option]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._VersionAction | argparse._SubParsersAction):
            continue
        flag = max(action.option_strings, key=len) if action.option_strings else None
        found.append(Option(path, flag, action))
    return found


@functools.cache
def full_parser() -> argparse.ArgumentParser:
    """The parser of every command with all its options (built once: it takes a while)."""
    return build_parser()


@functools.cache
def commands() -> dict[tuple[str, ...], list[Option]]:
    """Every command (its words) with its own options; GLOBAL holds the options before it."""
    root = full_parser()
    found: dict[tuple[str, ...], list[Option]] = {GLOBAL: _options(root, GLOBAL)}
    for path, parser in _leaves(root, ()):
        found[path] = _options(parser, path)
    return found


def kind_of(action: argparse.Action) -> str:
    """What an option takes, from its parser: see :func:`never_works` for each kind's domain."""
    kind = action.type
    if action.nargs == 0:
        return "flag"
    if action.choices is not None or kind is deploy._policy:
        return "choice"
    if kind is None:
        return "text"
    if kind is parse_bool:
        return "bool"
    names = {
        _types.zstd_level: "integer",
        _types.replica_count: "integer",
        _types.chunk_size: "size",
        _types.zero_run: "zero run",
        _types.pack_size: "pack size",
        _types.region: "region",
        _types.target_region: "target",
        _types.regional_flag: "regional",
        _types.directory: "directory",
        _types.store_place: "store",
        _types.output_file: "output",
        _types.source_file: "source",
        _types.jmespath_query: "query",
        _types.vm_name: "vm name",
        _types.data_disk: "data disk",
    }
    if kind in names:
        return names[kind]
    if isinstance(kind, _types.Integer):
        return "integer"
    if isinstance(kind, _types.Size):
        return "size"
    if isinstance(kind, _types.Duration):
        return "duration"
    if isinstance(kind, _ids.IdOf):
        return "id"
    return f"unknown {kind!r}"


def bounds(action: argparse.Action) -> tuple[float, float | None]:
    """The inclusive range of a number-like option."""
    kind = action.type
    if kind is _types.zstd_level:
        return MIN_LEVEL, MAX_LEVEL
    if kind is _types.replica_count:
        return 1, MAX_REPLICA_COUNT
    if kind is _types.chunk_size:
        return 64, 16 * 1024**2
    if isinstance(kind, _types.Integer | _types.Size | _types.Duration):
        return kind.minimum, kind.maximum
    raise AssertionError(f"{action.dest} has no bounds")


_SIZE_UNITS: Final = {"": 1, "b": 1} | {
    spelling: factor
    for letter, power in (("k", 1), ("m", 2), ("g", 3), ("t", 4))
    for spelling, factor in ((letter, 1024**power), (f"{letter}ib", 1024**power), (f"{letter}b", 1000**power))
}
_REGION_RE: Final = re.compile(r"[a-z][a-z0-9]{1,49}")
_BOOLS: Final = {"true", "false", "yes", "no", "1", "0"}


def _bad_region(text: str) -> bool:
    compact = text.strip().replace(" ", "")
    return not compact.isascii() or _REGION_RE.fullmatch(compact.lower()) is None


def _kind_on_disk(text: str) -> str | None:
    try:
        mode = os.stat(text).st_mode
    except (OSError, ValueError):
        return None
    return "directory" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "special"


def never_works(option: Option, text: str) -> bool:
    """True if ``text`` lies outside ``option``'s domain, whatever else is given and whatever
    the home holds: a command given it must exit 2."""
    kind = option.kind
    if kind in ("integer", "size", "duration"):
        low, high = bounds(option.action)
        number = _number(kind, text)
        return number is None or number < low or (high is not None and number > high)
    if kind == "region":
        return _bad_region(text)
    if kind == "zero run":
        # off, or whole 4 KiB blocks from one block to 1 MiB.
        if text.strip().lower() == "off":
            return False
        number = _number("size", text)
        return number is None or not 4096 <= number <= 1024**2 or number % 4096 != 0
    if kind == "pack size":
        # off, or 1 byte to 32 MiB.
        if text.strip().lower() == "off":
            return False
        number = _number("size", text)
        return number is None or not 1 <= number <= 32 * 1024**2
    if kind == "target":
        parts = text.split("=", 2)
        count = parts[1].strip() if len(parts) > 1 else "1"
        return _bad_region(parts[0]) or not (count.isascii() and count.isdigit() and 1 <= int(count) <= 100)
    if kind == "regional":
        region, separator, flag = text.partition("=")
        return not separator or _bad_region(region) or flag.strip().lower() not in _BOOLS
    if kind == "bool":
        return text.strip().lower() not in _BOOLS
    if kind == "id":
        assert isinstance(option.action.type, _ids.IdOf)
        return _bad_id(option.action.type, text)
    if kind == "vm name":
        # One path component inside --output-dir: 1..64 of [A-Za-z0-9._-], no hidden name,
        # no '..', not ending with '.' or '-'.
        return (
            re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", text) is None
            or text.endswith((".", "-"))
            or ".." in text
        )
    if kind == "data disk":
        # LUN=PATH: a LUN of ASCII digits 0..63, and a regular file at PATH.
        lun, separator, path = text.partition("=")
        bad_lun = not (lun.isascii() and lun.isdigit()) or int(lun) > 63
        return not separator or bad_lun or not path.strip() or "\0" in path or _kind_on_disk(path) != "file"
    if kind == "query":
        try:
            jmespath.compile(text)
        except JMESPathError:
            return True
        return False
    if kind == "choice":
        choices = option.action.choices or [policy.value for policy in Policy]
        return text not in choices
    blank = not text.strip() or "\0" in text
    if kind == "store" and "://" in text:
        try:
            ObjectUrl.parse(text)
        except InvalidInputError:
            return True
        return False
    if kind in ("directory", "store"):
        return blank or _kind_on_disk(text) not in (None, "directory")
    if kind == "output":
        return blank or _kind_on_disk(text) not in (None, "file")
    if kind == "source":
        return blank or _kind_on_disk(text) != "file"
    pattern = _NAMES.get(option.dest) if kind == "text" else None
    return pattern is not None and (pattern.fullmatch(text) is None or text.endswith((".", "-")))


#: Names whose pattern the gallery model fixes (checked by the service, not by argparse).
_NAMES: Final = {
    "gallery": re.compile(r"[A-Za-z0-9][A-Za-z0-9._]{0,79}"),
    "definition": re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}"),
    "version": re.compile(r"[0-9]{1,10}\.[0-9]{1,10}\.[0-9]{1,10}|latest"),
}


#: The words of a resource id at each level, after the leading '/'.
_ID_WORDS: Final = {"gallery": 2, "imageDefinition": 4, "imageVersion": 6}


def _bad_id(parse: _ids.IdOf, text: str) -> bool:
    """A ``--ids`` value that is not an id of the option's level: ``/galleries/G``, then
    ``/images/I``, then ``/versions/X.Y.Z`` (32-bit parts, no leading zeros), or
    ``/versions/latest`` where the option allows it."""
    words = text.split("/")[1:]
    if not text.startswith("/") or len(words) != _ID_WORDS[str(parse.kind)]:
        return True
    if words[0::2] != ["galleries", "images", "versions"][: len(words) // 2]:
        return True
    names = words[1::2]
    for name, pattern in zip(names, (_NAMES["gallery"], _NAMES["definition"]), strict=False):
        if pattern.fullmatch(name) is None or name.endswith((".", "-")):
            return True
    if len(names) < 3:
        return False
    if names[2] == "latest":
        return not parse.latest
    parts = names[2].split(".")
    return len(parts) != 3 or not all(
        part.isascii() and part.isdigit() and str(int(part)) == part and int(part) < 2**32 for part in parts
    )


def _number(kind: str, text: str) -> Fraction | None:
    """``text`` as the number an option of ``kind`` would read, or None if it is none."""
    if kind == "integer":
        match = re.fullmatch(r"\s*(-?[0-9]+)\s*", text)
        return Fraction(match.group(1)) if match and text.isascii() else None
    if kind == "duration":
        match = re.fullmatch(r"\s*([0-9]{1,12}(?:\.[0-9]{1,9})?)\s*([smhd]?)\s*", text.lower())
        scale = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
        return Fraction(match.group(1)) * scale[match.group(2)] if match and text.isascii() else None
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", text)
    if match is None or not text.isascii() or match.group(2).lower() not in _SIZE_UNITS:
        return None
    size = Fraction(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    if _SIZE_UNITS[match.group(2).lower()] == 1 and size.denominator != 1:
        return None  # a fraction of a byte
    return Fraction(int(size))


@dataclass(frozen=True)
class Sandbox:
    """Paths the hostile values point at, all inside ``root``."""

    root: Path

    @property
    def file(self) -> Path:
        return self.root / "a-file"

    @property
    def directory(self) -> Path:
        return self.root / "a-directory"

    @property
    def fifo(self) -> Path:
        return self.root / "a-fifo"

    def make(self) -> None:
        self.file.write_bytes(b"not an image\n")
        self.directory.mkdir()
        os.mkfifo(self.fifo)

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def image(self) -> Path:
        return self.root / "image.raw"

    def value(self, text: str) -> str:
        return text.format(
            file=self.file,
            directory=self.directory,
            fifo=self.fifo,
            root=self.root,
            home=self.home,
            store=self.store,
            image=self.image,
        )


#: A value inside each option's domain, by destination, so that a command gets past the options
#: that are not being fuzzed. ``{home}`` and the like are filled in by :meth:`Sandbox.value`.
VALID: Final[dict[str, str]] = {
    "home": "{home}",
    "format": "json",
    "query": "@",
    "gallery": "fz",
    "definition": "img",
    "version": "1.0.0",
    "source": "{image}",
    "data_disks": "0={image}",
    "image": "/galleries/fz/images/img/versions/1.0.0",
    "ids": "/galleries/fz/images/img/versions/1.0.0",
    "instance_count": "2",
    "location": "westcentralus",
    "store": "{store}",
    "output": "{root}/out.raw",
    "output_dir": "{root}/vms",
    "path": "{root}/new-region",
    "publisher": "p",
    "offer": "o",
    "sku": "s",
    "os_type": "Linux",
    "os_state": "Generalized",
    "hyper_v_generation": "V1",
    "architecture": "x64",
    "minimum_cpu_core": "1",
    "maximum_cpu_core": "4",
    "minimum_memory": "1",
    "maximum_memory": "8",
    "end_of_life_date": "2030-01-01",
    "description": "fuzzed",
    "type": "user",
    "group": "team",
    "member": "bob",
    "assignee": "bob",
    "role": "Reader",
    "scope": "/galleries/fz",
    "timeout": "5",
    "interval": "0.5",
    "grace": "0",
    "level": "3",
    "chunking": "fixed",
    "chunk_size": "64KiB",
    "zero_run": "8KiB",
    "pack_size": "1MiB",
    "replica_count": "1",
    "target_regions": "westcentralus",
    "storage_account_type": "Standard_LRS",
    "exclude_from_latest": "true",
    "regional_exclude_from_latest": "westcentralus=true",
    "allow_replicated_location_deletion": "false",
    "policy": "random",
    "expand": "ReplicationStatus",
    "seed": "7",
    "size": "64KiB",
    "principal": "bob",
    "expires": "30d",
    "id": "tok_000000000000",
    "host": "127.0.0.1",
    "port": "8417",
    "shutdown_grace": "10",
}

#: Where one command needs another valid value than VALID's.
VALID_FOR: Final[dict[tuple[str, ...], dict[str, str]]] = {
    ("sig", "image-version", "create"): {"version": "1.0.1"},
    ("sig", "image-definition", "create"): {"definition": "img2"},
    ("sig", "create"): {"gallery": "fz2"},
    ("region", "add"): {"name": "northeurope"},
    ("region", "show"): {"name": "westcentralus"},
    ("principal", "create"): {"name": "carol"},
    ("principal", "show"): {"name": "bob"},
    ("principal", "delete"): {"name": "bob"},
    ("blob", "publish"): {"name": "img/versions/1.0.0", "store": "{root}/new-store"},
    ("blob", "restore"): {"name": "img/versions/1.0.0"},
    ("blob", "verify"): {"name": "img/versions/1.0.0"},
    ("vm", "create"): {"name": "web1"},
    ("vmss", "create"): {"name": "web"},
    **{("sig", action): {"ids": "/galleries/fz"} for action in ("show", "update", "delete")},
    **{
        ("sig", "image-definition", action): {"ids": "/galleries/fz/images/img"}
        for action in ("show", "update", "delete")
    },
}

#: Options always given unless fuzzed: the demo's default image is 256 MiB; the names of the
#: commands that also take --ids (which are then not required), so that the command runs.
ALWAYS: Final[dict[tuple[str, ...], tuple[str, ...]]] = {
    ("demo",): ("size",),
    **{("sig", action): ("gallery",) for action in ("show", "update", "delete")},
    **{
        ("sig", "image-definition", action): ("gallery", "definition")
        for action in ("show", "update", "delete")
    },
    **{
        ("sig", "image-version", action): ("gallery", "definition", "version")
        for action in ("show", "update", "delete", "wait")
    },
    # A version's disk: --source, or --image-version (beside --source, which the command refuses).
    ("sig", "image-version", "create"): ("source",),
}


def valid_value(option: Option) -> str | None:
    """A value of ``option`` that works against the prepared home, or None if none is known."""
    return VALID_FOR.get(option.command, {}).get(option.dest, VALID.get(option.dest))


def argv(command: tuple[str, ...], given: dict[Option, list[str] | None], sandbox: Sandbox) -> list[str]:
    """The command line: global options, the command's words, then its options.

    ``given`` maps options to their values (None for a flag). Values go after ``=`` so that
    ``-1`` or ``-inf`` are read as values, and positionals after ``--``.
    """
    words: list[str] = []
    options: list[str] = []
    positionals: list[str] = []
    for option, values in given.items():
        target = words if option.command == GLOBAL else options
        if values is None:
            target.append(option.name)
        elif option.flag is None:
            positionals.extend(sandbox.value(value) for value in values)
        else:
            first, *rest = (sandbox.value(value) for value in values)
            target.append(f"{option.flag}={first}")
            target.extend(rest)
    words += [] if command == GLOBAL else command
    return [*words, *options, *(["--", *positionals] if positionals else [])]


@dataclass(frozen=True)
class Outcome:
    """What one run of ``blobrep`` did: its exit code and everything it printed."""

    code: object
    out: str
    err: str


def run_main(command_line: Sequence[str]) -> Outcome:
    """``blobrep ARGS`` in this process (fast: no interpreter start), output captured.

    Anything but SystemExit escaping ``main`` propagates: that is a traceback for a user.
    """
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(list(command_line))
        except SystemExit as exc:
            return Outcome(exc.code, out.getvalue(), err.getvalue())
    return Outcome("returned without exiting", out.getvalue(), err.getvalue())


def prepare(sandbox: Sandbox) -> None:
    """A small home: gallery ``fz`` with definition ``img`` and version 1.0.0 published in
    westcentralus, principal ``bob`` in group ``team`` with Reader on the gallery, and a blob
    store holding ``img/versions/1.0.0``; the image is 256 KiB."""
    with open(sandbox.image, "wb") as out:
        for block in SyntheticImage(256 * 1024, seed=11).blocks():
            out.write(block)
    home = ["--home", str(sandbox.home)]
    image, store = str(sandbox.image), str(sandbox.store)
    definition = ("--publisher", "p", "--offer", "o", "--sku", "s", "--os-type", "Linux")
    steps = [
        ("sig", "create", "-r", "fz", "-l", "westcentralus"),
        ("sig", "image-definition", "create", "-r", "fz", "-i", "img", *definition),
        ("sig", "image-version", "create", "-r", "fz", "-i", "img", "-e", "1.0.0", "--source", image),
        ("principal", "create", "--name", "bob", "--type", "user"),
        ("principal", "create", "--name", "team", "--type", "group"),
        ("group", "member", "add", "-g", "team", "-m", "bob"),
        ("role", "assignment", "create", "--assignee", "bob", "--role", "Reader", "--scope", "/galleries/fz"),
        ("blob", "publish", image, "--store", store, "--gallery", "fz", "--name", "img/versions/1.0.0"),
    ]
    for step in steps:
        outcome = run_main([*home, *step])
        assert outcome.code == 0, (step, outcome)


def copy_prepared(prepared: Sandbox, into: Path) -> Sandbox:
    """A fresh copy of ``prepared``'s home, store and image in ``into``, plus the hostile paths."""
    sandbox = Sandbox(into)
    shutil.copytree(prepared.home, sandbox.home)
    shutil.copytree(prepared.store, sandbox.store)
    shutil.copyfile(prepared.image, sandbox.image)
    sandbox.make()
    return sandbox
