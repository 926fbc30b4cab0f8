"""A command loads what it needs and no more: ``--version`` no event loop, ``show`` no engine.

Timing belongs to ``bench/cli.py``; these tests pin the cause of a slow start, which does not
depend on the machine: which modules a command imports.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from blobrep.cli.main import COMMANDS, build_parser, parse
from tests.cli.helpers import blobrep

#: Runs ``blobrep ARGS`` in this interpreter, then prints the modules it imported as JSON.
_PROBE = """
import json, sys
from blobrep.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
sys.stdout.flush()
sys.stderr.write(json.dumps(sorted(sys.modules)) + "\\n")
"""


def imported_by(cwd: Path, *args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert "Traceback" not in result.stderr, result.stderr
    return set(json.loads(result.stderr.splitlines()[-1]))


#: What only moving data needs: the codec, the chunker, the event loop's file helpers, the engine.
_DATA_PATH = ("blobrep.engine", "zstandard", "xxhash", "pyfastcdc", "aiofiles", "blobrep.storage.local")


@pytest.mark.parametrize("args", [("--version",), ("--help",), ("nonsense",), ("sig", "--help")])
def test_version_help_and_usage_errors_load_no_event_loop_and_no_engine(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    modules = imported_by(tmp_path, *args)
    assert {"blobrep", "blobrep.cli.main"} <= modules
    assert sorted(m for m in modules if m.startswith(_DATA_PATH)) == []
    if args[0] != "sig":
        loaded = sorted(m for m in modules if m.startswith(("anyio", "asyncio", "sqlite3", "blobrep.")))
        # The parser and the option types, nothing of the engine, the catalog or the event loop.
        assert set(loaded) <= {"blobrep.cli", "blobrep.cli.main", "blobrep.cli._types"}


def test_show_loads_the_catalog_but_not_the_data_path(tmp_path: Path) -> None:
    created = blobrep("sig", "create", "-r", "gal", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    modules = imported_by(tmp_path, "sig", "show", "-r", "gal")
    assert "blobrep.catalog" in modules and "sqlite3" in modules
    assert sorted(m for m in modules if m.startswith(_DATA_PATH)) == []
    # Only the module of the command run is loaded, not every command's.
    assert "blobrep.cli.deploy" not in modules and "blobrep.cli.demo" not in modules


def test_showing_a_version_of_a_settled_home_runs_no_event_loop(tmp_path: Path, image: Path) -> None:
    """``image-version show`` reads a snapshot of the catalog: no anyio, no asyncio, no service."""
    definition = ("-r", "gal", "-i", "img")
    for command in (
        ("sig", "create", "-r", "gal"),
        (
            "sig",
            "image-definition",
            "create",
            *definition,
            *("--publisher", "p", "--offer", "o", "--sku", "s", "--os-type", "Linux"),
        ),
        ("sig", "image-version", "create", *definition, "-e", "1.0.0", "--source", str(image)),
    ):
        done = blobrep(*command, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    modules = imported_by(tmp_path, "sig", "image-version", "show", *definition, "-e", "1.0.0")
    assert "blobrep.catalog.reads" in modules
    loop = sorted(m for m in modules if m.startswith(("anyio", "asyncio", "blobrep.service.facade")))
    assert loop == []
    latest = imported_by(tmp_path, "sig", "image-version", "show", *definition, "-e", "latest")
    assert not any(m.startswith("asyncio") for m in latest)


def test_the_command_table_is_what_the_modules_register() -> None:
    """``--help`` lists commands from the table; the table must match what each module builds."""
    parser = build_parser()
    registered = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in registered._choices_actions}
    assert helps == {name: command.help for name, command in COMMANDS.items()}
    assert list(registered.choices) == list(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_command_builds_and_parses_alone(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser(commands=(name,))
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args([name, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: blobrep {name}" in capsys.readouterr().out


def test_help_and_version_are_the_same_as_with_every_command_loaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    full = capsys.readouterr().out
    result = blobrep("--help", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == full
    version = blobrep("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("blobrep ")


def _command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every chain of subcommand names in ``parser``, the groups as well as the leaves."""
    paths: list[tuple[str, ...]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                paths.append((*prefix, name))
                paths.extend(_command_paths(child, (*prefix, name)))
    return paths


def _help_of(
    argv: list[str], parse: Callable[[list[str]], object], capsys: pytest.CaptureFixture[str]
) -> str:
    with pytest.raises(SystemExit) as exit_info:
        parse(argv)
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_every_command_s_help_is_the_same_from_the_narrowed_parser(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A command line builds only the subcommands it names; what it shows must not change."""
    paths = _command_paths(build_parser())
    assert ("sig", "image-version", "show") in paths and len(paths) > 40
    for path in paths:
        argv = ["--home", "h", *path, "--help"]
        assert _help_of(argv, parse, capsys) == _help_of(argv, build_parser().parse_args, capsys), path


@pytest.mark.parametrize(
    "argv",
    [
        ["sig", "image-version", "shwo"],
        ["sig", "image-version", "show"],
        ["sig", "image-version", "show", "-r", "g", "-i", "d", "-e", "1.0.0", "--bogus"],
        ["sig", "image-version", "create", "-r", "g", "-i", "d", "-e", "1.0.0", "--replica-count", "x"],
        ["role", "assignment"],
        ["vm", "create", "extra"],
    ],
)
def test_usage_errors_are_the_same_from_the_narrowed_parser(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as narrowed:
        parse(argv)
    said = capsys.readouterr().err
    with pytest.raises(SystemExit) as full:
        build_parser().parse_args(argv)
    assert narrowed.value.code == full.value.code == 2
    assert said == capsys.readouterr().err
    assert said.count("\n") == 1
