#!/usr/bin/env python3
"""The daemon benchmark: ``blobrep serve`` on loopback, against the library and the CLI.

Run from the repository root::

    .venv/bin/python bench/daemon.py [--size 1GiB] [--repeat 3] [--clients 200] [--passes 4]
                                     [--meta-clients 50] [--seconds 5] [--seed 12345]
                                     [--out bench/results/daemon.json] [--quick] [--profile DIR]

One real ``blobrep serve`` process serves the whole run, on a free loopback port of a fresh
home, as its bootstrap admin (a token from ``blobrep token create``); it is stopped with
SIGTERM at the end and must exit 0. Its peak RSS is reset before each timed step and read
after it (``/proc/PID/clear_refs``, ``VmHWM``), so each daemon row shows the peak the daemon
reached in that step; that includes what earlier steps left behind, so its RSS before each
step is reported too.
The image is the synthetic VM-like one (``--size``, seed ``--seed``). Each kind of step runs
``--repeat`` times, the order of the kinds rotating from repeat to repeat; medians are kept
and the per-repeat (paired) ratios give the range. Against baselines measured in the same run:

1. Upload. The two requests a client makes to create a version over HTTP (``PUT
   .../versions/{v}`` with the description, ``201``; ``PUT .../versions/{v}/content`` with the
   image streamed as the raw body, ``Content-Length`` set, until the ``200`` of the published
   version), one replica in the gallery's region, timed from the first request to the last
   answer: goal within 1.3x of ``blobrep blob publish`` of the same file into a fresh replica
   directory (the same pipeline without a catalog, timed from spawn to exit). ``sig
   image-version create --source`` into a fresh gallery of a CLI home is shown beside it. Every
   upload goes into a gallery of its own and every publish into an empty directory, so no run
   deduplicates against another (chunks are shared within a gallery only). The daemon's peak
   RSS in the upload is shown against the publish's (GNU ``time``).
2. Download. Version 1.0.0 of ``bench/vm`` is uploaded once (untimed) into 5 replicas of the
   region; ``--clients`` HTTP clients then read it with ``Range`` requests of 4 MiB through
   ``GET .../versions/{v}/content``, the daemon's shared reader choosing the least-loaded
   replica per chunk. The work is ``--passes`` sequential passes over the disk's ranges, cut
   into one contiguous share per client (a downloader reading its part of the disk in order,
   one request in flight; the shares start at evenly spread offsets, so every range is read
   ``--passes`` times); the aggregate is ``--passes`` x the image. Every range is
   checked against the source file's bytes (XXH3-128, see :mod:`_daemon_load`). Goal: the
   aggregate throughput at least 0.7x the direct library read of the same bytes in the same
   run, ``--passes`` read-and-discard deployments at once through ``GalleryService`` (what
   ``blobrep vmss create`` does without files: same version, replicas and policy, every chunk
   verified); every range digest-exact; the daemon's peak RSS below 400 MiB. The daemon's own
   range path run in-process without HTTP (its shared-reader pool and ``send_range``) is shown
   too: it tells the cost of reading by 4 MiB ranges (a chunk cut by a range boundary is read
   for both ranges) from the cost of HTTP. And the same clients run against a server that only
   sends the image's bytes from memory (:mod:`_daemon_wire`): the floor of HTTP over loopback
   on this machine, the ceiling of the daemon's throughput.
3. Metadata. ``--meta-clients`` closed-loop clients (each sends its next request when the last
   is answered) for ``--seconds``, against ``GET .../versions/1.0.0`` and the list of a
   definition's 10 versions: goal p99 < 50 ms; ``GET /livez`` (no authentication, no catalog)
   under the same load is the floor of the stack.

The clients run in one child process of their own (anyio tasks, one keep-alive connection
per client), so they compete with the daemon for this machine's cores, as a real client on
the same host would: the client and daemon CPU time of each step are in the JSON. One process
was chosen over several because on 2 cores more client processes would only take more CPU
from the daemon; and the clients speak the little HTTP/1.1 they need themselves
(:mod:`_daemon_http`), because every Python HTTP client library measured here spent more CPU
per request than the daemon does (``httpx.AsyncClient`` with 50 connections, 3.4-4 ms a
request against the daemon's 0.3 ms for ``/livez``; 3 s per GiB downloaded against 0.5 s),
which would have made the clients, not the daemon, the bottleneck.

``--quick`` (about half a minute) runs a 256 MiB image, 50 download clients, 2 s per
metadata target, one repeat; the full run takes about 2.5 minutes on 2 cores. ``--profile
DIR`` runs the daemon under ``python -m cProfile`` (its event loop's thread only) and writes
``DIR/daemon.prof`` and its top functions to ``DIR/daemon-top.txt``; the figures of a
profiled run are slower and marked so.
Results go to ``--out`` as JSON; the table is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Final

from _daemon_load import CHILD_OPERATIONS, RANGE_SIZE
from _daemon_report import (
    DOWNLOAD_GOAL,
    DOWNLOAD_RSS_GOAL_MIB,
    METADATA_P99_GOAL_S,
    UPLOAD_GOAL,
    download_note,
    download_rows,
    latency_table,
    metadata_rows,
    rss_note,
    upload_rows,
)
from _daemon_server import Api, Daemon, make_token, version_path
from _daemon_steps import (
    DOWNLOAD_REPLICAS,
    GALLERY,
    IMAGE_NAME,
    META_IMAGE,
    META_VERSIONS,
    REGION,
    VERSION,
    Steps,
    setup_download,
    write_profile,
)
from _harness import format_size, log, warm
from _images import ensure_image
from _report import noise_note, ratio_note, render
from _run import Run, add_run_options, add_size_options, fill_defaults
from _steps import child_main

import blobrep as package

BENCHMARK: Final = "daemon"

DEFAULT_CLIENTS: Final = 200
QUICK_CLIENTS: Final = 50
DEFAULT_PASSES: Final = 4
DEFAULT_META_CLIENTS: Final = 50
DEFAULT_SECONDS: Final = 5.0
QUICK_SECONDS: Final = 2.0

UPLOAD_ORDER: Final = ("upload", "publish", "create")
DOWNLOAD_ORDER: Final = ("download", "library", "ranges", "wire")
META_ORDER: Final = ("show", "list", "livez")
SERVER_PACKAGES: Final = ("uvicorn", "starlette", "httpx", "h11", "httptools", "uvloop")
"""Packages whose versions go with the results: the HTTP stack on both sides."""


def rotated(keys: tuple[str, ...], round_: int) -> list[str]:
    shift = round_ % len(keys)
    return [*keys[shift:], *keys[:shift]]


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark blobrep serve on loopback: upload, ranged downloads, metadata latency."
    )
    add_size_options(parser)
    parser.add_argument(
        "--clients",
        type=int,
        help=f"concurrent download clients (default {DEFAULT_CLIENTS}; {QUICK_CLIENTS} with --quick)",
    )
    parser.add_argument(
        "--passes",
        type=int,
        default=DEFAULT_PASSES,
        help=f"the downloads read the image this many times in all (default {DEFAULT_PASSES})",
    )
    parser.add_argument(
        "--meta-clients",
        type=int,
        default=DEFAULT_META_CLIENTS,
        help=f"concurrent metadata clients (default {DEFAULT_META_CLIENTS})",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        help=f"seconds of load per metadata target (default {DEFAULT_SECONDS:g};"
        f" {QUICK_SECONDS:g} with --quick)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="run the daemon under cProfile; DIR gets daemon.prof and daemon-top.txt (slower figures)",
    )
    add_run_options(
        parser,
        BENCHMARK,
        quick_help=f"smoke run: a 256 MiB image, {QUICK_CLIENTS} download clients,"
        f" {QUICK_SECONDS:g} s per metadata target, one repeat",
    )
    args = parser.parse_args(argv)
    fill_defaults(args, BENCHMARK)
    quick = bool(args.quick)
    if args.clients is None:
        args.clients = QUICK_CLIENTS if quick else DEFAULT_CLIENTS
    if args.seconds is None:
        args.seconds = QUICK_SECONDS if quick else DEFAULT_SECONDS
    if min(args.repeat, args.clients, args.passes, args.meta_clients) < 1 or args.seconds <= 0:
        parser.error("--repeat, --clients, --passes and --meta-clients must be >= 1, --seconds > 0")
    if args.size < RANGE_SIZE:
        parser.error(f"--size must be at least {format_size(RANGE_SIZE)}")
    ranges = -(-args.size // RANGE_SIZE)
    if ranges * args.passes < args.clients:
        # Every client needs a range to read: a small image is read more times instead.
        args.passes = -(-args.clients // ranges)
        log(f"--passes raised to {args.passes}: {ranges} ranges each time, {args.clients} clients to feed")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        return child_main(args.child, CHILD_OPERATIONS)
    size: int = args.size
    repeat: int = args.repeat
    clients: int = args.clients
    passes: int = args.passes
    profile_dir: Path | None = args.profile
    # The image; the daemon's uploads, the CLI's creates and one publish at a time; 5 replicas.
    run = Run.start(BENCHMARK, argv, needed_bytes=(2 + 2 * repeat + DOWNLOAD_REPLICAS) * size)
    image = ensure_image(size, args.seed)
    warm(image)
    label = format_size(size)
    with run.directory("daemon-") as run_dir:
        home = run_dir / "home"
        token = make_token(home)
        profile = None
        if profile_dir is not None:
            profile_dir.mkdir(parents=True, exist_ok=True)
            profile = profile_dir.resolve() / "daemon.prof"
        daemon = Daemon(home, run_dir / "daemon.log", profile=profile)
        api = Api(daemon.url, token)
        try:
            steps = Steps(run_dir, daemon, api, image)
            log(
                f"blobrep serve on {daemon.url} (pid {daemon.pid});"
                f" peak RSS reset per step: {daemon.reset_peak()}"
            )
            log(f"upload of {label}: {repeat} run(s) of each way, order rotating")
            for round_ in range(repeat):
                for key in rotated(UPLOAD_ORDER, round_):
                    getattr(steps, key)(round_)
            log(f"download setup: {VERSION} into {DOWNLOAD_REPLICAS} replicas (untimed)")
            setup = setup_download(api, image, run_dir)
            version_id = version_path(GALLERY, IMAGE_NAME, VERSION)
            common = {"size": size, "range_size": RANGE_SIZE, "passes": passes}
            specs = {
                "download": {
                    **common,
                    "url": daemon.url,
                    "token": token,
                    "path": f"{version_id}/content",
                    "etag": f'"{setup["digest"]}"',
                    "digests": setup["digests_file"],
                    "clients": clients,
                },
                "library": {
                    **common,
                    "op": "library",
                    "home": str(home),
                    "version_id": version_id,
                    "region": REGION,
                },
                "ranges": {
                    **common,
                    "op": "ranges",
                    "home": str(home),
                    "version_id": version_id,
                    "region": REGION,
                    "clients": clients,
                },
            }
            warm(home)
            log(f"download: {clients} clients, {passes} x {label} in {format_size(RANGE_SIZE)} ranges")
            for round_ in range(repeat):
                for key in rotated(DOWNLOAD_ORDER, round_):
                    log(f"repeat {round_ + 1}/{repeat}: {key}")
                    if key == "download":
                        steps.download(specs[key])
                    elif key == "wire":
                        steps.wire(specs["download"], specs["download"]["etag"])
                    else:
                        steps.library(key, specs[key])
            paths = {
                "show": (version_id, token),
                "list": (f"/galleries/{GALLERY}/images/{META_IMAGE}/versions", token),
                "livez": ("/livez", None),
            }
            log(f"metadata: {args.meta_clients} clients, {args.seconds:g} s per target")
            for round_ in range(repeat):
                for key in rotated(META_ORDER, round_):
                    log(f"repeat {round_ + 1}/{repeat}: {key}")
                    path, credential = paths[key]
                    spec = {"op": "metadata", "url": daemon.url, "token": credential, "path": path}
                    steps.metadata(key, {**spec, "clients": args.meta_clients, "seconds": args.seconds})
        finally:
            api.close()
            daemon.stop()
        daemon_log_lines = len(daemon.log_path.read_bytes().splitlines())
    aggregate = passes * size
    download_label = (
        f"{clients} clients x {format_size(RANGE_SIZE)} ranges, {passes} x {label}, R={DOWNLOAD_REPLICAS}"
    )
    rows = [
        *upload_rows(steps.samples, size, label),
        *download_rows(steps.samples, aggregate, download_label),
        *metadata_rows(steps.samples, args.meta_clients),
    ]
    table = render(rows, steps.samples)
    latencies = latency_table(steps.samples)
    print(
        f"blobrep {package.__version__} daemon benchmark: blobrep serve on loopback; image {label}"
        f" (seed {args.seed}, {setup['chunks']} chunks, {format_size(setup['stored_bytes'])} stored);"
        f" {repeat} repeat(s); {os.cpu_count()} CPUs" + ("; PROFILED (slower)" if profile else "")
    )
    print(table)
    print(
        "MB/s: of image bytes. Download ratio = daemon throughput / library throughput (same bytes)."
        " Peak RSS: the daemon's own in each daemon step (VmHWM, reset before the step); GNU time of"
        " the command or child otherwise. Metadata rows: median over repeats of each run's p99. "
        + ratio_note()
    )
    print(download_note(steps.samples, aggregate))
    print(rss_note(steps.samples))
    print(noise_note(steps.samples))
    print()
    print(latencies)
    top = None
    if profile is not None and profile_dir is not None:
        top = write_profile(profile, profile_dir)
        print(f"profile: {profile}; top functions: {top}")

    def size_of(key: str) -> int:
        if key in UPLOAD_ORDER:
            return size
        if key in DOWNLOAD_ORDER:
            return aggregate
        return 0

    run.finish(
        args.out,
        config={
            "image_size": size,
            "seed": args.seed,
            "quick": args.quick,
            "image": str(image),
            "repeat": repeat,
            "region": REGION,
            "upload_replicas": 1,
            "download_replicas": DOWNLOAD_REPLICAS,
            "range_size": RANGE_SIZE,
            "clients": clients,
            "passes": passes,
            "aggregate_bytes": aggregate,
            "meta_clients": args.meta_clients,
            "meta_seconds": args.seconds,
            "meta_versions_listed": META_VERSIONS,
            "profiled": profile is not None,
            "client": "one child process: httpx.AsyncClient on anyio, one connection per client",
            "library_read": "GalleryService.deploy_scale_set(passes), read and discard, least-loaded",
            "packages": {name: _version(name) for name in SERVER_PACKAGES},
        },
        goals={
            "upload_over_blob_publish_max": UPLOAD_GOAL,
            "download_throughput_over_library_min": DOWNLOAD_GOAL,
            "download_daemon_peak_rss_mib_max": DOWNLOAD_RSS_GOAL_MIB,
            "download_mismatched_or_failed": 0,
            "metadata_p99_s_max": METADATA_P99_GOAL_S,
        },
        rows=rows,
        samples=steps.samples,
        size_of=size_of,
        extra={
            "setup": setup,
            "latency_table": latencies.splitlines(),
            "download_note": download_note(steps.samples, aggregate),
            "rss_note": rss_note(steps.samples),
            "daemon_log_lines": daemon_log_lines,
            "profile": None if top is None else {"stats": str(profile), "top": str(top)},
        },
        table=table,
    )
    return 0


def _version(package_name: str) -> str | None:
    try:
        return metadata.version(package_name)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
