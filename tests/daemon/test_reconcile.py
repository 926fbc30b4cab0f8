"""The daemon replicates by itself: new versions and raised counts reach every target region,
a daemon killed with SIGKILL mid-replication resumes on restart without copying anything twice,
and a region that cannot be written is retried with backoff, then left Failed."""

from __future__ import annotations

import filecmp
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from blobrep.service import SyntheticImage
from tests.daemon.conftest import DEFINITION, GALLERY, IMAGE, free_port, ok, stop

MIB = 1024 * 1024
VERSIONS = f"/galleries/{GALLERY}/images/{IMAGE}/versions"
#: Seconds between passes in these tests: quick enough that waiting on the loop costs little.
INTERVAL = "0.05"


@dataclass(frozen=True)
class Served:
    """A ``blobrep serve`` started by these tests, its standard error in a file."""

    url: str
    process: subprocess.Popen[str]
    log: Path
    token: str

    def version(self, number: str) -> dict[str, Any]:
        response = httpx.get(
            f"{self.url}{VERSIONS}/{number}",
            params={"$expand": "ReplicationStatus"},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document

    def wait_for(self, number: str, *states: str, replicas: int = 1, timeout: float = 20) -> dict[str, Any]:
        """The version once its aggregated replication state is one of ``states`` (a Completed
        one with ``replicas`` replicas complete in every region)."""
        deadline = time.monotonic() + timeout
        while True:
            document = self.version(number)
            status = document["properties"]["replicationStatus"]
            whole = all(entry["replicas"]["completed"] >= replicas for entry in status["summary"])
            if status["aggregatedState"] in states and (status["aggregatedState"] != "Completed" or whole):
                return document
            assert time.monotonic() < deadline, json.dumps(status)
            time.sleep(0.05)

    def publish(self, number: str, disk: Path, *regions: str) -> str:
        """Describe ``number`` with its target regions, upload ``disk``; its operation's URL."""
        headers = {"Authorization": f"Bearer {self.token}"}
        body = {"properties": {"publishingProfile": {"targetRegions": [{"name": name} for name in regions]}}}
        described = httpx.put(f"{self.url}{VERSIONS}/{number}", json=body, headers=headers, timeout=10)
        assert described.status_code == 201, described.text
        uploaded = httpx.put(
            f"{self.url}{VERSIONS}/{number}/content", content=disk.read_bytes(), headers=headers, timeout=60
        )
        assert uploaded.status_code == 200, uploaded.text
        return described.headers["Azure-AsyncOperation"]

    def operation(self, url: str) -> dict[str, Any]:
        answer = httpx.get(url, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)
        assert answer.status_code == 200, answer.text
        document: dict[str, Any] = answer.json()
        return document

    def metrics(self) -> dict[str, float]:
        """The reconcile loop's numbers on ``/metrics`` (samples without labels)."""
        answer = httpx.get(f"{self.url}/metrics", timeout=10)
        assert answer.status_code == 200, answer.text
        found = {}
        for line in answer.text.splitlines():
            name, _, value = line.partition(" ")
            if name.startswith("blobrep_reconcile_"):
                found[name] = float(value)
        return found

    def events(self, event: str) -> list[dict[str, Any]]:
        """The JSON log lines of the daemon so far that record ``event``."""
        found = []
        for line in self.log.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("event") == event:
                found.append(record)
        return found


def _launch(cwd: Path, home: Path, log: Path, interval: str = INTERVAL) -> tuple[subprocess.Popen[str], str]:
    """``blobrep serve`` on ``home`` and a free port, its standard error appended to ``log``;
    the process and its URL, at once (not waiting for it to answer)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BLOBREP_")}
    port = free_port()
    command = [sys.executable, "-m", "blobrep", "--home", str(home), "serve", "--port", str(port)]
    with open(log, "a") as errors:
        process = subprocess.Popen(
            [*command, "--reconcile-interval", interval],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            text=True,
        )
    return process, f"http://127.0.0.1:{port}"


def _serve(cwd: Path, home: Path, token: str, interval: str = INTERVAL) -> Served:
    """The daemon on ``home`` once it answers ``/livez``; its log appends to ``cwd/serve.log``."""
    log = cwd / "serve.log"
    process, url = _launch(cwd, home, log, interval)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/livez", timeout=1).status_code == 200:
                return Served(url, process, log, token)
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError("blobrep serve did not answer /livez within 30 s")


def _home(cwd: Path, size: int, *, random_halves: bool = False) -> tuple[Path, Path, str]:
    """A home with ``gal/img`` and a disk file of ``size`` bytes; its admin token."""
    home = cwd / ".blobrep"
    disk = cwd / "disk.raw"
    with open(disk, "wb") as out:
        if random_halves:  # incompressible, so replication takes long enough to interrupt
            for _ in range(size // MIB):
                out.write(os.urandom(MIB // 2) + bytes(MIB // 2))
        else:
            for block in SyntheticImage(size, seed=5).blocks():
                out.write(block)
    ok(cwd, "sig", "create", "-r", GALLERY, "--location", "westcentralus")
    fields = ("--publisher", "p", "--offer", "o", "--sku", "s", "--os-type", "Linux")
    ok(cwd, "sig", "image-definition", "create", *DEFINITION, *fields)
    token = json.loads(ok(cwd, "token", "create", "--principal", "admin"))["token"]
    return home, disk, token


def _replica(home: Path, region: str, number: int = 1) -> Path:
    return home / "regions" / region / f"replica-{number}"


def _objects(replica: Path) -> dict[Path, tuple[int, int]]:
    """Every finished file of chunk data of the gallery in ``replica`` (the packs a version
    published through the service is stored in, and any chunk stored alone):
    path -> (inode, mtime)."""
    found = {}
    for kind in ("packs", "chunks"):
        for directory, _, names in os.walk(replica / "galleries" / GALLERY / kind):
            for name in names:
                if "~" not in name:  # a temporary file being written
                    stat = (Path(directory) / name).stat()
                    found[Path(directory) / name] = (stat.st_ino, stat.st_mtime_ns)
    return found


def _restores_exactly(cwd: Path, replica: Path, number: str, disk: Path) -> bool:
    """The replica's copy of the version, restored with every chunk verified, is ``disk``."""
    out = cwd / f"restored-{replica.parent.name}-{replica.name}.raw"
    name = f"{IMAGE}/versions/{number}"
    ok(cwd, "blob", "restore", "--store", replica, "--gallery", GALLERY, "--name", name, "--output", out)
    same = filecmp.cmp(out, disk, shallow=False)
    out.unlink()
    return same


def _summary(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["region"]: entry for entry in document["properties"]["replicationStatus"]["summary"]}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Path]]:
    """A daemon passing every 50 ms over a home with ``gal/img`` and nothing published yet."""
    cwd = tmp_path_factory.mktemp("reconcile")
    home, disk, token = _home(cwd, 6 * MIB)
    running = _serve(cwd, home, token)
    try:
        yield running, disk
    finally:
        code, _ = stop(running.process)
        assert code == 0, running.log.read_text()


