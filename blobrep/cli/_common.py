"""What the gallery commands share: calling the service as the caller, and printing results.

Every command opens the home's :class:`~blobrep.service.GalleryService`, acts as the
principal given by ``--as`` (or ``$BLOBREP_AS``; the home's bootstrap admin when neither is
set), and prints JSON by default or a table with ``-o table``.

With ``--endpoint URL`` (or ``$BLOBREP_ENDPOINT``) the commands that can run against a daemon
call :class:`~blobrep.client.service.RemoteGalleryService` instead, as the principal of the
bearer token ``--token`` (or ``$BLOBREP_TOKEN``) names; the same code prints what it returns.

Only an absent ``--as`` and an unset ``BLOBREP_AS`` mean the admin. An empty value is a
mistake (a variable expanded to nothing, a script that lost its user), and treating it as
"no one named" would run that script with the most powerful identity the home has.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

from blobrep.cli.output import render
from blobrep.errors import InvalidNameError, InvalidParameterError

if TYPE_CHECKING:
    from blobrep.service import GalleryService
    from blobrep.service.queries import Query

_T = TypeVar("_T")

Job = Callable[["GalleryService", str], Awaitable[_T]]


#: The environment variable naming the calling principal when ``--as`` is not given.
CALLER_VARIABLE: Final = "BLOBREP_AS"
#: The environment variables naming the daemon, and the token, when ``--endpoint`` and
#: ``--token`` are not given.
ENDPOINT_VARIABLE: Final = "BLOBREP_ENDPOINT"
TOKEN_VARIABLE: Final = "BLOBREP_TOKEN"
#: The commands that run against a daemon; every other one works on a home only.
REMOTE_COMMANDS: Final = frozenset({"sig", "vm", "principal", "group", "role"})


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


def resolve_endpoint(args: argparse.Namespace, environ: Mapping[str, str]) -> None:
    """Set ``args.endpoint`` to the daemon the command runs against (None: the home) and
    ``args.token`` to its token, from the options or else the environment.

    ``$BLOBREP_ENDPOINT`` applies to the commands that can run against a daemon; the others
    (``serve``, ``token``, ``replicate``, ...) work on the home and leave it aside, so that
    it can stay set in a shell that also runs them. Given explicitly, ``--endpoint`` and
    ``--token`` are refused where they cannot apply, and ``--as`` beside ``--endpoint``: the
    daemon acts as the token's principal, and a command must not seem to act as another.

    Raises:
        InvalidParameterError: one of those mistakes, or an endpoint that is not an
            ``http://`` or ``https://`` URL of a host.
    """
    explicit = args.endpoint
    remote = args.command in REMOTE_COMMANDS
    if explicit is not None and not remote:
        raise InvalidParameterError(
            f"'blobrep {args.command}' works on a home, not through a daemon: leave out --endpoint"
            f" (and run it where the home is, with --home)"
        )
    endpoint = explicit if explicit is not None else environ.get(ENDPOINT_VARIABLE) if remote else None
    if endpoint is None:
        if args.token is not None:
            raise InvalidParameterError(
                f"--token is for a daemon, and no daemon is named: give --endpoint URL (or set"
                f" {ENDPOINT_VARIABLE}), or leave out --token to work on the home"
            )
        args.endpoint = None
        return
    where = "--endpoint" if explicit is not None else ENDPOINT_VARIABLE
    args.endpoint = check_endpoint(endpoint, where)
    if args.caller is not None:
        raise InvalidParameterError(
            "--as does not apply with a daemon: the daemon acts as the principal its token names;"
            " give that principal's token instead"
        )
    args.token = args.token if args.token is not None else environ.get(TOKEN_VARIABLE)


def check_endpoint(text: str, where: str) -> str:
    """``text`` if it is the address of a daemon: ``http(s)://host[:port]``, no query.

    Raises:
        InvalidParameterError: it is not, naming ``where`` it came from.
    """
    from urllib.parse import urlsplit

    example = "for example http://127.0.0.1:8417"
    try:
        parts = urlsplit(text.strip())
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        parts, port_ok = None, False
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise InvalidParameterError(f"{where} {text!r} is not the URL of a daemon: {example}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidParameterError(
            f"{where} {text!r} holds a query, a fragment or credentials: give the daemon's address"
            f" alone ({example}) and the token in --token or {TOKEN_VARIABLE}"
        )
    return text.strip().rstrip("/")


def call(args: argparse.Namespace, job: Job[_T]) -> _T:
    """Run ``job(service, caller)`` on a fresh event loop with the home's service open, or
    the daemon's when ``args.endpoint`` names one.

    ``args.caller`` is what :func:`resolve_caller` gave: a principal, or None for the admin.
    """

    # Imported here, not above: a command that only reads a snapshot of the catalog
    # (blobrep.service.queries.read_without_loop) never loads the event loop or the service.
    import anyio

    if getattr(args, "endpoint", None) is not None:
        return anyio.run(_remote, args, job)

    from blobrep.service import GalleryService

    async def run() -> _T:
        async with await GalleryService.open(args.home) as service:
            caller = args.caller if args.caller is not None else service.bootstrap_admin
            return await job(service, caller)

    return anyio.run(run)


async def _remote(args: argparse.Namespace, job: Job[_T]) -> _T:
    """``job`` with the daemon's service: a stand-in for :class:`GalleryService` that has the
    methods of the commands that run remotely, each with the same signature (the caller it
    is given is not sent: the token names it)."""
    from blobrep.client.service import RemoteGalleryService

    async with RemoteGalleryService(args.endpoint, args.token) as service:
        return await job(cast("GalleryService", service), "")


def read(args: argparse.Namespace, query: Query[_T], remote: Job[_T] | None = None) -> _T:
    """The answer of a read-only command: ``query(reads, home, caller)``.

    Run on a snapshot of the catalog when the home allows it, with no event loop and nothing
    of the service loaded; else by the service, which opens the home first (see
    :func:`~blobrep.service.queries.read_without_loop`). The same function answers either way.
    Against a daemon, ``remote(service, caller)`` answers: the service call that runs the
    same query there.
    """
    if getattr(args, "endpoint", None) is not None:
        if remote is None:
            raise InvalidParameterError("this command does not run against a daemon: leave out --endpoint")
        return call(args, remote)

    from blobrep.service.queries import read_without_loop

    quick = read_without_loop(args.home, args.caller, query)
    if quick is not None:
        return quick[0]
    return call(args, lambda service, caller: service.run_query(caller, query))


def emit(
    args: argparse.Namespace, document: Any, rows: Sequence[Mapping[str, Any]], *, default: str = "json"
) -> int:
    """Print ``document`` in the format of ``-o`` (``default`` without it), ``rows`` in a table,
    after ``--query``; exit code 0."""
    render(document, rows, args.format or default, getattr(args, "query", None))
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


def gallery_option(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--gallery-name/-r``; not ``required`` where ``--ids`` may name the gallery instead."""
    suffix = "" if required else " (or --ids)"
    parser.add_argument(
        "--gallery-name", "-r", required=required, dest="gallery", help=f"the gallery{suffix}"
    )


def definition_option(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """``--gallery-image-definition/-i``; not ``required`` where ``--ids`` may name it instead."""
    suffix = "" if required else " (or --ids)"
    parser.add_argument(
        "--gallery-image-definition",
        "-i",
        required=required,
        dest="definition",
        help=f"the image definition{suffix}",
    )
