"""Hostile command lines for every command and option: never a bug, never a traceback.

Hypothesis picks a command and one of its options (or a global one), gives it a hostile
value (NaN, infinities, -1, 10**30, 1.5, blanks, other scripts, a right-to-left override, a
NUL, ``../../etc``, a file, a directory, ``/dev/null``, ``/dev/zero``, a FIFO), sometimes a
second option too, and valid values to the rest, then runs ``blobrep`` in this process against
a copy of a small prepared home. Whatever the value:

- the command ends (a FIFO given where a path is taken must never block it),
- it never exits 70 and never prints a traceback,
- if it fails, stderr is one line starting with ``blobrep: ``,
- a value outside its option's domain ends the command with exit 2 (for options argparse
  checks, whatever else is given; for names and sources checked later, when the rest is valid).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

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
    copy_prepared,
    never_works,
    prepare,
    run_main,
    valid_value,
)

pytestmark = pytest.mark.slow

#: A command that has not ended after this long is taken to hang (the slowest, demo, takes ~1 s).
HANG_SECONDS = 30.0


#: Commands not run here: ``serve`` runs until it is stopped. Its options' domains are checked
#: by test_arg_domains (parsing alone) and the server itself by tests/daemon.
NOT_RUN = {("serve",)}


def _pairs() -> list[tuple[tuple[str, ...], Option]]:
    found = commands()
    return [
        (command, option)
        for command, own in found.items()
        if command != GLOBAL and command not in NOT_RUN
        for option in [*found[GLOBAL], *own]
    ]


PAIRS = _pairs()


@dataclass(frozen=True, repr=False)
class Case:
    """One command line to try: the command, the values of its options, which were fuzzed."""

    command: tuple[str, ...]
    given: dict[Option, list[str] | None]
    fuzzed: frozenset[Option]

    def __repr__(self) -> str:
        values = {option.name: values for option, values in self.given.items()}
        fuzzed = sorted(option.name for option in self.fuzzed)
        return f"Case({' '.join(self.command)!r}, {values!r}, fuzzed={fuzzed!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # what Hypothesis shows of a failing example


@st.composite
def cases(draw: st.DrawFn) -> Case:
    command, first = draw(st.sampled_from(PAIRS))
    options = [*commands()[GLOBAL], *commands()[command]]
    fuzzed = {first}
    if draw(st.integers(0, 3)) == 0:
        fuzzed.add(draw(st.sampled_from(options)))
    given: dict[Option, list[str] | None] = {}
    for option in options:
        valid = valid_value(option)
        if option in fuzzed:
            if not option.takes_value:
                given[option] = None
                continue
            choices = [*HOSTILE, *([valid] if valid is not None else [])]
            given[option] = [draw(st.sampled_from(choices))]
        elif not option.takes_value:
            if draw(st.integers(0, 3)) == 0:
                given[option] = None
        elif option.required or option.dest == "home" or option.dest in ALWAYS.get(command, ()):
            assert valid is not None, f"give {option} a valid value in tests/cli/argv_space.VALID"
            given[option] = [valid]
        elif valid is not None and draw(st.integers(0, 3)) == 0:
            given[option] = [valid]
    return Case(command, given, frozenset(fuzzed))


def case_of(command: tuple[str, ...], fuzzed: dict[str, str], **valid: str) -> Case:
    """A case written by hand: ``fuzzed`` by option name (``--timeout``, or a positional's
    dest), ``valid`` by destination, the required options valid."""
    options = [*commands()[GLOBAL], *commands()[command]]
    by_name = {option.name: option for option in options}
    given: dict[Option, list[str] | None] = {by_name[name]: [value] for name, value in fuzzed.items()}
    for option in options:
        known = valid.get(option.dest, valid_value(option))
        needed = option.required or option.dest == "home" or option.dest in ALWAYS.get(command, ())
        if option not in given and known is not None and (needed or option.dest in valid):
            given[option] = [known]
    return Case(command, given, frozenset(by_name[name] for name in fuzzed))


#: Command lines found wanting once, tried on every run.
KNOWN = (
    case_of(("sig", "image-version", "wait"), {"--timeout": "nan"}),
    case_of(("sig", "image-version", "wait"), {"--interval": "-1"}),
    case_of(("demo",), {"--size": "-1"}),
    case_of(("blob", "publish"), {"--chunk-size": "1.5"}),
    case_of(("blob", "publish"), {"--store": "{file}"}),
    case_of(("region", "add"), {"--path": "/dev/null"}),
    case_of(("vm", "create"), {"--output": "{fifo}"}),
    case_of(("sig", "list"), {"--home": "a\x00b"}),
    # The demo narrates on stderr when stdout holds JSON; an unknown caller then made two lines.
    case_of(("demo",), {"--as": "../../etc"}, format="json"),
)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A small home with one published version, made once; each example runs on a copy."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("BLOBREP_")]:
            patch.delenv(name)
        sandbox = Sandbox(tmp_path_factory.mktemp("prepared"))
        prepare(sandbox)
        yield sandbox


def _unblock(sandbox: Sandbox) -> None:
    """Open the FIFO's other ends so that a command stuck opening it can go on and end."""
    for flags in (os.O_WRONLY | os.O_NONBLOCK, os.O_RDONLY | os.O_NONBLOCK):
        with contextlib.suppress(OSError):
            os.close(os.open(sandbox.fifo, flags))


