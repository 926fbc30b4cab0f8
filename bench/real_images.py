#!/usr/bin/env python3
"""A chain of real Linux disk images, each an in-place upgrade of the last, built once and cached.

Run from the repository root, as root (it loop-mounts images and runs debootstrap)::

    .venv/bin/python bench/real_images.py [--out DIR] [--size 1GiB] [--rebuild]

Synthetic images rewrite random bytes; a real image pipeline mounts last month's image and
installs packages into it: the filesystem stays, untouched files keep their blocks, new files,
package databases and journal blocks land where the allocator puts them. Dedup measured on such
a chain says what a gallery of real versions costs. ``v1.raw`` is ``mkfs.ext4`` (fixed UUID and
hash seed, no lazy init: a later mount writes nothing behind our back) on a sparse file, then
``debootstrap --variant=minbase bookworm`` from the machine's apt mirror; each later version is
a sparse copy of the previous one changed in a chroot (``STEPS``). Each ends with apt's caches
deleted and its free blocks discarded by e2fsck: freed blocks are holes again, as in a shipped
image. ``manifest.json`` beside the images (recipe, size, packages, digests, changed blocks,
build times) says what later runs may reuse; builds write ``*.partial`` files, renamed when
done. Digests differ between rebuilds (timestamps, host keys, the mirror's package versions).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import xxhash
from _harness import GIB, KIB, MIB, format_size, log, parse_size, remove, render_table, write_json
from _images import WORK_DIR

REAL_DIR: Final = WORK_DIR / "real-images"
MANIFEST: Final = "manifest.json"
SUITE: Final = "bookworm"
DEFAULT_MIRROR: Final = "http://deb.debian.org/debian"
MIN_SIZE: Final = 512 * MIB
BLOCK: Final = 4 * KIB
WINDOW: Final = 1 * MIB
FS_UUID: Final = "6d1c5e2a-0b7f-4c39-9a51-3e8f2d7b4c10"
_EXTENDED: Final = f"hash_seed={FS_UUID},lazy_itable_init=0,lazy_journal_init=0"
MKFS_OPTIONS: Final = ("-q", "-F", "-b", "4096", "-L", "rootfs", "-U", FS_UUID, "-E", _EXTENDED)
_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_ENV: Final = {"PATH": _PATH, "LC_ALL": "C", "HOME": "/root", "DEBIAN_FRONTEND": "noninteractive"}
_TOOLS: Final = ("mkfs.ext4", "e2fsck", "losetup", "mount", "umount", "chroot", "truncate", "cp")
_TIDY: Final = "apt-get clean && rm -rf /var/lib/apt/lists/*"
_MOUNTS: Final = ("-t proc proc proc", "-t sysfs sys sys", "--rbind --make-rslave /dev dev")


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    """One version of the chain: what it adds to the previous one."""

    version: str
    packages: tuple[str, ...] = ()
    appended: tuple[tuple[str, str], ...] = ()  # (path in the image, line appended to it)


STEPS: Final = (
    Step("v1"),
    Step("v2", ("curl", "ca-certificates", "openssh-server")),
    Step("v3", ("jq",), (("/etc/ssh/sshd_config", "PasswordAuthentication no"),)),
)
RECIPE: Final = {"format": 2, "suite": SUITE, "variant": "minbase", "mkfs_ext4": list(MKFS_OPTIONS)}
RECIPE["steps"] = json.loads(json.dumps([dataclasses.asdict(step) for step in STEPS]))  # as read back


class BuildError(RuntimeError):
    """The chain cannot be built here; the message is the one-line reason."""


def _quiet(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=_ENV)


@dataclasses.dataclass(frozen=True, slots=True)
class _Runner:
    """Runs commands in a clean environment (not the venv's), output appended to the build log."""

    log_path: Path

    def run(self, argv: list[str], what: str) -> None:
        with open(self.log_path, "a") as handle:
            print("$", *argv, file=handle, flush=True)
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=handle, stderr=handle, env=_ENV)
        if (code := done.returncode) != 0:
            # The last unindented line is the error itself, not a hint under it (mount's "dmesg(1) ...").
            text = self.log_path.read_text(errors="replace")
            last = [line for line in text.splitlines() if line[:1].strip()][-1]
            raise BuildError(f"{what} failed (exit {code}): {last} [{self.log_path}]")

    def output(self, argv: list[str], what: str) -> str:
        result = _quiet(*argv)
        if result.returncode != 0:
            raise BuildError(f"{what} failed (exit {result.returncode}): {result.stderr.strip()}")
        return result.stdout


