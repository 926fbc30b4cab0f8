"""What the gallery commands share: calling the service as the caller, and printing results.

Every command opens the home's :class:`~blobrep.service.GalleryService`, acts as the
principal given by ``--as`` (or ``$BLOBREP_AS``; the home's bootstrap admin when neither is
set), and prints JSON by default or a table with ``-o table``.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import anyio

from blobrep.cli.output import print_json, print_table
from blobrep.service import GalleryService

_T = TypeVar("_T")

Job = Callable[[GalleryService, str], Awaitable[_T]]


def call(args: argparse.Namespace, job: Job[_T]) -> _T:
    """Run ``job(service, caller)`` on a fresh event loop with the home's service open."""

    async def run() -> _T:
        async with await GalleryService.open(args.home) as service:
            return await job(service, args.caller or service.bootstrap_admin)

    return anyio.run(run)


def emit(args: argparse.Namespace, document: Any, rows: Sequence[Mapping[str, Any]]) -> int:
    """Print ``document`` as JSON (the default) or ``rows`` as a table; exit code 0."""
    if args.format == "table":
        print_table(rows)
    else:
        print_json(document)
    return 0


def parse_bool(text: str) -> bool:
    """``true``/``false`` (and yes/no, 1/0) for options that take a boolean value."""
    value = text.strip().lower()
    if value in ("true", "yes", "1"):
        return True
    if value in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r}: use true or false")


def add_bool(parser: argparse.ArgumentParser, flag: str, help_text: str) -> None:
    """``--flag`` alone means true; ``--flag false`` sets false; absent leaves it unset (None)."""
    parser.add_argument(flag, nargs="?", const=True, default=None, type=parse_bool, help=help_text)


def gallery_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gallery-name", "-r", required=True, dest="gallery", help="the gallery")


def definition_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gallery-image-definition", "-i", required=True, dest="definition", help="the image definition"
    )