def test_a_version_published_with_the_cli_reaches_its_other_regions_on_its_own(
    served: tuple[Served, Path],
) -> None:
    daemon, disk = served
    cwd, home = disk.parent, disk.parent / ".blobrep"
    targets = ("westcentralus", "eastus2", "westeurope")
    ok(cwd, "sig", "image-version", "create", *DEFINITION, "-e", "1.0.0", "--source", disk,
       "--target-regions", *targets, "--no-wait")  # fmt: skip

    document = daemon.wait_for("1.0.0", "Completed", "Failed")

    summary = _summary(document)
    states = {region: entry["state"] for region, entry in summary.items()}
    assert states == dict.fromkeys(targets, "Completed")
    assert all(entry["progress"] == 100 for entry in summary.values())
    for region in ("eastus2", "westeurope"):
        assert _restores_exactly(cwd, _replica(home, region), "1.0.0", disk)
    # What it copied is on /metrics: every chunk into each of the two new regions.
    metrics = httpx.get(f"{daemon.url}/metrics", timeout=10).text
    copied = re.search(r"^blobrep_replication_bytes_total (\S+)$", metrics, re.MULTILINE)
    assert copied is not None, metrics
    assert float(copied[1]) >= 2 * document["properties"]["storageProfile"]["storedBytes"] > 0
    # The loop said what it saw: each region it brought from waiting to Completed (its log
    # line may follow the catalog's change by a moment).
    deadline = time.monotonic() + 5
    while True:
        changes = {(line["region"], line["new_state"]) for line in daemon.events("region_state")}
        if {("eastus2", "Completed"), ("westeurope", "Completed")} <= changes:
            break
        assert time.monotonic() < deadline, daemon.log.read_text()
        time.sleep(0.05)