def _release(*argvs: list[str]) -> None:
    """Try each command until one succeeds (umount, then a lazy one); Ctrl-C waits meanwhile,
    as a second one must not leave an image mounted or attached."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        if not any(_quiet(*argv).returncode == 0 for argv in argvs):
            log(f"  warning: could not run {' '.join(argvs[0])}")
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)


def _unmount(path: Path) -> None:
    _release(["umount", "-R", str(path)], ["umount", "-R", "-l", str(path)])


@contextlib.contextmanager
def _mounted(image: Path, mountpoint: Path, runner: _Runner) -> Iterator[Path]:
    """``image`` on a loop device mounted at ``mountpoint``; unmounted and detached after."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    device = runner.output(["losetup", "--find", "--show", str(image)], f"loop device for {image}").strip()
    try:
        runner.run(["mount", "-o", "noatime", device, str(mountpoint)], f"loop mount of {image}")
        try:
            yield mountpoint
        finally:
            _unmount(mountpoint)
    finally:
        _release(["losetup", "-d", device])


@contextlib.contextmanager
def _chroot(root: Path, runner: _Runner) -> Iterator[None]:
    """/proc, /sys and /dev mounted under ``root``, and a policy-rc.d that keeps services down."""
    with contextlib.ExitStack() as stack:
        for spec in _MOUNTS:
            *options, target = spec.split()
            runner.run(["mount", *options, str(root / target)], f"mounting /{target} in the chroot")
            stack.callback(_unmount, root / target)
        policy = root / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        stack.callback(policy.unlink, missing_ok=True)
        yield


def _clear_stale(directory: Path, mountpoint: Path) -> None:
    """Undo what a killed build left: its mounts, its loop devices, its partial images."""
    if mountpoint.is_dir() and os.path.ismount(mountpoint):
        _unmount(mountpoint)
    for partial in directory.glob("*.partial"):
        for line in _quiet("losetup", "-j", str(partial)).stdout.splitlines():
            _release(["losetup", "-d", line.split(":", 1)[0]])
        remove(partial)


def apt_mirror(suite: str = SUITE) -> str:
    """The URI this machine's apt sources use for ``suite`` (apt itself parses them, both formats)."""
    fmt = "$(REPO_URI) $(RELEASE) $(TARGET_OF)"
    found = _quiet("apt-get", "indextargets", "--no-release-info", "--format", fmt)
    for line in found.stdout.splitlines() if found.returncode == 0 else []:
        if line.split()[1:] == [suite, "deb"]:
            return line.split()[0].rstrip("/")
    return DEFAULT_MIRROR


def _preflight(runner: _Runner, mirror: str) -> None:
    """Fail early, with the reason, on what would otherwise fail minutes into a build."""
    if os.geteuid() != 0:
        raise BuildError("building real images needs root (loop devices, mount, chroot)")
    if missing := [tool for tool in _TOOLS if shutil.which(tool, path=_PATH) is None]:
        raise BuildError(f"not installed: {' '.join(missing)}")
    url = f"{mirror}/dists/{SUITE}/Release"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            response.read(1024)
    except OSError as exc:
        raise BuildError(f"mirror {mirror} unreachable ({url}: {exc})") from exc
    if shutil.which("debootstrap", path=_PATH) is None:
        log("installing debootstrap with apt-get")
        install = "apt-get install -yq debootstrap"
        runner.run(["sh", "-c", f"{install} || (apt-get update -q && {install})"], install)


def _install(root: Path, step: Step, runner: _Runner) -> int:
    """Apply ``step`` inside the mounted image, tidy apt's caches; return the installed package count."""
    with _chroot(root, runner):
        chroot = ["chroot", str(root)]
        if step.packages:
            log(f"  {step.version}: apt-get install {' '.join(step.packages)}")
            runner.run([*chroot, "apt-get", "-q", "update"], f"{step.version}: apt-get update in the chroot")
            install = ["apt-get", "-q", "-y", "install", "--no-install-recommends", *step.packages]
            runner.run([*chroot, *install], f"{step.version}: apt-get install in the chroot")
        for path, line in step.appended:  # in the chroot, so symlinks resolve inside the image
            log(f"  {step.version}: appending {line!r} to {path}")
            append = 'test -f "$0" && printf "%s\\n" "$1" >> "$0"'
            runner.run([*chroot, "sh", "-c", append, path, line], f"{step.version}: appending to {path}")
        runner.run([*chroot, "sh", "-c", _TIDY], f"{step.version}: cleaning apt caches")
        statuses = runner.output([*chroot, "dpkg-query", "-W", "-f=${db:Status-Status}\\n"], "dpkg-query")
    return statuses.split().count("installed")


