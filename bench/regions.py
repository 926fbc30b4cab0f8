#!/usr/bin/env python3
"""The regions benchmark: publish, replicate and deploy on local, S3 and Azure Blob regions.

Run from the repository root::

    .venv/bin/python bench/regions.py [--size 256MiB] [--repeat 3] [--vms 50] [--bandwidth B]
                                      [--seed N] [--out bench/results/regions.json] [--quick]

The S3 server is SeaweedFS and the Azure one Azurite, both on loopback on this machine, so
the servers share its cores with the benchmark: the rates say what blobrep makes of a store,
next to what obstore alone makes of the same store, not what a cloud region would give. If
the environment does not name the servers, they are started for the run and stopped after it
(``_regions_servers.py``). Every run works under a fresh prefix of the test bucket and
container ``blobrep-test`` and deletes it at the end (each repeat's objects as it ends).

On the deterministic VM-like image of the other benchmarks (``--size``, default 256 MiB),
for each kind of region (local directory, S3, Azure; the layout is in
``_regions_children.py``), a fresh gallery home per repeat:

1. publish: version 1.0.0 published (``create_version``) into a region of the kind with 1
   replica, timed around the call; MB/s of image bytes. The local region is the source
   region of step 2. Baseline, in the same run: for S3 and Azure, obstore's own bulk
   ``put_async`` of the stored chunk files this publish writes (read back from the local
   source replica, each file read in the timed run) into a fresh prefix, 8 puts in flight
   (the publish's own writer count); for local, ``cp -r`` of the chunk directory plus
   ``sync`` (publish fsyncs every chunk). Ratio = baseline time / ours (our rate over the
   baseline's for the same image); no goal: publish chunks, hashes and compresses the image,
   the baseline only uploads what that produced.
2. replicate: ``replicate_version`` of 1.0.0 from the local source region into 3 regions of
   the kind, 2 replicas each; MB/s of stored bytes written (what lands in the 6 target
   replicas, listed afterwards). Baselines, each writing the same chunk files to 6 fresh
   prefixes of the same bucket with the engine's concurrency (16 files at a time, each read
   once, at most 32 requests in flight):
   a. plain bulk copy, what a tool does: every file put to every prefix (6 uploads each).
      GOAL (S3, Azure): our rate >= 0.8x this baseline's.
   b. put once, then server-side copies: one upload, then 5 copies inside the service, which
      is what the engine does for sibling replicas on one service (``server_copies.py``):
      reported beside it, no goal.
   For local the baseline is ``cp -r`` of the chunk directory to 6 directories + ``sync``, as
   in ``bench/replication.py`` (whose goal it is; info here).
3. scale set: ``deploy_scale_set`` of ``--vms`` (50) deployments at once, read and discard,
   from a region of the kind with 5 replicas (a home of its own, set up once, untimed), every
   replica of that region wrapped in its own ``ThrottledStore`` token bucket. The bandwidth
   per replica is set per kind so that the replicas are the bottleneck on this machine: first
   one unthrottled run of the same scale set measures what the readers take from that kind
   (reference row), then each replica gets half of that divided by 5 (as ``bench/deploy.py``'s
   replica-bound runs; ``--bandwidth`` sets it instead). GOAL: makespan within 15 % of
   ideal = VMs x S / (5 x bandwidth), S the stored bytes of the image's non-zero chunks (what
   one deployment reads). The spread of stored bytes served per replica (max / min) and the
   bytes of each replica are reported.
4. delta: version 1.0.1, the image with 1 % of its bytes rewritten in 16 runs (as
   ``blobrep demo`` makes its second version), published into the source (info row) and
   replicated into the same 3 x 2 target replicas of each kind; reported: the stored bytes it
   moved into them, against the image size (total and per replica). No goal: it should be a
   small fraction.

Every blobrep operation and every obstore baseline runs in a child process of its own (this
script with ``--child``), timed inside around the operation; ``cp`` is timed from here, to the
end of its ``sync``. Before each timed run the source files are read once and ``sync`` writes
back what earlier runs left dirty (the servers' files too). Times are medians of ``--repeat``
runs; the order of the kinds rotates between repeats and ours and the baselines alternate
(but the local publish comes first: its baselines copy the files it writes).
Each repeat checks that every region ends Completed with all its replicas and every scale set
without an error. ``--quick``: 64 MiB, 1 repeat, 10 VMs.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from _deploy_report import BOUND_SHARE, ideal_seconds
from _harness import MIB, format_size, log, parse_size, remove, warm
from _images import ensure_image, ensure_rewritten
from _regions_children import (
    CHILD_OPERATIONS,
    DEPLOY_REPLICAS,
    IMAGE,
    KINDS,
    LAYOUTS,
    OBJECT_KINDS,
    SOURCE,
    TARGET_REPLICAS,
    V1,
    V2,
    KindLayout,
    stored_under,
)
from _regions_report import Results, build_rows, print_report
from _regions_servers import ServersError, bucket_url, object_servers
from _regions_steps import COPY_TASKS, REPLICATE_REQUESTS, Steps, check_regions
from _run import Run, add_run_options, results_path
from _steps import child_main

from blobrep.engine.publish_pipeline import WRITE_TASKS

BENCHMARK: Final = "regions"
DEFAULT_SIZE: Final = 256 * MIB
QUICK_SIZE: Final = 64 * MIB
DEFAULT_VMS: Final = 50
QUICK_VMS: Final = 10


def _rotated(items: Sequence[str], shift: int) -> list[str]:
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


def _in_turn(steps: Sequence[Callable[[], None]], reverse: bool) -> None:
    for step in reversed(steps) if reverse else steps:
        step()


def one_repeat(steps: Steps, round_: int, image: Path, version2: Path) -> dict[str, Any]:
    """A fresh home: 1.0.0 published into each kind and replicated, then 1.0.1 replicated."""
    home = steps.run_dir / f"home-{round_}"
    where = f"r{round_ + 1}"
    reverse = bool(round_ % 2)
    kinds = _rotated(KINDS, round_)
    regions = [
        (name, str(steps.url(kind, f"{where}/{name}")))
        for kind in OBJECT_KINDS
        for name in (LAYOUTS[kind].publish, *LAYOUTS[kind].targets)
    ]
    targets = [SOURCE, *(token for kind in KINDS for token in LAYOUTS[kind].target_tokens())]
    setup = {"regions": regions, "definitions": [LAYOUTS[kind].definition for kind in KINDS]}
    source_chunks = Path(stored_under(str(home / "regions" / SOURCE / "replica-1")))
    found: dict[str, Any] = {"repeat": round_ + 1, "order": kinds, "publish": {}, "v1": {}, "v2": {}}
    try:
        found["publish"]["local"] = steps.publish(
            "publish-local",
            home,
            image,
            definition=IMAGE,
            version=V1,
            location=SOURCE,
            targets=targets,
            setup=setup,
        )
        steps.copy("publish-base-local", source_chunks, [steps.path(f"cp-{where}") / "chunks"])
        for kind in (kind for kind in kinds if kind in OBJECT_KINDS):
            layout = LAYOUTS[kind]

            def ours(kind: str = kind, layout: KindLayout = layout) -> None:
                found["publish"][kind] = steps.publish(
                    f"publish-{kind}",
                    home,
                    image,
                    definition=layout.definition,
                    version=V1,
                    location=layout.publish,
                    targets=[layout.publish],
                )

            def base(kind: str = kind) -> None:
                steps.upload(
                    f"publish-base-{kind}",
                    kind,
                    source_chunks,
                    [f"{where}/base-pub"],
                    mode="put",
                    tasks=WRITE_TASKS,
                )

            _in_turn([ours, base], reverse)
        for kind in kinds:
            _replicate_kind(steps, found, home, where, kind, source_chunks, reverse)
        found["source_chunk_bytes"] = sum(
            path.stat().st_size for path in source_chunks.rglob("*") if path.is_file()
        )
        v2 = steps.publish(
            "publish-v2", home, version2, definition=IMAGE, version=V2, location=SOURCE, targets=targets
        )
        found["publish_v2"] = v2
        for kind in kinds:
            result = steps.replicate(f"replicate-v2-{kind}", home, V2, LAYOUTS[kind].targets)
            found["v2"][kind] = result["chunk_bytes"]
    finally:
        remove(home)
        steps.delete(where)
    return found


def _replicate_kind(
    steps: Steps, found: dict[str, Any], home: Path, where: str, kind: str, source_chunks: Path, reverse: bool
) -> None:
    """Replicate 1.0.0 into the kind's 3 x 2 replicas, and its baselines, in turn."""
    layout = LAYOUTS[kind]
    copies = len(layout.targets) * TARGET_REPLICAS

    def ours() -> None:
        found["v1"][kind] = steps.replicate(f"replicate-{kind}", home, V1, layout.targets)["chunk_bytes"]

    def plain() -> None:
        if kind == "local":
            outputs = [steps.path(f"cp-{where}-{kind}") / f"copy-{n}" for n in range(1, copies + 1)]
            steps.copy("replicate-base-local", source_chunks, outputs)
        else:
            prefixes = [f"{where}/base-put-{n}" for n in range(1, copies + 1)]
            steps.upload(
                f"replicate-base-{kind}", kind, source_chunks, prefixes, mode="put", tasks=COPY_TASKS
            )

    def server_copy() -> None:
        prefixes = [f"{where}/base-copy-{n}" for n in range(1, copies + 1)]
        steps.upload(f"replicate-copy-{kind}", kind, source_chunks, prefixes, mode="copy", tasks=COPY_TASKS)

    _in_turn([ours, plain] if kind == "local" else [ours, plain, server_copy], reverse)


