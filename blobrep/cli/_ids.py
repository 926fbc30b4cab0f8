"""``--ids``: naming what a command acts on by resource ids instead of names, as ``az`` does.

``sig show|update|delete``, ``sig image-definition show|update|delete`` and
``sig image-version show|update|delete`` take either the names (``-r``, ``-i``, ``-e``) or
``--ids`` with one or more resource ids of the command's level::

    blobrep sig image-version show --ids /galleries/g/images/ubuntu/versions/1.0.0 \\
        /galleries/g/images/ubuntu/versions/1.0.1

Each id is parsed by :class:`~blobrep.core.ids.ResourceId` before the command runs; one of
another level (a definition id given to ``image-version show``) is refused at once, with an
example of the right one. Given both ``--ids`` and a name, or neither, the command refuses
too (exit 2). With several ids the command acts on each in the order given, stops at the
first error, and prints a list: what ``show`` found, what ``update`` changed (up to the
error, if there is one). One id prints one resource, as the names do.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from blobrep.cli._common import emit
from blobrep.cli.main import USAGE_CHECK
from blobrep.core.ids import LATEST, ResourceId, ResourceKind
from blobrep.errors import BlobrepError, InvalidInputError, InvalidParameterError

_T = TypeVar("_T")

GALLERY: Final = ResourceKind.GALLERY
DEFINITION: Final = ResourceKind.IMAGE_DEFINITION
VERSION: Final = ResourceKind.IMAGE_VERSION

#: What each level is called, an example of its id, and its name options (dest, flags).
_LEVELS: Final[Mapping[ResourceKind, tuple[str, str, tuple[tuple[str, str], ...]]]] = {
    GALLERY: ("gallery", "/galleries/myGallery", (("gallery", "--gallery-name/-r"),)),
    DEFINITION: (
        "image definition",
        "/galleries/myGallery/images/ubuntu",
        (("gallery", "--gallery-name/-r"), ("definition", "--gallery-image-definition/-i")),
    ),
    VERSION: (
        "image version",
        "/galleries/myGallery/images/ubuntu/versions/1.0.0",
        (
            ("gallery", "--gallery-name/-r"),
            ("definition", "--gallery-image-definition/-i"),
            ("version", "--gallery-image-version/-e"),
        ),
    ),
}
_CALLED: Final = {ResourceKind.HOME: "the home", **{kind: words for kind, (words, _, _) in _LEVELS.items()}}


class IdOf:
    """An argparse ``type``: the :class:`ResourceId` of a resource of level ``kind``;
    ``.../versions/latest`` only where ``latest`` is allowed (``image-version show``)."""

    __slots__ = ("kind", "latest")

    def __init__(self, kind: ResourceKind, *, latest: bool = False) -> None:
        self.kind = kind
        self.latest = latest

    def __call__(self, text: str) -> ResourceId:
        try:
            parsed = ResourceId.parse(text)
        except InvalidInputError as exc:
            said = str(exc) if repr(text) in str(exc) else f"{text!r}: {exc}"
            raise argparse.ArgumentTypeError(f"{said}; {self.expected()}") from None
        if parsed.kind is not self.kind:
            raise argparse.ArgumentTypeError(
                f"{text!r} is the id of {_article(_CALLED[parsed.kind])}, not of"
                f" {_article(_CALLED[self.kind])}: {self.expected()}"
            )
        if parsed.latest and not self.latest:
            raise argparse.ArgumentTypeError(
                f"{text!r} names '{LATEST}', which only 'show' resolves: give the version itself,"
                f" for example {_LEVELS[self.kind][1]}"
            )
        return parsed

    def expected(self) -> str:
        words, example, _ = _LEVELS[self.kind]
        latest = f" (or .../versions/{LATEST})" if self.latest else ""
        return f"give {words} ids, for example {example}{latest}"


def _article(words: str) -> str:
    return words if words.startswith("the ") else f"an {words}" if words[0] in "aeiou" else f"a {words}"


def add_ids(parser: argparse.ArgumentParser, kind: ResourceKind, *, latest: bool = False) -> None:
    """``--ids ID [ID ...]``, ids of level ``kind``, instead of the name options."""
    words, example, names = _LEVELS[kind]
    latest_text = f" or .../versions/{LATEST}" if latest else ""
    flags = ", ".join(flag for _, flag in names)
    parser.add_argument(
        "--ids",
        nargs="+",
        type=IdOf(kind, latest=latest),
        default=None,
        metavar="ID",
        help=f"one or more {words} ids ({example}{latest_text}) instead of {flags}; several are acted on"
        " in order, stopping at the first error",
    )
    parser.set_defaults(**{USAGE_CHECK: lambda args: problem(args, kind)})


@dataclass(frozen=True, slots=True)
class Target:
    """One resource a command acts on, by its names (``version`` may be ``latest``)."""

    gallery: str
    definition: str = ""
    version: str = ""


def problem(args: argparse.Namespace, kind: ResourceKind) -> str | None:
    """What is wrong with how the command names its resources: both ``--ids`` and names, or
    neither (naming what is missing); None if nothing."""
    _, example, names = _LEVELS[kind]
    if args.ids is not None:
        given = [flag for dest, flag in names if getattr(args, dest) is not None]
        if given:
            return f"use --ids or the names ({', '.join(given)}), not both: an id names the resource whole"
        return None
    missing = [flag for dest, flag in names if getattr(args, dest) is None]
    if missing:
        return (
            f"the following arguments are required: {', '.join(missing)}; or name the resource with"
            f" --ids, for example --ids {example}"
        )
    return None


def targets(args: argparse.Namespace, kind: ResourceKind) -> list[Target]:
    """The resources named by ``--ids`` (in their order) or else by the name options.

    The parser has refused both and neither already (:func:`problem`); a namespace made
    otherwise is checked here.

    Raises:
        InvalidParameterError: both are given, or neither (naming what is missing).
    """
    said = problem(args, kind)
    if said is not None:
        raise InvalidParameterError(said)
    if args.ids is not None:
        # An id given twice is acted on once: a second delete of it could only fail.
        return [_target(resource) for resource in dict.fromkeys(args.ids)]
    return [Target(*(getattr(args, dest) for dest, _ in _LEVELS[kind][2]))]


def _target(resource: ResourceId) -> Target:
    assert resource.gallery is not None
    version = LATEST if resource.latest else "" if resource.version is None else str(resource.version)
    return Target(resource.gallery, resource.image or "", version)


@dataclass(frozen=True, slots=True)
class Done(Generic[_T]):
    """What a command did to its targets, in order, and the error that stopped it (if any)."""

    items: Sequence[_T]
    error: BlobrepError | None
    several: bool
    """More than one id was given: the result is printed as a list."""

    def emit(
        self, args: argparse.Namespace, view: Callable[[_T], Any], rows: Callable[[_T], list[dict[str, Any]]]
    ) -> None:
        """Print what was done (one resource, or a list for several ids), then raise the error
        that stopped it, if one did."""
        if self.items:
            document = [view(item) for item in self.items] if self.several else view(self.items[0])
            emit(args, document, [row for item in self.items for row in rows(item)])
        self.check()

    def check(self) -> None:
        """Raise the error that stopped the command, if one did."""
        if self.error is not None:
            raise self.error


def each(
    args: argparse.Namespace,
    kind: ResourceKind,
    act: Callable[[Target], _T],
    *,
    stop: Callable[[_T], bool] | None = None,
) -> Done[_T]:
    """``act`` on each target of the command in order, until one fails (or ``stop`` says so).

    Raises:
        InvalidParameterError: see :func:`targets`; nothing was done.
    """
    several = args.ids is not None and len(args.ids) > 1
    items: list[_T] = []
    for target in targets(args, kind):
        try:
            items.append(act(target))
        except BlobrepError as exc:
            return Done(items, exc, several)
        if stop is not None and stop(items[-1]):
            break
    return Done(items, None, several)