def _build(step: Step, previous: Path | None, target: Path, size: int, mirror: str, runner: _Runner) -> int:
    """Build ``target`` from ``previous`` (or from nothing) under a partial name; return packages."""
    partial = target.with_name(target.name + ".partial")
    remove(partial)
    if previous is None:
        log(f"  {step.version}: mkfs.ext4 on a sparse {format_size(size)} file")
        runner.run(["truncate", "-s", str(size), str(partial)], "creating a sparse file")
        runner.run(["mkfs.ext4", *MKFS_OPTIONS, str(partial)], "mkfs.ext4")
    else:
        log(f"  {step.version}: sparse copy of {previous.name}")
        runner.run(["cp", "--sparse=always", str(previous), str(partial)], f"copying {previous.name}")
    with _mounted(partial, target.parent / ".mnt", runner) as root:
        if previous is None:
            log(f"  {step.version}: debootstrap --variant=minbase {SUITE} from {mirror} (several minutes)")
            runner.run(["debootstrap", "--variant=minbase", SUITE, str(root), mirror], "debootstrap")
        installed = _install(root, step, runner)
    # Unmounted, the allocator's preallocations are released too (fstrim on the mounted filesystem
    # misses them): check the filesystem and punch every free block back into a hole.
    runner.run(["e2fsck", "-f", "-p", "-E", "discard", str(partial)], f"{step.version}: e2fsck")
    return installed


def digest(path: Path) -> str:
    """xxh3-128 of the whole file, holes read as zeros."""
    hasher = xxhash.xxh3_128()
    buffer = bytearray(8 * MIB)
    with open(path, "rb", buffering=0) as handle:
        while got := handle.readinto(buffer):
            hasher.update(memoryview(buffer)[:got])
    return hasher.hexdigest()


