"""The daemon benchmark's timed steps and its setup (see ``daemon.py`` for what each measures).

A daemon step is timed from here around what the benchmark's own client does (the upload) or
around a child that runs the clients (downloads, metadata); its sample carries the daemon's
peak RSS in that step (reset before it), and the daemon's CPU time plus the clients'. The CLI
steps are timed from spawn to exit, their peak RSS from GNU ``time``; the library baselines
run in children of their own.
"""

from __future__ import annotations

import dataclasses
import io
import json
import pstats
import resource
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from _daemon_load import RANGE_SIZE, range_digests
from _daemon_server import Api, Daemon, blobrep
from _daemon_wire import WireServer
from _harness import KIB, MIB, Sample, cpu_busy_s, format_size, load1, log, run_child, settle
from _images import SEED
from _steps import TimedSteps

from blobrep.service import SyntheticImage

REGION: Final = "westcentralus"
GALLERY: Final = "bench"
IMAGE_NAME: Final = "vm"
VERSION: Final = "1.0.0"
DOWNLOAD_REPLICAS: Final = 5
META_IMAGE: Final = "meta"
META_VERSIONS: Final = 10
META_SIZE: Final = 1 * MIB


def blobrep_script() -> str:
    """``blobrep`` as a user runs it: this environment's console script."""
    return str(Path(sys.executable).parent / "blobrep")


