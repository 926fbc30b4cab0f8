"""Every option is parsed into its domain before the command runs: a value that can never work
(NaN, a negative interval, a fraction of a byte, a FIFO where a directory belongs) ends the
command at once with exit 2 and one line naming the option and the value typed."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blobrep.cli import _types
from blobrep.cli.main import build_parser
from tests.cli.argv_space import (
    ALWAYS,
    GLOBAL,
    HOSTILE,
    PARSED,
    Option,
    Outcome,
    Sandbox,
    argv,
    commands,
    full_parser,
    never_works,
    run_main,
    valid_value,
)

USAGE = 2
WAIT = ("sig", "image-version", "wait", "-r", "g", "-i", "i", "-e", "1.0.0")
PUBLISH = ("blob", "publish", "--gallery", "g", "--name", "i/versions/1.0.0")
DEFINITION = ("sig", "image-definition", "create", "-r", "g", "-i", "i", "--publisher", "p", "--offer", "o")
DEFINITION_REST = ("--sku", "s", "--os-type", "Linux")


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """The hostile paths in a fresh directory, which is also the working directory, and an
    environment without BLOBREP_* variables."""
    for name in [name for name in os.environ if name.startswith("BLOBREP_")]:
        monkeypatch.delenv(name)
    work = tmp_path / "work" / "deep"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    box = Sandbox(tmp_path)
    box.make()
    yield box


def _refused(outcome: Outcome, option: str, *fragments: str) -> str:
    """The command ended as a usage error: exit 2, nothing printed but one line on stderr."""
    assert outcome.code == USAGE, outcome
    assert outcome.out == ""
    lines = outcome.err.splitlines()
    assert len(lines) == 1, outcome.err
    assert lines[0].startswith(f"blobrep: error: argument {option}"), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def _home(sandbox: Sandbox) -> list[str]:
    return ["--home", str(sandbox.home)]


# --- the findings ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "-1", "1e3", "", "366d", "1" + "0" * 30])
def test_wait_refuses_a_timeout_that_is_not_a_finite_duration_up_to_a_year(
    sandbox: Sandbox, value: str
) -> None:
    # nan used to reach the event loop's deadline and end as an internal error (exit 70).
    outcome = run_main([*_home(sandbox), *WAIT, f"--timeout={value}"])
    _refused(outcome, "--timeout", repr(value), "365d")
    assert not sandbox.home.exists()  # refused before the home was opened


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "0.05", "2h", ""])
def test_wait_refuses_an_interval_outside_a_tenth_of_a_second_to_an_hour(
    sandbox: Sandbox, value: str
) -> None:
    outcome = run_main([*_home(sandbox), *WAIT, f"--interval={value}"])
    _refused(outcome, "--interval", repr(value), "0.1s to 1h")


@pytest.mark.parametrize(
    ("timeout", "interval", "seconds"),
    [
        ("0", "0.1", (0.0, 0.1)),
        ("1.5", "1", (1.5, 1.0)),
        ("10m", "30s", (600.0, 30.0)),
        ("365d", "1h", (365 * 86400.0, 3600.0)),
    ],
)
def test_wait_takes_durations_in_range(timeout: str, interval: str, seconds: tuple[float, float]) -> None:
    args = build_parser().parse_args([*WAIT, "--timeout", timeout, "--interval", interval])
    assert (args.timeout, args.interval) == seconds


@pytest.mark.parametrize("value", ["-1", "abc", "0", "1.5", "2TiB", "1" + "0" * 30, "", "名前"])
def test_demo_refuses_a_size_outside_one_byte_to_a_terabyte_in_one_line(sandbox: Sandbox, value: str) -> None:
    # -1 and abc used to end in a full Python traceback.
    outcome = run_main([*_home(sandbox), "demo", f"--size={value}"])
    _refused(outcome, "--size", repr(value))
    assert "Traceback" not in outcome.err
    assert not sandbox.home.exists()


def test_a_chunk_size_that_is_a_fraction_of_a_byte_is_refused_as_typed(sandbox: Sandbox) -> None:
    # It used to be cut to 1 byte and refused as "average chunk size 1 is out of range".
    outcome = run_main([*PUBLISH, "--store", str(sandbox.store), "--chunk-size", "1.5", str(sandbox.file)])
    line = _refused(outcome, "--chunk-size", "'1.5'", "whole number", "1.5MiB")
    assert "size 1 " not in line
    assert not sandbox.store.exists()


def test_a_fraction_of_a_larger_unit_is_taken_in_whole_bytes() -> None:
    args = build_parser().parse_args([*PUBLISH, "--store", "s", "--chunk-size", "1.5MiB", "x"])
    assert args.chunk_size == 1536 * 1024


@pytest.mark.parametrize(("value", "shown"), [("10", "'10' is out of range"), ("32MiB", "(33554432 bytes)")])
def test_a_chunk_size_out_of_every_method_s_range_shows_what_was_typed(
    sandbox: Sandbox, value: str, shown: str
) -> None:
    outcome = run_main([*PUBLISH, "--store", str(sandbox.store), "--chunk-size", value, str(sandbox.file)])
    _refused(outcome, "--chunk-size", shown, "64 bytes to 16MiB")


LEVEL = (*PUBLISH, "--store", "s", "x")
VMSS = ("vmss", "create", "--image", "x")
UPDATE = ("sig", "image-version", "update", "-r", "g", "-i", "i", "-e", "1.0.0")
HUGE = "1" + "0" * 30


@pytest.mark.parametrize(
    ("words", "option", "value", "fragment"),
    [
        pytest.param(LEVEL, "--level", "0", "1 to 19", id="level-zero"),
        pytest.param(LEVEL, "--level", "1.5", "not a whole number", id="level-fraction"),
        pytest.param(LEVEL, "--level", "\u0663", "not a whole number", id="level-arabic-digit"),
        pytest.param(VMSS, "--instance-count", "0", "1 to 1000", id="instances-zero"),
        pytest.param(VMSS, "--instance-count", "1001", "1 to 1000", id="instances-over"),
        pytest.param(VMSS, "--instance-count", "1e3", "not a whole", id="instances-1e3"),
        pytest.param(UPDATE, "--replica-count", "0", "1 to 100", id="replica-count-zero"),
        pytest.param(UPDATE, "--replica-count", "101", "1 to 100", id="replica-count-over"),
        pytest.param(
            (*DEFINITION, *DEFINITION_REST), "--minimum-cpu-core", "0", "1 to 2147483647", id="cpu-0"
        ),
        pytest.param(
            (*DEFINITION, *DEFINITION_REST), "--maximum-memory", HUGE, "out of range", id="memory-huge"
        ),
        pytest.param(("demo",), "--seed", "-1", "0 to", id="seed-negative"),
        pytest.param(("demo",), "--seed", "nan", "not a whole number", id="seed-nan"),
        pytest.param(("gc", "-r", "g"), "--grace", "-1", "0s or more", id="grace-negative"),
        pytest.param(("gc", "-r", "g"), "--grace", "inf", "not a duration", id="grace-inf"),
    ],
)
def test_counts_and_numbers_are_refused_outside_their_range(
    sandbox: Sandbox, words: tuple[str, ...], option: str, value: str, fragment: str
) -> None:
    outcome = run_main([*_home(sandbox), *words, f"{option}={value}"])
    _refused(outcome, option, repr(value), fragment)
    assert not sandbox.home.exists()


def _path_cases() -> list[tuple[tuple[str, ...], str, str]]:
    directories = [
        ((), "--home"),
        (("blob", "publish", "--gallery", "g", "--name", "i/versions/1.0.0", "x"), "--store"),
        (("blob", "verify", "--gallery", "g", "--name", "i/versions/1.0.0"), "--store"),
        (("vmss", "create", "--image", "x", "--instance-count", "2"), "--output-dir"),
        (("region", "add", "--name", "northeurope"), "--path"),
    ]
    outputs = [
        (("blob", "restore", "--store", "s", "--gallery", "g", "--name", "i/versions/1.0.0"), "--output"),
        (("vm", "create", "--image", "x"), "--output"),
    ]
    cases = [
        (words, option, value)
        for words, option in directories
        for value in ("{file}", "{fifo}", "/dev/null", "/dev/zero", "", " ", "a\x00b")
    ]
    cases += [
        (words, option, value)
        for words, option in outputs
        for value in ("{directory}", "{fifo}", "/dev/null", "/dev/zero", "", "a\x00b")
    ]
    return cases


@pytest.mark.parametrize(("words", "option", "value"), _path_cases())
def test_a_path_that_cannot_be_what_the_option_needs_is_refused_without_opening_it(
    sandbox: Sandbox, words: tuple[str, ...], option: str, value: str
) -> None:
    # A FIFO is only looked at (stat), never opened: opening it would block the command.
    path = sandbox.value(value)
    before = sorted(os.listdir(sandbox.root))
    if option == "--home":
        outcome = run_main([f"--home={path}", "sig", "list"])
    else:
        outcome = run_main([*_home(sandbox), words[0], words[1], f"{option}={path}", *words[2:]])
    _refused(outcome, option, repr(path))
    assert sorted(os.listdir(sandbox.root)) == before


def test_region_add_refuses_a_file_a_device_and_an_empty_path(sandbox: Sandbox) -> None:
    for path, fragment in ((str(sandbox.file), "a regular file"), ("/dev/null", "a device"), ("", "empty")):
        outcome = run_main([*_home(sandbox), "region", "add", "--name", "northeurope", f"--path={path}"])
        _refused(outcome, "--path", fragment)
    assert not sandbox.home.exists()


@pytest.mark.parametrize("value", ["", " ", "名前", "\u202e", "-1", "west-us", "a", "../../etc"])
@pytest.mark.parametrize(
    "words",
    [
        ("sig", "create", "-r", "g"),
        ("sig", "image-version", "show", "-r", "g", "-i", "i", "-e", "latest"),
        ("scrub",),
        ("replicate", "-r", "g"),
        ("gc", "-r", "g"),
        ("fsck",),
        ("vm", "create", "--image", "x"),
    ],
)
def test_a_region_that_no_region_can_be_called_is_refused(
    sandbox: Sandbox, words: tuple[str, ...], value: str
) -> None:
    outcome = run_main([*_home(sandbox), *words, f"--location={value}"])
    _refused(outcome, "--location", "invalid region")
    assert not sandbox.home.exists()


# --- every option ---------------------------------------------------------------------------

#: argparse types that hold no domain of their own: a number or a path must go through _types.
RAW_TYPES = (int, float, str, Path)


def _all_options() -> list[Option]:
    return [option for options in commands().values() for option in options]


def test_no_option_takes_a_raw_number_or_path() -> None:
    raw = [str(option) for option in _all_options() if option.action.type in RAW_TYPES]
    unknown = [str(option) for option in _all_options() if option.kind.startswith("unknown")]
    assert raw == []
    assert unknown == []


def test_every_command_and_its_parsed_options_are_found() -> None:
    found = commands()
    assert ("sig", "image-version", "wait") in found
    assert ("role", "assignment", "create") in found
    kinds = {(option.command, option.name): option.kind for options in found.values() for option in options}
    assert kinds[(GLOBAL, "--home")] == "directory"
    assert kinds[(("sig", "image-version", "wait"), "--timeout")] == "duration"
    assert kinds[(("blob", "publish"), "--chunk-size")] == "size"
    assert kinds[(("blob", "publish"), "source")] == "source"
    assert kinds[(("vmss", "create"), "--instance-count")] == "integer"


@pytest.mark.parametrize(
    "option", [option for option in _all_options() if option.kind in PARSED], ids=lambda option: str(option)
)
def test_every_parsed_option_refuses_exactly_what_lies_outside_its_domain(
    sandbox: Sandbox, option: Option
) -> None:
    """Each hostile value on its own, the rest of the command line valid; parsed, never run."""
    wrong = []
    for value in HOSTILE:
        given: dict[Option, list[str] | None] = {option: [value]}
        for other in commands()[option.command]:
            # The names of a command that also takes --ids are not required, but one of the two is.
            needed = other.required or other.dest in ALWAYS.get(option.command, ())
            if needed and other != option:
                known = valid_value(other)
                assert known is not None, f"give {other} a valid value in tests/cli/argv_space.VALID"
                given[other] = [known]
        line = argv(option.command, given, sandbox) + (["sig", "list"] if option.command == GLOBAL else [])
        refuse = never_works(option, sandbox.value(value))
        try:
            full_parser().parse_args(line)
        except SystemExit as exc:
            if not (refuse and exc.code == USAGE):
                wrong.append((value, f"exit {exc.code}"))
        else:
            if refuse:
                wrong.append((value, "accepted"))
    assert wrong == []


# --- the types themselves -------------------------------------------------------------------


@given(st.integers(min_value=-(10**6), max_value=10**6), st.integers(min_value=-5, max_value=5))
def test_integers_are_taken_exactly_within_their_bounds(value: int, low: int) -> None:
    parse = _types.Integer(low, low + 10)
    if low <= value <= low + 10:
        assert parse(f" {value} ") == value
    else:
        with pytest.raises(argparse.ArgumentTypeError, match="out of range"):
            parse(str(value))


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_a_duration_is_finite_whatever_float_is_typed(value: float) -> None:
    parse = _types.Duration(0.0, None)
    try:
        seconds = parse(repr(value))
    except argparse.ArgumentTypeError as exc:
        assert repr(repr(value)) in str(exc)
    else:
        assert seconds >= 0 and seconds < float("inf")


@pytest.mark.parametrize(
    ("size", "shown"), [(1, "1 byte"), (64, "64 bytes"), (16 * 1024**2, "16MiB"), (1024**4, "1TiB")]
)
def test_sizes_in_messages_can_be_typed_back(size: int, shown: str) -> None:
    assert _types.show_size(size) == shown
