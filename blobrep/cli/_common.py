"""What the gallery commands share: calling the service as the caller, and printing results.

Every command opens the home's :class:`~blobrep.service.GalleryService`, acts as the
principal given by ``--as`` (or ``$BLOBREP_AS``; the home's bootstrap admin when neither is
set), and prints JSON by default or a table with ``-o table``.

Only an absent ``--as`` and an unset ``BLOBREP_AS`` mean the admin. An empty value is a
mistake (a variable expanded to nothing, a script that lost its user), and treating it as
"no one named" would run that script with the most powerful identity the home has.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar

from blobrep.cli.output import print_json, print_table
from blobrep.errors import InvalidNameError

if TYPE_CHECKING:
    from blobrep.service import GalleryService
    from blobrep.service.queries import Query

_T = TypeVar("_T")

Job = Callable[["GalleryService", str], Awaitable[_T]]


#: The environment variable naming the calling principal when ``--as`` is not given.
CALLER_VARIABLE: Final = "BLOBREP_AS"


def resolve_caller(given: str | None, environ: Mapping[str, str]) -> str | None:
    """The principal named by ``--as`` (``given``) or else ``$BLOBREP_AS``; None if neither is set.

    None stands for the home's bootstrap admin, which only the service knows.

    Raises:
        InvalidNameError: the one that applies is empty or only whitespace.
    """
    if given is not None:
        if not given.strip():
            raise InvalidNameError(
                f"the calling principal is empty (--as {given!r}): name a user or service principal,"
                " or leave out --as to act as the home's bootstrap admin"
            )
        return given
    value = environ.get(CALLER_VARIABLE)
    if value is not None and not value.strip():
        raise InvalidNameError(
            f"the calling principal is empty ({CALLER_VARIABLE} is set to {value!r}): set it to a user"
            f" or service principal, or unset it to act as the home's bootstrap admin"
        )
    return value


def call(args: argparse.Namespace, job: Job[_T]) -> _T:
    """Run ``job(service, caller)`` on a fresh event loop with the home's service open.

    ``args.caller`` is what :func:`resolve_caller` gave: a principal, or None for the admin.
    """

    # Imported here, not above: a command that only reads a snapshot of the catalog
    # (blobrep.service.queries.read_without_loop) never loads the event loop or the service.
    import anyio

    from blobrep.service import GalleryService

    async def run() -> _T:
        async with await GalleryService.open(args.home) as service:
            caller = args.caller if args.caller is not None else service.bootstrap_admin
            return await job(service, caller)

    return anyio.run(run)


def read(args: argparse.Namespace, query: Query[_T]) -> _T:
    """The answer of a read-only command: ``query(reads, home, caller)``.

    Run on a snapshot of the catalog when the home allows it, with no event loop and nothing
    of the service loaded; else by the service, which opens the home first (see
    :func:`~blobrep.service.queries.read_without_loop`). The same function answers either way.
    """
    from blobrep.service.queries import read_without_loop

    quick = read_without_loop(args.home, args.caller, query)
    if quick is not None:
        return quick[0]
    return call(args, lambda service, caller: service.run_query(caller, query))


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
