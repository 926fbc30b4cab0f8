"""The ``blobrep`` command: global options, subcommands, and the one place errors are printed.

Every error reaches the user as one line on stderr and a documented exit status:

====  =====================================================================================
0     done
1     the operation failed (a corrupt replica, a full disk, a missing version, no access)
2     input that can never work: usage, names, sizes, values out of range, a missing source
75    busy: another operation holds what this one needs (a lease, the catalog's lock); the
      same command can succeed later (``EX_TEMPFAIL`` of ``sysexits.h``): every error whose
      class is :attr:`~blobrep.errors.BlobrepError.retryable`
70    a bug: an unexpected exception; one line too, the traceback only with ``BLOBREP_DEBUG=1``
130   interrupted
141   the reader of the output went away (``... | head``): quiet, as a Unix tool killed by
      ``SIGPIPE``
====  =====================================================================================

A command starts by loading only its own module. The parser is built in two steps: a first
one knows every command only by its name and one-line help (enough for ``--version``,
``--help`` and a misspelt command), and the second builds the full parser of the command
named, importing what that command needs. ``blobrep --version`` thus never loads the engine,
and ``blobrep sig ... show`` never loads the publish pipeline.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, Final, NoReturn

from blobrep import __version__
from blobrep.cli import _types

EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_BUG: Final = 70
EXIT_BUSY: Final = 75
EXIT_INTERRUPTED: Final = 130
EXIT_BROKEN_PIPE: Final = 128 + 13
#: A command's default (``set_defaults``) holding a check of its parsed options that argparse
#: cannot express (``--ids`` or the names, not both): it returns a problem, or None.
USAGE_CHECK: Final = "usage_check"


class Command:
    """A top-level command: the module whose ``register`` builds it, and its one-line help.

    A plain class: this module is loaded by every start, ``--version`` included, and a named
    tuple or a dataclass would compile code for itself each time.
    """

    __slots__ = ("help", "module")

    def __init__(self, module: str, help: str) -> None:
        self.module = module
        self.help = help


#: Every top-level command, in the order ``--help`` lists them. A module that registers several
#: commands registers them together, so they stay next to each other here.
COMMANDS: Final = {
    "sig": Command("blobrep.cli.sig", "galleries, image definitions and image versions"),
    "vm": Command("blobrep.cli.deploy", "deploy one VM disk from an image version"),
    "vmss": Command("blobrep.cli.deploy", "deploy a scale set: N VM disks at once"),
    "scrub": Command("blobrep.cli.deploy", "verify every chunk of every replica in a region"),
    "replicate": Command(
        "blobrep.cli.maintenance", "bring versions to their target regions and replica counts"
    ),
    "gc": Command("blobrep.cli.maintenance", "delete chunks that no manifest references"),
    "fsck": Command(
        "blobrep.cli.maintenance", "check every replica against the catalog; --repair fixes what it can"
    ),
    "region": Command("blobrep.cli.regions", "list, show and add regions"),
    "principal": Command("blobrep.cli.access", "users, service principals and groups"),
    "group": Command("blobrep.cli.access", "group membership"),
    "role": Command("blobrep.cli.access", "role assignments"),
    "token": Command("blobrep.cli.tokens", "bearer tokens for the HTTP API"),
    "blob": Command(
        "blobrep.cli.blob", "publish, restore and verify blobs in replica directories or object stores"
    ),
    "serve": Command("blobrep.cli.serve", "serve the gallery API over HTTP until SIGTERM or Ctrl-C"),
    "demo": Command("blobrep.cli.demo", "publish and read back a VM-like image on the embedded default"),
}


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line instead of the usage text, like every error here.

    ``path`` is the rest of the command line's words below this parser (``image-version``,
    ``show`` below ``sig``), or None to build every subcommand: see :class:`_Subcommands`.
    """

    def __init__(self, *args: Any, path: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.path = path

    def error(self, message: str) -> NoReturn:
        if self.path is not None:
            raise _PrunedParserError
        hint = _global_options_hint(message)
        sys.stderr.write(f"blobrep: error: {message}{hint} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_USAGE)

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("parser_class", _Parser)
        subcommands = super().add_subparsers(action=_Subcommands, **kwargs)
        assert isinstance(subcommands, _Subcommands)
        subcommands.path = self.path
        return subcommands


#: The options of ``blobrep`` itself, which go before the command.
_GLOBAL_OPTIONS: Final = ("--query", "-o", "--output", "--home", "--as", "--endpoint", "--token")


def _global_options_hint(message: str) -> str:
    """Where ``message`` is argparse refusing an option of ``blobrep`` itself given after the
    command (``sig list --query ...``), the words that say where it goes."""
    if not message.startswith("unrecognized arguments:"):
        return ""
    given = message.split()[2:]
    misplaced = [option for option in given if option.split("=")[0] in _GLOBAL_OPTIONS]
    if not misplaced:
        return ""
    first = misplaced[0].split("=")[0]
    return (
        f"; {first} is an option of blobrep itself and goes before the command:"
        f" blobrep {first} ... COMMAND ..."
    )


class _PrunedParserError(Exception):
    """A parser built for one path through the commands met a command line it cannot parse."""


class _Subcommands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """Subcommands that build only the one the command line names.

    An ``ArgumentParser`` costs about as much to build as a small module costs to import, and
    a command group has dozens. With a ``path``, a subcommand off it gets a bare parser with
    its name and help (all that a listing shows) and the registering code configures a
    :class:`_Ignored` stand-in; the one on the path is built in full and passes the rest of
    the path down.
    """

    path: Sequence[str] | None = None

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        """Parse the subcommand's options, then run its :data:`USAGE_CHECK`: a problem it names
        is a usage error of that subcommand, as argparse's own are."""
        super().__call__(parser, namespace, values, option_string)
        assert values is not None and not isinstance(values, str)
        chosen = self._name_parser_map[values[0]]
        check = chosen.get_default(USAGE_CHECK)
        problem = None if check is None else check(namespace)
        if problem is not None:
            chosen.error(problem)

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if self.path is None:
            return super().add_parser(name, **kwargs)
        if self.path and name == self.path[0]:
            return super().add_parser(name, path=self.path[1:], **kwargs)
        self.add_bare(name, **{key: kwargs[key] for key in ("help", "aliases") if key in kwargs})
        return _Ignored()

    def add_bare(self, name: str, **kwargs: Any) -> None:
        """A subcommand known by name and help alone; it parses nothing."""
        super().add_parser(name, add_help=False, path=(), **kwargs)


class _Ignored:
    """Takes any configuration of a parser that was not built and does nothing with it."""

    def __getattr__(self, name: str) -> Any:
        return self._ignore

    def _ignore(self, *args: Any, **kwargs: Any) -> _Ignored:
        return self


def build_parser(
    commands: Iterable[str] | None = None, *, path: Sequence[str] | None = None
) -> argparse.ArgumentParser:
    """The ``blobrep`` parser, with the full options of ``commands`` (every command if None).

    Commands not asked for are there by name and help only: they take no options, so a
    parser built for some commands must only parse a command line naming one of them.
    ``path`` narrows it further to one chain of subcommands (see :class:`_Subcommands`).
    """
    wanted = set(COMMANDS) if commands is None else set(commands)
    modules = {COMMANDS[name].module for name in wanted if name in COMMANDS}
    parser = _global_parser()
    parser.path = path
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        if command.module in modules:
            modules.discard(command.module)
            importlib.import_module(command.module).register(subcommands)
        elif name not in subcommands.choices:
            subcommands.add_bare(name, help=command.help)
    return parser


def _global_parser() -> _Parser:
    parser = _Parser(prog="blobrep", description="Store, replicate and serve VM-image blobs.")
    parser.add_argument("--version", action="version", version=f"blobrep {__version__}")
    parser.add_argument(
        "--home",
        type=_types.directory,
        # A string, so that argparse checks $BLOBREP_HOME with the same type as --home.
        default=os.environ.get("BLOBREP_HOME", ".blobrep"),
        help="the deployment's home directory (default: $BLOBREP_HOME or ./.blobrep)",
    )
    parser.add_argument(
        "--as",
        dest="caller",
        default=None,
        metavar="PRINCIPAL",
        help="act as this user or service principal (default: $BLOBREP_AS if set, else the home's"
        " bootstrap admin)",
    )
    parser.add_argument(
        "--endpoint",
        default=None,
        metavar="URL",
        help="run sig, vm create, principal, group and role against the daemon at URL (default:"
        " $BLOBREP_ENDPOINT if set, else the home)",
    )
    parser.add_argument(
        "--token",
        default=None,
        metavar="TOKEN",
        help="the bearer token for --endpoint (default: $BLOBREP_TOKEN, which keeps it out of the"
        " process list)",
    )
    parser.add_argument(
        "-o",
        "--output",
        dest="format",
        choices=("json", "table", "tsv", "yaml"),
        default=None,
        help="result format (default: json for results, table for the demo)",
    )
    parser.add_argument(
        "--query",
        type=_types.jmespath_query,
        default=None,
        metavar="JMESPATH",
        help='a JMESPath expression that selects what to print from the result, as with az (e.g. "[].name")',
    )
    return parser


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv`` in steps: find the command with names alone, then parse it in full.

    ``--version``, ``--help``, a missing or misspelt command exit in the first step, having
    imported nothing but argparse. The second builds only the chain of subcommands the words
    of the command line name; should that parser fail, the command's whole parser parses
    again, so that whatever it reports is what the full parser says.
    """
    known, rest = build_parser(commands=()).parse_known_args(argv)
    command = (known.command,)
    words = [known.command, *(word for word in rest if not word.startswith("-"))]
    try:
        return build_parser(commands=command, path=words).parse_args(argv)
    except _PrunedParserError:
        return build_parser(commands=command).parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``blobrep`` console script."""
    args = parse(sys.argv[1:] if argv is None else argv)
    sys.exit(_run(args))


def _run(args: argparse.Namespace) -> int:
    """Run the command's handler; every way it can end becomes one line and an exit status."""
    from blobrep.cli._common import resolve_caller, resolve_endpoint

    try:
        resolve_endpoint(args, os.environ)
        if args.endpoint is None:
            args.caller = resolve_caller(args.caller, os.environ)
        code: int = args.handler(args)
        sys.stdout.flush()
    except BaseException as exc:  # the one place where every way a command ends is reported
        return _report(exc)
    return code


def _report(exc: BaseException) -> int:
    """Print ``exc`` as one line and return its exit status (see the module's table)."""
    from blobrep.errors import BlobrepError, InvalidInputError

    exc = _essential(exc)
    if isinstance(exc, SystemExit):
        raise exc
    if isinstance(exc, BrokenPipeError):
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    if isinstance(exc, KeyboardInterrupt):
        sys.stderr.write("blobrep: interrupted\n")
        return EXIT_INTERRUPTED
    if isinstance(exc, BlobrepError):
        sys.stderr.write(f"blobrep: error: {_one_line(str(exc))}\n")
        if isinstance(exc, InvalidInputError):
            return EXIT_USAGE
        return EXIT_BUSY if exc.retryable else EXIT_FAILED
    if os.environ.get("BLOBREP_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    sys.stderr.write(
        f"blobrep: internal error: {type(exc).__name__}: {_one_line(str(exc))} (this is a bug; set"
        " BLOBREP_DEBUG=1 for details)\n"
    )
    return EXIT_BUG


def _essential(exc: BaseException) -> BaseException:
    """The one exception that says why a group of them ended the command.

    An interrupt or an exit wins (the user asked for it), then a broken pipe (nobody is left
    to read), then a bug (anything not blobrep's own must stay visible), then the first
    blobrep error.
    """
    from blobrep.errors import BlobrepError

    if not isinstance(exc, BaseExceptionGroup):
        return exc
    leaves = list(_leaves(exc))
    for kinds in ((KeyboardInterrupt, SystemExit), (BrokenPipeError,)):
        for leaf in leaves:
            if isinstance(leaf, kinds):
                return leaf
    bugs = [leaf for leaf in leaves if not isinstance(leaf, BlobrepError)]
    return (bugs or leaves)[0]


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterable[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def _one_line(text: str) -> str:
    """``text`` on one line: a message quoting a file name or a value may hold line breaks."""
    return " ".join(text.split()) if "\n" in text or "\r" in text else text


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