def _run_guarded(line: list[str], sandbox: Sandbox) -> Outcome:
    """Run ``blobrep`` on a thread of its own, so that a command that hangs fails the test
    instead of hanging it (a FIFO opened in a worker thread is beyond any signal's reach)."""
    ended: list[Outcome] = []
    escaped: list[str] = []

    def target() -> None:
        try:
            ended.append(run_main(line))
        except BaseException:
            escaped.append(traceback.format_exc())

    thread = threading.Thread(target=target, name="blobrep", daemon=True)
    thread.start()
    thread.join(HANG_SECONDS)
    if thread.is_alive():
        _unblock(sandbox)
        thread.join(5)
        pytest.fail(f"blobrep {line} did not end within {HANG_SECONDS:g} s")
    if escaped:
        pytest.fail(f"blobrep {line} raised out of main (a traceback for a user):\n{escaped[0]}")
    return ended[0]


def _must_refuse(case: Case, sandbox: Sandbox) -> list[Option]:
    """The fuzzed options whose value can never work, where exit 2 is owed."""
    outside = []
    for option in case.fuzzed:
        values = case.given[option]
        if values is not None and never_works(option, sandbox.value(values[0])):
            outside.append(option)
    if len(case.fuzzed) > 1:
        # Names and sources are checked by the command itself, which may first fail on the
        # other hostile value; argparse checks the rest before anything runs.
        outside = [option for option in outside if option.kind in PARSED]
    return outside


def _examples(known: tuple[Case, ...]) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def decorate(test: Callable[..., None]) -> Callable[..., None]:
        for case in reversed(known):
            test = example(case=case)(test)
        return test

    return decorate


@settings(
    max_examples=300,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # a hang would make shrinking take hours
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases())
@_examples(KNOWN)
def test_a_hostile_command_line_ends_in_one_clear_line(prepared: Sandbox, case: Case) -> None:
    root = Path(tempfile.mkdtemp(dir=prepared.root.parent, prefix="example-"))
    previous = os.getcwd()
    try:
        sandbox = copy_prepared(prepared, root)
        work = root / "work" / "deep"  # so that ../../etc stays inside the sandbox
        work.mkdir(parents=True)
        os.chdir(work)
        line = argv(case.command, case.given, sandbox)
        owed = _must_refuse(case, sandbox)  # before the run: it looks at what the paths are
        outcome = _run_guarded(line, sandbox)
    finally:
        os.chdir(previous)
        shutil.rmtree(root, ignore_errors=True)

    shown = f"blobrep {line}: exit {outcome.code}, stderr {outcome.err!r}"
    assert isinstance(outcome.code, int), shown
    assert outcome.code != 70, shown
    assert "Traceback" not in outcome.err, shown
    if outcome.code != 0:
        lines = outcome.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("blobrep: "), shown
    if owed:
        assert outcome.code == 2, f"{shown} ({', '.join(map(str, owed))} can never work)"


def test_every_command_and_option_is_in_the_fuzzed_space() -> None:
    fuzzed = {(command, option.name) for command, option in PAIRS}
    assert (("sig", "image-version", "wait"), "--timeout") in fuzzed
    assert (("demo",), "--size") in fuzzed
    assert (("blob", "publish"), "source") in fuzzed
    assert (("region", "add"), "--path") in fuzzed
    run = [command for command in commands() if command != GLOBAL and command not in NOT_RUN]
    assert all((command, "--home") in fuzzed for command in run)
    assert {command for command, _ in PAIRS} == set(run)
    assert set(commands()) >= NOT_RUN, "a command named in NOT_RUN no longer exists"