def _data_windows(fd: int, size: int) -> set[int]:
    """Indexes of the ``WINDOW``s holding data (all of them if SEEK_DATA is not supported)."""
    windows: set[int] = set()
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
            end = os.lseek(fd, start, os.SEEK_HOLE)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                break
            return set(range(-(-size // WINDOW)))
        windows.update(range(start // WINDOW, -(-end // WINDOW)))
        offset = end
    return windows


def changed_blocks(previous: Path | None, current: Path) -> int:
    """4 KiB blocks of ``current`` that differ from ``previous`` (from zeros if there is none);
    only windows where either file has data are read, as a hole in both is equal by definition."""
    with contextlib.ExitStack() as stack:
        new_fd = stack.enter_context(open(current, "rb", buffering=0)).fileno()
        old_fd = stack.enter_context(open(previous, "rb", buffering=0)).fileno() if previous else None
        fds = [fd for fd in (old_fd, new_fd) if fd is not None]
        size = max(os.fstat(fd).st_size for fd in fds)
        windows = set[int]().union(*(_data_windows(fd, size) for fd in fds))
        zeros = bytes(WINDOW)
        changed = 0
        for index in sorted(windows):
            new = os.pread(new_fd, WINDOW, index * WINDOW).ljust(WINDOW, b"\0")
            old = zeros if old_fd is None else os.pread(old_fd, WINDOW, index * WINDOW).ljust(WINDOW, b"\0")
            if old != new:
                changed += sum(old[at : at + BLOCK] != new[at : at + BLOCK] for at in range(0, WINDOW, BLOCK))
    return changed


def _reusable(directory: Path, size: int) -> list[dict[str, Any]]:
    """The manifest's leading entries whose images are untouched since built, if recipe and size match."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return []
    if manifest.get("recipe") != RECIPE or manifest.get("size") != size:
        return []
    entries: list[dict[str, Any]] = []
    for step, entry in zip(STEPS, manifest.get("versions", []), strict=False):
        path = directory / f"{step.version}.raw"
        stat = path.stat() if entry.get("file") == path.name and path.is_file() else None
        if stat is None or stat.st_size != size or stat.st_mtime_ns != entry.get("mtime_ns"):
            break
        entries.append(entry)
    return entries


def _save(directory: Path, size: int, mirror: str | None, entries: list[dict[str, Any]]) -> None:
    write_json(directory / MANIFEST, {"recipe": RECIPE, "size": size, "mirror": mirror, "versions": entries})


def ensure_chain(directory: Path, size: int, *, rebuild: bool = False) -> list[dict[str, Any]]:
    """The manifest entries of the whole chain, building every version that is missing or stale."""
    if size < MIN_SIZE:
        raise BuildError(f"--size {format_size(size)} is too small: the chain needs {format_size(MIN_SIZE)}")
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    with open(os.open(directory / ".lock", os.O_RDONLY | os.O_CREAT, 0o644)) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time; readers wait for it to finish
        entries = [] if rebuild else _reusable(directory, size)
        if len(entries) == len(STEPS):
            log(f"reusing {len(entries)} cached images in {directory}")
        else:
            _build_rest(directory, size, entries)
    return entries


def _build_rest(directory: Path, size: int, entries: list[dict[str, Any]]) -> None:
    """Build the versions after ``entries`` (appended to it), saving the manifest after each, so a
    build killed at v3 keeps v1 and v2 and rebuilds v3 only."""
    runner = _Runner(directory / "build.log")
    mirror = apt_mirror()
    _preflight(runner, mirror)
    _clear_stale(directory, directory / ".mnt")
    remove(*(directory / f"{step.version}.raw" for step in STEPS[len(entries) :]))
    _save(directory, size, mirror, entries)
    for step in STEPS[len(entries) :]:
        target = directory / f"{step.version}.raw"
        previous = directory / entries[-1]["file"] if entries else None
        log(f"building {target} (log: {runner.log_path})")
        started = time.perf_counter()
        installed = _build(step, previous, target, size, mirror, runner)
        partial = target.with_name(target.name + ".partial")
        log(f"  {step.version}: digest and changed blocks")
        entry = {
            "version": step.version,
            "file": target.name,
            "xxh3_128": digest(partial),
            "changed_blocks": changed_blocks(previous, partial),
            "adds": list(step.packages) if previous else [f"debootstrap --variant=minbase {SUITE}"],
            "appended": [list(pair) for pair in step.appended],
            "installed_packages": installed,
            "build_seconds": round(time.perf_counter() - started, 1),
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.replace(partial, target)
        entry["mtime_ns"] = target.stat().st_mtime_ns
        entries.append(entry)
        _save(directory, size, mirror, entries)
        log(f"  {step.version}: done in {entry['build_seconds']} s")


def real_chain(directory: Path | None = None, *, size: int = 1 * GIB, rebuild: bool = False) -> list[Path]:
    """The chain's image paths, oldest first, building what is missing (raises :class:`BuildError`)."""
    directory = (directory or REAL_DIR).resolve()
    return [directory / entry["file"] for entry in ensure_chain(directory, size, rebuild=rebuild)]


def table(directory: Path, entries: list[dict[str, Any]]) -> str:
    """Version, apparent and allocated size, digest, and 4 KiB blocks changed from the previous one."""
    rows: list[list[str]] = []
    for entry in entries:
        stat, changed = (directory / entry["file"]).stat(), int(entry["changed_blocks"])
        sizes = [format_size(stat.st_size), f"{stat.st_blocks * 512:,}", entry["xxh3_128"], f"{changed:,}"]
        rows.append([entry["file"], *sizes, format_size(changed * BLOCK), str(entry["installed_packages"])])
    headers = ["image", "size", "allocated B", "xxh3-128", "4K blocks changed", "changed", "packages"]
    note = "changed: against the previous version (v1: against an all-zero disk)"
    return render_table(headers, rows, right=[False, True, True, False, True, True, True]) + "\n" + note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build (or reuse) the chain of real Linux disk images.")
    parser.add_argument("--out", type=Path, default=REAL_DIR, help=f"cache directory (default {REAL_DIR})")
    parser.add_argument("--size", type=parse_size, default=GIB, help="image size (default 1GiB)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild every image even if cached")
    args = parser.parse_args(argv)
    directory: Path = args.out.resolve()
    started = time.perf_counter()
    try:
        entries = ensure_chain(directory, args.size, rebuild=args.rebuild)
    except BuildError as exc:
        log(f"real_images: error: {exc}")
        return 1
    except KeyboardInterrupt:
        log("real_images: interrupted; mounts and loop devices released, no image marked finished")
        return 130
    print(table(directory, entries))
    log(f"manifest: {directory / MANIFEST}; {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