class Steps(TimedSteps):
    """The timed steps; the daemon's are timed from here, the rest in children."""

    script = Path(__file__).resolve().with_name("daemon.py")
    key_width = 9

    def __init__(self, run_dir: Path, daemon: Daemon, api: Api, image: Path) -> None:
        super().__init__(run_dir)
        self.daemon = daemon
        self.api = api
        self.image = image
        self.size = image.stat().st_size
        self.cli_home = run_dir / "cli-home"

    def _around_daemon(self, action: Callable[[], tuple[float, dict[str, Any]]]) -> Sample:
        """Run ``action`` (it returns its seconds and details) with the daemon's peak RSS reset
        first: the sample carries that peak, and the daemon's CPU time plus ``action``'s own."""
        settle()
        self.daemon.reset_peak()
        before = self.daemon.rss_kib()
        load = load1()
        busy = cpu_busy_s()
        user, system = self.daemon.cpu_times()
        started_usage = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        seconds, details = action()
        wall = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_SELF)
        user_after, system_after = self.daemon.cpu_times()
        user, system = user_after - user, system_after - system
        daemon_cpu = user + system
        busy = cpu_busy_s() - busy
        own = usage.ru_utime + usage.ru_stime - started_usage.ru_utime - started_usage.ru_stime
        cpu = daemon_cpu + own + float(details.pop("_child_cpu_s", 0.0))
        return Sample(
            seconds=seconds,
            wall_s=wall,
            peak_rss_kib=self.daemon.peak_rss_kib(),
            cpu_s=cpu,
            load1=load,
            other_cpu_s=max(0.0, busy - cpu),
            details={
                **details,
                "daemon_rss_before_mib": round(before / KIB, 1),
                "daemon_cpu_s": round(daemon_cpu, 3),
                "daemon_user_s": round(user, 3),
                "daemon_system_s": round(system, 3),
            },
        )

    def _in_child(self, spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        """``spec`` in a child, for :meth:`_around_daemon`: the child's peak RSS goes in the details."""
        sample, result = self.child(spec)
        return sample.seconds, {
            **result,
            "client_peak_rss_mib": round(sample.peak_rss_kib / KIB, 1),
            "_child_cpu_s": sample.cpu_s,
        }

    # --- upload -------------------------------------------------------------------------------

    def upload(self, round_: int) -> None:
        gallery = f"up{round_}"
        self.api.put_gallery(gallery, REGION)
        self.api.put_definition(gallery, IMAGE_NAME)

        def action() -> tuple[float, dict[str, Any]]:
            started = time.perf_counter()
            published = self.api.create_version(
                gallery, IMAGE_NAME, VERSION, self.image, region=REGION, replicas=1
            )
            profile = published["properties"]["storageProfile"]
            return time.perf_counter() - started, {"gallery": gallery, "stored_bytes": profile["storedBytes"]}

        self.record("upload", self._around_daemon(action))

    def publish(self, round_: int) -> None:
        store = self.path(f"publish-{round_}")
        argv = [blobrep_script(), "blob", "publish", "--store", str(store), "--gallery", GALLERY]
        argv += ["--name", f"{IMAGE_NAME}/versions/{VERSION}", str(self.image)]
        settle()
        sample = self.in_parent(lambda: [run_child(argv)], lambda _: {"store": store.name})
        self.record("publish", sample)
        shutil.rmtree(store)

    def create(self, round_: int) -> None:
        gallery = f"cli{round_}"
        blobrep(self.cli_home, "sig", "create", "-r", gallery, "-l", REGION)
        definition = ["-r", gallery, "-i", IMAGE_NAME, "--publisher", "bench", "--offer", "synthetic"]
        definition += ["--sku", "vm", "--os-type", "Linux"]
        blobrep(self.cli_home, "sig", "image-definition", "create", *definition)
        argv = [blobrep_script(), "--home", str(self.cli_home), "sig", "image-version", "create"]
        argv += ["-r", gallery, "-i", IMAGE_NAME, "-e", VERSION, "--target-regions", f"{REGION}=1"]
        argv += ["--source", str(self.image)]
        settle()
        self.record("create", self.in_parent(lambda: [run_child(argv)], lambda _: {"gallery": gallery}))

    # --- download -----------------------------------------------------------------------------

    def download(self, spec: dict[str, Any]) -> None:
        sample = self._around_daemon(lambda: self._in_child({**spec, "op": "download"}))
        self.record("download", sample)
        details = sample.details
        log(
            f"    {details['exact']}/{details['expected_requests']} ranges exact, {details['failed']} failed;"
            f" request p50 {details['request']['p50_ms']} ms p99 {details['request']['p99_ms']} ms;"
            f" cpu: daemon {details['daemon_cpu_s']} s, clients {details['client_cpu_s']} s"
        )

    def library(self, key: str, spec: dict[str, Any]) -> None:
        self.record(key, self.child(spec)[0])

    def wire(self, spec: dict[str, Any], etag: str) -> None:
        """The download clients against the floor server (:mod:`_daemon_wire`); the sample's
        CPU is the clients' and the server's."""
        settle()
        with WireServer(self.image, etag) as server:
            before = server.cpu_s()
            sample, _ = self.child({**spec, "op": "download", "url": server.url, "token": None})
            server_cpu = server.cpu_s() - before
        details = {**sample.details, "server_cpu_s": round(server_cpu, 3)}
        self.record("wire", dataclasses.replace(sample, cpu_s=sample.cpu_s + server_cpu, details=details))

    # --- metadata -----------------------------------------------------------------------------

    def metadata(self, key: str, spec: dict[str, Any]) -> None:
        """A metadata load in a child; the sample's ``seconds`` is its p99 latency."""

        def action() -> tuple[float, dict[str, Any]]:
            window, details = self._in_child(spec)
            return float(details["p99_ms"]) / 1000, {**details, "window_s": round(window, 3)}

        sample = self.record(key, self._around_daemon(action))
        details = sample.details
        log(
            f"    {details['requests_per_s']} req/s, p50 {details['p50_ms']} ms, p99 {details['p99_ms']} ms,"
            f" statuses {details['statuses']}"
        )


# --- setup ------------------------------------------------------------------------------------


def setup_download(api: Api, image: Path, run_dir: Path) -> dict[str, Any]:
    """Version 1.0.0 of ``bench/vm`` in :data:`DOWNLOAD_REPLICAS` replicas (untimed), the
    definition of small versions for the list, and the digest of every 4 MiB range."""
    api.put_gallery(GALLERY, REGION)
    api.put_definition(GALLERY, IMAGE_NAME)
    started = time.perf_counter()
    published = api.create_version(
        GALLERY, IMAGE_NAME, VERSION, image, region=REGION, replicas=DOWNLOAD_REPLICAS
    )
    seconds = time.perf_counter() - started
    profile = published["properties"]["storageProfile"]
    log(f"  uploaded {VERSION} into {REGION}={DOWNLOAD_REPLICAS} in {seconds:.1f} s")
    small = run_dir / "small.img"
    with open(small, "wb") as out:
        for block in SyntheticImage(META_SIZE, SEED).blocks():
            out.write(block)
    api.put_definition(GALLERY, META_IMAGE)
    for number in range(META_VERSIONS):
        api.create_version(GALLERY, META_IMAGE, f"1.0.{number}", small, region=REGION, replicas=1)
    digests = run_dir / "range-digests.json"
    started = time.perf_counter()
    digests.write_text(json.dumps(range_digests(image, RANGE_SIZE)))
    log(
        f"  hashed every {format_size(RANGE_SIZE)} range of the image"
        f" in {time.perf_counter() - started:.1f} s"
    )
    return {
        "upload_seconds": round(seconds, 3),
        "size": profile["sizeInBytes"],
        "digest": profile["digest"],
        "stored_bytes": profile["storedBytes"],
        "chunks": profile["chunks"],
        "digests_file": str(digests),
    }


def write_profile(profile: Path, where: Path) -> Path:
    """The profile's top functions, by cumulative and by own time, as text beside it."""
    text = io.StringIO()
    for order in ("cumulative", "tottime"):
        stats = pstats.Stats(str(profile), stream=text)
        stats.sort_stats(order).print_stats(40)
    top = where / "daemon-top.txt"
    top.write_text(text.getvalue())
    return top
