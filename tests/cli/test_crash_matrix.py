"""SIGKILL at points spread over five operations; every time, the home comes back whole.

Each operation runs as a real ``python -m blobrep`` process in a copy of a home prepared for
it, and is killed after a delay taken from a schedule spread over its measured run time,
counted from when it opened the home (:func:`tests.cli.crash_helpers.schedule`). After each
kill:

* ``fsck`` right away finds nothing wrong (for the scrub, nothing but the planted damage it
  had not repaired yet): the catalog calls no region Completed that does not read whole;
* ``replicate`` exits 0 and ``fsck`` exits 0 (for the scrub, once the planted damage the
  killed scrub was repairing is repaired by running it again);
* no version is left Creating, Updating or Deleting and no region Replicating; the regions
  with a status are the target regions, and every one of a Succeeded version is Completed (an
  interrupted create may leave its version Failed, and then the same create succeeds);
* every region that was Completed before the kill still is (except the one the killed update
  was removing), and every such version restores byte-exact there;
* the job finishes when run again, and after a final ``gc --grace 0`` no temporary of an
  interrupted put or of an output is left, and ``fsck`` is still clean.
"""

from __future__ import annotations

import filecmp
import json
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import pytest

from tests.cli.crash_helpers import (
    GALLERY,
    GC_COMMAND,
    REPLICATE_COMMAND,
    SCRUB_COMMAND,
    TRANSITIONAL,
    UPDATE_COMMAND,
    Pair,
    Prepared,
    VersionState,
    age,
    changes,
    completed_pairs,
    describe,
    lease_files,
    manifest,
    ok,
    output_temporaries,
    prepare,
    read_states,
    replica,
    restore_many,
    run_killed,
    snapshot,
    store_temporaries,
    write_images,
)
from tests.cli.helpers import blobrep

OPERATIONS: Final = ("create", "replicate", "update", "gc", "scrub")
POINTS: Final = 11
REMOVED_BY_UPDATE: Final = ("1.0.0", "eastus2")
"""The region the killed update removes: it may be gone after the kill, or still Completed."""


