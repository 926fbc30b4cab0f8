"""Output files: never replace a device, FIFO, socket or directory; clear dead writers' temporaries."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from blobrep.errors import InvalidInputError
from blobrep.storage.outputs import OutputFile, check_output, remove_stale_temporaries
from blobrep.storage.processes import this_process


@pytest.mark.parametrize("kind", ["fifo", "device", "socket", "directory", "link to a device"])
def test_an_output_that_is_not_a_regular_file_is_refused_and_left_alone(tmp_path: Path, kind: str) -> None:
    output = tmp_path / "disk.img"
    if kind == "fifo":
        os.mkfifo(output)
    elif kind == "device":
        output = Path("/dev/null")
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(output))
        server.close()
    elif kind == "directory":
        output.mkdir()
    else:
        output.symlink_to("/dev/null")
    before = os.lstat(output)

    with pytest.raises(InvalidInputError, match="regular file"):
        OutputFile.create(output, 4096)

    after = os.lstat(output)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert [path.name for path in output.parent.iterdir() if ".blobrep-" in path.name] == []


def test_a_missing_output_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        check_output(tmp_path / "nowhere" / "disk.img")


def _dead_pid() -> tuple[int, int]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    fields = Path(f"/proc/{process.pid}/stat").read_text().rpartition(")")[2].split()
    process.send_signal(signal.SIGKILL)
    process.wait()
    return process.pid, int(fields[19])


def test_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    output = tmp_path / "vm-0.img"
    pid, started = _dead_pid()
    dead = tmp_path / f".vm-0.img.blobrep-{pid}.{started}.0123456789ab"
    dead.write_bytes(b"x" * 4096)
    me = this_process()
    live = tmp_path / f".vm-0.img.blobrep-{me.pid}.{me.started}.ba9876543210"
    live.write_bytes(b"y")
    other = tmp_path / f".vm-1.img.blobrep-{pid}.{started}.0123456789ab"
    other.write_bytes(b"z")

    assert remove_stale_temporaries(output) == [dead]

    assert not dead.exists() and live.exists() and other.exists()


def test_a_finished_output_replaces_the_old_one_and_leaves_no_temporary(tmp_path: Path) -> None:
    output = tmp_path / "disk.img"
    output.write_bytes(b"old")
    out = OutputFile.create(output, 8)
    out.write_at(memoryview(b"new!"), 2)
    out.finish()
    assert output.read_bytes() == b"\0\0new!\0\0"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["disk.img"]