def test_a_raised_replica_count_is_filled_on_its_own(served: tuple[Served, Path]) -> None:
    daemon, disk = served
    cwd, home = disk.parent, disk.parent / ".blobrep"
    ok(cwd, "sig", "image-version", "create", *DEFINITION, "-e", "1.1.0", "--source", disk,
       "--target-regions", "westcentralus", "southeastasia")  # fmt: skip
    assert not _replica(home, "southeastasia", 2).exists()

    ok(cwd, "sig", "image-version", "update", *DEFINITION, "-e", "1.1.0", "--replica-count", "2", "--no-wait")
    document = daemon.wait_for("1.1.0", "Completed", "Failed", replicas=2)

    for region, entry in _summary(document).items():
        assert (entry["state"], entry["replicas"]) == ("Completed", {"completed": 2, "target": 2}), region
        assert _restores_exactly(cwd, _replica(home, region, 2), "1.1.0", disk)


@pytest.mark.slow
def test_a_daemon_killed_mid_replication_resumes_on_restart_and_copies_nothing_twice(
    tmp_path: Path,
) -> None:
    home, disk, token = _home(tmp_path, 128 * MIB, random_halves=True)
    ok(tmp_path, "sig", "image-version", "create", *DEFINITION, "-e", "1.0.0", "--source", disk,
       "--target-regions", "westcentralus", "eastus2", "--no-wait")  # fmt: skip
    # The version is in packs of 4 MiB: its 64 MiB of random data make about sixteen.
    published = _objects(_replica(home, "westcentralus"))
    total = len(published)
    assert total >= 12 and all(path.parent.parent.name == "packs" for path in published)
    target = _replica(home, "eastus2")

    # The first pass starts replicating as the daemon starts: watch the target from the outset.
    # Killed once two packs (8 MiB, as eight chunks of 1 MiB were) have landed.
    process, _ = _launch(tmp_path, home, tmp_path / "serve.log")
    deadline = time.monotonic() + 30
    while process.poll() is None and time.monotonic() < deadline and len(_objects(target)) < 2:
        time.sleep(0.001)
    alive = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert alive, (tmp_path / "serve.log").read_text()
    present = _objects(target)
    assert 2 <= len(present) < total, f"{len(present)} of {total} packs: the kill came too late"

    daemon = _serve(tmp_path, home, token)
    try:
        document = daemon.wait_for("1.0.0", "Completed", "Failed")
    finally:
        code, _ = stop(daemon.process)
    assert code == 0, daemon.log.read_text()

    assert _summary(document)["eastus2"]["state"] == "Completed"
    assert _restores_exactly(tmp_path, target, "1.0.0", disk)
    after = _objects(target)
    assert len(after) == total
    # Every pack there at the kill is the same file, untouched: nothing was copied twice.
    assert {path: after[path] for path in present} == present