class CrashHomes:
    """The images and, built on first use, one prepared home per operation (shared by its points)."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self._factory = factory
        self.images = write_images(factory.mktemp("crash-images"))
        self._prepared: dict[str, Prepared] = {}

    def get(self, operation: str) -> Prepared:
        if operation not in self._prepared:
            root = self._factory.mktemp(f"crash-{operation}")
            self._prepared[operation] = prepare(operation, root, self.images, POINTS, print)
        return self._prepared[operation]


@pytest.fixture(scope="session")
def crash_homes(tmp_path_factory: pytest.TempPathFactory) -> CrashHomes:
    return CrashHomes(tmp_path_factory)


def _check_states(
    operation: str, before: Mapping[str, VersionState], after: Mapping[str, VersionState]
) -> None:
    """Nothing unfinished, nothing gone back, every Succeeded version complete everywhere."""
    for version, state in after.items():
        assert state.provisioning not in TRANSITIONAL, (version, state)
        assert set(state.regions) == state.targets, f"{version}: targets and statuses differ: {state}"
        assert "Replicating" not in state.regions.values(), (version, state)
        if state.provisioning == "Failed":
            # Only the create that was killed may have left its version Failed, as interrupted.
            assert (operation, version) == ("create", "1.0.0"), (version, state)
            assert any("interrupted" in details for details in state.details.values()), state
        else:
            assert state.provisioning == "Succeeded", (version, state)
            assert set(state.regions.values()) == {"Completed"}, (version, state)
    for version, region in sorted(completed_pairs(before)):
        assert version in after, f"version {version} vanished: {dict(after)}"
        removable = operation == "update" and (version, region) == REMOVED_BY_UPDATE
        if removable and region not in after[version].regions:
            continue
        assert after[version].regions.get(region) == "Completed", (version, region, after[version])


def _check_restores(home: Path, pairs: Iterable[Pair], images: Mapping[str, Path], cwd: Path) -> None:
    """Each (version, region) restores with ``vm create`` to exactly the image it was published from."""
    directory = cwd / "restored"
    directory.mkdir(exist_ok=True)
    for (version, region), (output, result) in restore_many(home, pairs, directory, cwd).items():
        assert result.returncode == 0, (version, region, result.stderr)
        assert filecmp.cmp(output, images[version], shallow=False), f"{version} in {region} differs"
        output.unlink()
    assert output_temporaries(directory) == []


def _fsck_problems(home: Path, damaged: Mapping[str, str], cwd: Path) -> list[dict[str, Any]]:
    """What ``fsck`` (recovery included) finds and cannot blame on the damage planted for the scrub."""
    result = blobrep("--home", home, "fsck", "-r", GALLERY, cwd=cwd, timeout=120)
    assert result.returncode in (0, 1), (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    left = [problem for problem in report["problems"] if not problem["repaired"]]
    assert (result.returncode == 1) == bool(left), (result.returncode, left, result.stderr)
    return [
        problem
        for problem in left
        if not (problem["region"] == "westcentralus" and damaged.get(problem["what"]) == problem["kind"])
    ]


def _words(problems: Iterable[Mapping[str, Any]]) -> str:
    """fsck problems in one line, counted by kind and replica, with the first detail of each."""
    counted: dict[tuple[str, str], list[str]] = {}
    for item in problems:
        counted.setdefault((item["kind"], item["replica"] or item["region"]), []).append(item["detail"])
    return "; ".join(
        f"{len(details)} {kind} in {where} (first: {details[0]})"
        for (kind, where), details in counted.items()
    )


def _finish(operation: str, prepared: Prepared, home: Path, images: Mapping[str, Path], cwd: Path) -> None:
    """Run the killed job to its end and check what it was for."""
    if operation == "create":
        state = read_states(home, cwd).get("1.0.0")
        if state is None or state.provisioning != "Succeeded":
            ok(home, *prepared.command, cwd=cwd)
            ok(home, *REPLICATE_COMMAND, cwd=cwd)
            state = read_states(home, cwd)["1.0.0"]
        assert state.provisioning == "Succeeded", state
        assert state.regions == {"westcentralus": "Completed", "eastus2": "Completed"}, state
        _check_restores(home, [("1.0.0", "westcentralus"), ("1.0.0", "eastus2")], images, cwd)
    elif operation == "update":
        ok(home, *UPDATE_COMMAND, cwd=cwd)
        state = read_states(home, cwd)["1.0.0"]
        assert state.targets == {"westcentralus"} and state.regions == {"westcentralus": "Completed"}, state
        for number in (1, 2):
            assert not manifest(replica(home, "eastus2", number), "1.0.0").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("operation", "point"),
    [(operation, point) for operation in OPERATIONS for point in range(POINTS)],
    ids=[f"{operation}-{point:02d}" for operation in OPERATIONS for point in range(POINTS)],
)
def test_a_home_killed_at_any_point_recovers_whole(
    operation: str, point: int, crash_homes: CrashHomes, tmp_path: Path
) -> None:
    prepared = crash_homes.get(operation)
    images = crash_homes.images
    home = tmp_path / "home"
    shutil.copytree(prepared.home, home, symlinks=True)

    outcome = run_killed(home, prepared.command, prepared.delays[point], tmp_path)
    if not outcome.killed:
        assert outcome.returncode == 0, outcome.stderr  # it finished first: it must have succeeded
    print(
        f"{operation}-{point:02d}: {'killed' if outcome.killed else 'finished'} at +{outcome.delay:.3f} s,"
        f" {changes(prepared.files, snapshot(home))}, {len(store_temporaries(home))} temporaries"
    )

    # Right after the kill (and the recovery every command runs on opening the home), the
    # catalog must promise nothing the stores do not hold: every region it calls Completed
    # reads whole. Checked here, reported at the end, so the rest of the recovery is checked too.
    right_after = _fsck_problems(home, prepared.damaged, tmp_path)

    ok(home, *REPLICATE_COMMAND, cwd=tmp_path)
    if operation == "scrub":
        # Only the planted damage the killed scrub had not repaired yet may be left; repair it.
        assert _fsck_problems(home, prepared.damaged, tmp_path) == []
        ok(home, *SCRUB_COMMAND, cwd=tmp_path)
    ok(home, "fsck", "-r", GALLERY, cwd=tmp_path)

    after = read_states(home, tmp_path)
    print(f"    then: {describe(after)}")
    _check_states(operation, prepared.before, after)
    survivors = [
        (version, region)
        for version, region in completed_pairs(prepared.before)
        if after[version].regions.get(region) == "Completed"
    ]
    _check_restores(home, survivors, images, tmp_path)

    _finish(operation, prepared, home, images, tmp_path)

    # gc leaves lease temporaries younger than a minute alone even with --grace 0 (a lease
    # acquirer may be writing one right now), so those few are aged as if an hour had passed;
    # every other temporary must go with --grace 0 as it is.
    age((path for path in store_temporaries(home) if path.parent.name == "leases"), 3600)
    ok(home, *GC_COMMAND, cwd=tmp_path)
    assert store_temporaries(home) == []
    assert lease_files(home) == []
    ok(home, "fsck", "-r", GALLERY, cwd=tmp_path)
    assert right_after == [], f"right after the kill, before any replicate, fsck found: {_words(right_after)}"
    shutil.rmtree(home)
