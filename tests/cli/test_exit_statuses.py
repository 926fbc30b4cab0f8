"""How every way a command ends is reported: one line, and an exit status a script can act on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from blobrep.cli import main
from blobrep.errors import (
    BlobrepError,
    BusyError,
    ChunkCorruptError,
    InvalidParameterError,
    ResourceNotFoundError,
)
from tests.cli.helpers import blobrep


def reported(exc: BaseException, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main._report(exc)
    return code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidParameterError("--count must be 1 to 1000, not 0"), 2),
        (ResourceNotFoundError("gallery 'g' not found"), 1),
        (ChunkCorruptError("ab" * 16, "eastus/replica-1", "bad frame"), 1),
        (BusyError("replica eastus/replica-1 is leased by gc (pid 7 on host h); try again later"), 75),
    ],
)
def test_each_kind_of_error_has_its_exit_status(
    error: BlobrepError, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    status, lines = reported(error, capsys)
    assert status == code
    assert lines == [f"blobrep: error: {error}"]


def test_busy_is_told_apart_from_every_other_failure() -> None:
    """A script retries on 75 alone; nothing that can never succeed may share it."""
    assert main.EXIT_BUSY not in {main.EXIT_FAILED, main.EXIT_USAGE, main.EXIT_BUG, main.EXIT_INTERRUPTED}


def test_a_message_spanning_lines_is_printed_on_one(capsys: pytest.CaptureFixture[str]) -> None:
    status, lines = reported(ResourceNotFoundError("file 'a\nb' not found"), capsys)
    assert status == 1 and lines == ["blobrep: error: file 'a b' not found"]


def test_a_bug_inside_a_group_is_named_not_the_group(capsys: pytest.CaptureFixture[str]) -> None:
    group = ExceptionGroup("unhandled errors in a TaskGroup", [ResourceNotFoundError("x"), KeyError("k")])
    status, lines = reported(group, capsys)
    assert status == 70
    assert len(lines) == 1 and lines[0].startswith("blobrep: internal error: KeyError: 'k'")
    assert "ExceptionGroup" not in lines[0]


def test_a_group_of_blobrep_errors_reports_the_first(capsys: pytest.CaptureFixture[str]) -> None:
    inner = ExceptionGroup("inner", [BusyError("replica r is busy")])
    status, lines = reported(ExceptionGroup("outer", [inner, ResourceNotFoundError("y")]), capsys)
    assert status == 75 and lines == ["blobrep: error: replica r is busy"]


def test_an_interrupt_inside_a_group_is_an_interrupt(capsys: pytest.CaptureFixture[str]) -> None:
    group = BaseExceptionGroup("g", [ResourceNotFoundError("y"), KeyboardInterrupt()])
    status, lines = reported(group, capsys)
    assert status == 130 and lines == ["blobrep: interrupted"]


def test_a_broken_pipe_inside_a_group_ends_quietly(capsys: pytest.CaptureFixture[str]) -> None:
    status, lines = reported(ExceptionGroup("g", [BrokenPipeError(32, "Broken pipe")]), capsys)
    assert status == 141 and lines == []


def test_output_to_a_reader_that_went_away_ends_quietly(tmp_path: Path) -> None:
    """``blobrep -o table sig list | head -0``: no traceback, no "internal error", status 141."""
    for number in range(3):
        assert blobrep("sig", "create", "-r", f"gallery{number}", cwd=tmp_path).returncode == 0
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "blobrep",
                "--home",
                str(tmp_path / ".blobrep"),
                "-o",
                "table",
                "sig",
                "list",
            ],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == 141
