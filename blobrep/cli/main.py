"""The ``blobrep`` command: global options, subcommands, and the one place errors are printed.

Every error reaches the user as one line on stderr and a non-zero exit: 2 for input that can
never work (usage, names, sizes, a missing source), 1 for an operation that failed, 130 when
interrupted. An unexpected exception is a bug: it prints one line too, and the traceback only
with ``BLOBREP_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from blobrep import __version__
from blobrep.cli import access, blob, demo, deploy, maintenance, regions, sig
from blobrep.cli._common import resolve_caller
from blobrep.errors import BlobrepError, InvalidInputError

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BUG = 70
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line instead of the usage text, like every error here."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"blobrep: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="blobrep", description="Store, replicate and serve VM-image blobs.")
    parser.add_argument("--version", action="version", version=f"blobrep {__version__}")
    parser.add_argument(
        "--home",
        type=Path,
        default=Path(os.environ.get("BLOBREP_HOME", ".blobrep")),
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
        "-o",
        "--output",
        dest="format",
        choices=("json", "table"),
        default=None,
        help="result format (default: json for results, table for the demo)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    sig.register(commands)
    deploy.register(commands)
    maintenance.register(commands)
    regions.register(commands)
    access.register(commands)
    blob.register(commands)
    demo.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``blobrep`` console script."""
    args = build_parser().parse_args(argv)
    try:
        args.caller = resolve_caller(args.caller, os.environ)
        code: int = args.handler(args)
    except InvalidInputError as exc:
        sys.stderr.write(f"blobrep: error: {exc}\n")
        code = EXIT_USAGE
    except BlobrepError as exc:
        sys.stderr.write(f"blobrep: error: {exc}\n")
        code = EXIT_FAILED
    except KeyboardInterrupt:
        sys.stderr.write("blobrep: interrupted\n")
        code = EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get("BLOBREP_DEBUG"):
            traceback.print_exc()
        sys.stderr.write(
            f"blobrep: internal error: {type(exc).__name__}: {exc} (this is a bug; set BLOBREP_DEBUG=1"
            " for details)\n"
        )
        code = EXIT_BUG
    sys.exit(code)