def run_deploys(steps: Steps, image: Path, vms: int, repeat: int, bandwidth: float | None) -> dict[str, Any]:
    """The scale sets: a home with each kind's 5-replica region, the unthrottled runs, then the
    throttled ones ``repeat`` times in rotating order."""
    home = steps.path("deploy-home")
    regions = {kind: LAYOUTS[kind].deploy for kind in KINDS}
    setup = {
        "regions": [
            (regions[kind], str(steps.url(kind, f"deploy/{regions[kind]}"))) for kind in OBJECT_KINDS
        ],
        "definitions": [IMAGE],
    }
    log(f"scale sets: publishing {V1} into {SOURCE} and replicating it into {', '.join(regions.values())}=5")
    warm(image)
    spec = {"op": "deploy_setup", "home": str(home), "source": str(image), "setup": setup}
    sample, result = steps.child({**spec, "regions": list(regions.values())})
    check_regions(result, dict.fromkeys(regions.values(), DEPLOY_REPLICAS), "setting up the scale sets")
    log(f"  set up in {sample.seconds:.1f} s; {format_size(result['read_bytes_per_deployment'])} read per VM")
    read_bytes = int(result["read_bytes_per_deployment"])
    rates: dict[str, float] = {}
    for kind in KINDS:
        log(f"scale set from {kind}: {vms} VMs, 5 replicas, no throttle")
        floor = steps.deploy(f"deploy-free-{kind}", home, regions[kind], vms, 0.0)
        taken = vms * read_bytes / floor.seconds
        rates[kind] = bandwidth or BOUND_SHARE * taken / DEPLOY_REPLICAS
        log(f"  readers took {format_size(taken)}/s: {format_size(rates[kind])}/s per replica")
    for round_ in range(repeat):
        for kind in _rotated(KINDS, round_):
            log(
                f"repeat {round_ + 1}/{repeat}: scale set from {kind},"
                f" {format_size(rates[kind])}/s per replica"
            )
            steps.deploy(f"deploy-{kind}", home, regions[kind], vms, rates[kind])
    steps.delete("deploy")
    return {
        "setup": result,
        "read_bytes_per_deployment": read_bytes,
        "bandwidth_per_replica": rates,
        "ideal_s": {kind: ideal_seconds(vms, read_bytes, DEPLOY_REPLICAS, rates[kind]) for kind in KINDS},
        "bandwidth_given": bandwidth is not None,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark publish, replication and scale sets on local, S3 and Azure Blob regions.",
    )
    parser.add_argument(
        "--size",
        type=parse_size,
        help=f"image size (default {format_size(DEFAULT_SIZE)}; {format_size(QUICK_SIZE)} with --quick)",
    )
    parser.add_argument("--repeat", type=int, help="runs per timing, median kept (default 3; 1 with --quick)")
    parser.add_argument(
        "--vms", type=int, help=f"VMs per scale set (default {DEFAULT_VMS}; {QUICK_VMS} with --quick)"
    )
    parser.add_argument(
        "--bandwidth",
        type=parse_size,
        help="per-replica bandwidth of the scale sets (default: half of what the unthrottled run took, / 5)",
    )
    add_run_options(
        parser, BENCHMARK, quick_help=f"smoke run: {format_size(QUICK_SIZE)}, 1 repeat, {QUICK_VMS} VMs"
    )
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    args.size = args.size or (QUICK_SIZE if quick else DEFAULT_SIZE)
    args.repeat = args.repeat or (1 if quick else 3)
    args.vms = args.vms or (QUICK_VMS if quick else DEFAULT_VMS)
    args.out = args.out or results_path(BENCHMARK, quick=quick)
    if args.repeat < 1 or args.vms < 1 or args.size < 16 * MIB:
        parser.error("--repeat and --vms must be >= 1 and --size >= 16MiB")
    if args.bandwidth is not None and args.bandwidth < 1:
        parser.error("--bandwidth must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        return child_main(args.child, CHILD_OPERATIONS)
    size: int = args.size
    # The images; the source and 6 target replicas and 6 cp copies; the scale sets' 6 local
    # replicas; and the servers' files: each at most about the image's size.
    run = Run.start(BENCHMARK, argv, needed_bytes=2 * size + 13 * size + 6 * size + 2 * 25 * size)
    image = ensure_image(size, args.seed)
    version2, version2_info = ensure_rewritten(image, size, args.seed)
    run_prefix = f"bench-regions-{os.getpid()}-{int(time.time())}"
    try:
        with run.directory("regions-") as run_dir, object_servers(run_dir / "services") as servers:
            steps = Steps(run_dir, run_prefix)
            try:
                rounds = []
                for round_ in range(args.repeat):
                    log(f"repeat {round_ + 1}/{args.repeat}")
                    rounds.append(one_repeat(steps, round_, image, version2))
                deploys = run_deploys(steps, image, args.vms, args.repeat, args.bandwidth)
            finally:
                steps.delete()
    except ServersError as exc:
        print(f"regions benchmark: {exc}", file=sys.stderr)
        return 1
    results = Results(steps.samples, rounds, deploys, size, args.vms, version2_info)
    rows = build_rows(results)
    table = print_report(results, rows, args)
    run.finish(
        args.out,
        config={
            "size": size,
            "repeat": args.repeat,
            "seed": args.seed,
            "quick": args.quick,
            "vms": args.vms,
            "image": str(image),
            "version2_image": str(version2),
            "servers": servers,
            "s3_bucket": bucket_url("s3"),
            "azure_container": bucket_url("azure"),
            "run_prefix": run_prefix,
            "layouts": {kind: dataclasses.asdict(layout) for kind, layout in LAYOUTS.items()},
            "publish_requests_in_flight": WRITE_TASKS,
            "replicate_tasks": COPY_TASKS,
            "replicate_requests_in_flight": REPLICATE_REQUESTS,
            "deploy_replicas": DEPLOY_REPLICAS,
            "deploy_bound_share": BOUND_SHARE,
        },
        goals=results.goals(),
        rows=rows,
        samples=steps.samples,
        size_of=results.size_of,
        extra=results.extra(),
        table=table,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