def test_a_version_uploaded_over_http_is_replicated_at_once_not_at_the_next_pass(tmp_path: Path) -> None:
    home, disk, token = _home(tmp_path, 4 * MIB)
    daemon = _serve(tmp_path, home, token, interval="600")  # the passes alone would take ten minutes
    try:
        operation = daemon.publish("1.0.0", disk, "westcentralus", "eastus2")
        document = daemon.wait_for("1.0.0", "Completed", "Failed", timeout=15)
        ended = daemon.operation(operation)
    finally:
        code, _ = stop(daemon.process)
    assert code == 0, daemon.log.read_text()

    assert _summary(document)["eastus2"]["state"] == "Completed"
    assert ended["status"] == "Succeeded"
    assert _restores_exactly(tmp_path, _replica(home, "eastus2"), "1.0.0", disk)


@pytest.mark.slow
def test_a_region_that_cannot_be_written_is_retried_with_backoff_then_left_failed(tmp_path: Path) -> None:
    home, disk, token = _home(tmp_path, 2 * MIB)
    # Where the replica keeps the gallery's chunks and manifests, a file: every write fails.
    broken = _replica(home, "southcentralus") / "galleries"
    broken.parent.mkdir(parents=True)
    broken.write_text("not a directory\n")
    daemon = _serve(tmp_path, home, token)
    try:
        operation = daemon.publish("1.0.0", disk, "westcentralus", "southcentralus")
        deadline = time.monotonic() + 20
        while not daemon.events("region_retry"):
            assert time.monotonic() < deadline, daemon.log.read_text()
            time.sleep(0.02)
        # The region is Failed, and retries are still to come (at least 1.8 s of them).
        retrying, behind = daemon.operation(operation), daemon.metrics()
        while not daemon.events("region_gave_up"):
            assert time.monotonic() < deadline, daemon.log.read_text()
            time.sleep(0.05)
        document = daemon.version("1.0.0")
        time.sleep(1.0)  # twenty passes: none of them tries the region again
        retries = daemon.events("region_retry")
        (gave_up,) = daemon.events("region_gave_up")
        document_later = daemon.version("1.0.0")
        ended, settled = daemon.operation(operation), daemon.metrics()
    finally:
        code, _ = stop(daemon.process)
    assert code == 0, daemon.log.read_text()

    # Attempts 1 to 4 each scheduled a retry, each wait about twice the one before (the
    # jitter takes off at most half), and each retry came no sooner than scheduled.
    assert [line["attempts"] for line in retries] == [1, 2, 3, 4]
    assert all(line["region"] == "southcentralus" for line in [*retries, gave_up])
    waits = [line["retry_in"] for line in retries]
    assert 0.125 <= waits[0] <= 0.25
    for before, after in itertools.pairwise(waits):
        assert after >= before
    times = [_seconds(line["time"]) for line in [*retries, gave_up]]
    for (earlier, later), wait in zip(itertools.pairwise(times), waits, strict=True):
        assert later - earlier >= wait - 0.01
    assert gave_up["attempts"] == 5
    assert "5 attempts" in gave_up["details"]

    # The region stays Failed with the reason; the source region is unaffected.
    for seen in (document, document_later):
        summary = _summary(seen)
        assert summary["westcentralus"]["state"] == "Completed"
        assert summary["southcentralus"]["state"] == "Failed"
        assert "southcentralus" in summary["southcentralus"]["details"]
    assert document_later["properties"]["replicationStatus"]["aggregatedState"] == "Failed"
    # The create was in progress while retries were to come, and failed once they were over.
    assert retrying["status"] == "InProgress"
    assert ended["status"] == "Failed"
    assert "southcentralus" in ended["error"]["message"]
    # While retries were to come the loop was behind; a region given up on is Failed, not behind.
    assert behind["blobrep_reconcile_retrying_regions"] == 1
    assert behind["blobrep_reconcile_lag_seconds"] > 0
    assert settled["blobrep_reconcile_given_up_regions"] == 1
    assert settled["blobrep_reconcile_behind_regions"] == 0
    assert settled["blobrep_reconcile_lag_seconds"] == 0


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()
