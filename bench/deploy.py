#!/usr/bin/env python3
"""The deployment-storm benchmark: many VMs deployed at once from bandwidth-limited replicas.

Run from the repository root::

    .venv/bin/python bench/deploy.py [--deployments 1000] [--replicas 1,5,20,50] [--bandwidth 60MiB]
                                     [--image-size 16MiB] [--policies ...] [--repeat 1] [--seed 51]
                                     [--out bench/results/deploy.json] [--quick]

A cloud object store caps the throughput of a single blob (tens of MiB/s), so when a thousand
VMs boot from one image version, the region's replicas are the bottleneck and replica
selection decides how well they are used. Every replica store is wrapped in a
``ThrottledStore`` (a token bucket on the bytes ``get`` returns; ``--bandwidth`` per replica,
60 MiB/s by default, with the wrapper's default burst of 50 ms of that rate), through
``GalleryService.open(home, wrap_store=...)``. One home serves the whole run: the image is
published once per replica count R as version ``1.0.R`` into westcentralus with R replicas
(``--target-regions westcentralus=R``; each replica deduplicates the chunks the earlier
versions left in it, so the disk cost is one copy per replica directory).

1. The CPU floor: ``--deployments`` deployments of version 1.0.5 with no throttle, first,
   because it sets the bandwidth of the replica-bound runs (step 3).
2. The storm: for each R and each selection policy, ``deploy_scale_set`` runs ``--deployments``
   deployments of version 1.0.R at once (read and discard; each checks the whole-blob digest),
   every replica at ``--bandwidth``. Reported per run: the makespan, the ideal makespan, their
   ratio, p50 and p99 deployment time, the spread of stored bytes over the replicas (max / min
   served) and the errors. The ideal makespan is the time the replicas need to deliver every
   stored byte read at full bandwidth::

       ideal = deployments x S / (R x bandwidth)

   with S the stored (compressed) bytes of the image's non-zero chunks, which is what one
   deployment reads (zero chunks are not stored and cost no read). It ignores the bucket's
   initial burst (50 ms per replica) and the CPU: once ``R x bandwidth`` exceeds what the
   readers can decode and verify on this machine, the makespan stops following the ideal.
3. Replica-bound runs. In a real storm every VM decodes its disk on its own CPU, so the
   replicas stay the bottleneck however many there are; here 1,000 readers share 2 cores,
   which decode and verify about 400-550 MiB/s of stored bytes, so 20 replicas at 60 MiB/s
   (1.2 GiB/s) are limited by this machine's CPU and every policy finishes at the same time:
   the policies cannot be told apart there. For each R >= 2 whose region would serve more
   than half of what the CPU floor run decoded (``BOUND_SHARE``), the storm runs again for
   each policy with the per-replica bandwidth lowered to that half divided by R, which keeps
   the replicas the bottleneck while the region's total stays that of a smaller R at the
   nominal bandwidth. These are the runs that compare the policies at that R (marked * in
   the storm table).
4. Checks, against goals set before measuring:
   a. 50 deployments with 5 replicas (least-loaded) finish within 15 % of the ideal.
   b. Scaling: for each R, the least-loaded makespan is within 25 % of
      max(ideal, CPU floor) at the nominal bandwidth: linear in 1/R until the readers
      saturate the CPU; and within 25 % of the ideal in each replica-bound run, which shows
      that its replicas, not the CPU, set its pace.
   c. Least-loaded has a p99 no worse than round-robin (5 % tolerance) and better than random
      at every R >= 2, measured in the same run (at R = 1 every policy has one choice), in the
      replica-bound run of that R if it has one and at the nominal bandwidth otherwise.
   d. ``--deployments`` deployments without a throttle: local read throughput (image bytes/s)
      against ``zstd -d -T1`` of the image's ``zstd -1`` frame decompressed as many times
      (one process, the frame given as every input, output to /dev/null), and every run of
      that many deployments completes without error with a peak RSS under 500 MiB.
   e. A damaged replica: 1 % of the chunk files of replica 2 of version 1.0.5 (at least one)
      are corrupted (one byte flipped) and 1 % (at least one) deleted; ``BlobService.verify``
      must see the damage, then ``--damage-deployments`` throttled deployments must all return
      the exact image (no errors: each deployment's whole-blob digest matches the manifest),
      and afterwards the replica must verify clean (read repair rewrote the bad copies).

Choices, so that the full run (4 replica counts x 4 policies x 1,000 deployments, and the
replica-bound runs) takes about 17 minutes on a 2-core machine: the time is dominated by R = 1,
where one replica must deliver 1,000 x S at 60 MiB/s, so S must stay near 5 MiB. The image
is therefore a small VM-like disk of 16 MiB from the synthetic generator with seed 51 (about
half zeros, 2 of its 10 chunks all zero, 8 chunks and 5.8 MiB stored, 2.8:1): 96 s of ideal
makespan at R = 1, 19 s at R = 5, and 20-30 s for each replica-bound run. The default seed's
first 16 MiB hold almost no zeros and store 9.8 MiB, which would double that. The bandwidth
stays at the 60 MiB/s of a cloud blob. ``--deployments``, ``--replicas``, ``--bandwidth`` and
``--image-size`` change the scale; the ideal follows from the formula above. ``--quick`` runs
50 deployments at R = 1 and 5 and 50 through the damaged replica (about half a minute).

Every (R, policy) run is a child process of its own (this script with ``--child``), timed
inside around ``deploy_scale_set`` (the makespan is the deployments' own, from the start of
the first to the end of the last); its peak RSS comes from GNU ``time``. Within each R the
order of the policies rotates between R and repeats. Publishing is untimed for the goals.
Results go to ``--out`` as JSON and a PNG plot (makespan and p99 against R at the nominal
bandwidth, one line per policy, with the ideal and the CPU floor; and p99 over the ideal
where the replicas are the bottleneck) is saved next to it, if matplotlib is installed
(``pip install -e '.[bench]'``; ``tools/dev.py bench`` installs it).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import anyio
from _deploy_report import (
    BOUND_SHARE,
    CHECK_DEPLOYMENTS,
    CHECK_REPLICAS,
    IDEAL_RATIO_GOAL,
    LEAST_LOADED,
    P99_RR_TOLERANCE,
    POLICIES,
    RSS_GOAL_MIB,
    SCALING_GOAL,
    Checks,
    bound_counts,
    build_rows,
    collect_cells,
    matrix_table,
    save_plot,
    storm_key,
)
from _harness import (
    MIB,
    Finished,
    Sample,
    files_under,
    format_size,
    log,
    parse_size,
    run_child,
    settle,
    warm,
)
from _images import ensure_image
from _report import Timings, noise_note, ratio_note, render
from _run import Run, add_run_options, results_path
from _steps import TimedSteps, child_main

import blobrep
from blobrep.core.manifest import Manifest, parse_manifest
from blobrep.service import (
    BlobService,
    DefinitionFields,
    GalleryService,
    LocalStore,
    Policy,
    PublishResult,
    Store,
    StoreWrapper,
    ThrottledStore,
    VersionOptions,
    percentile,
)

BENCHMARK: Final = "deploy"
GALLERY: Final = "bench"
IMAGE_NAME: Final = "deploy-image"
REGION: Final = "westcentralus"
FIELDS: Final = DefinitionFields(publisher="bench", offer="synthetic", sku="vm", os_type="Linux")

DEPLOY_SEED: Final = 51
"""The seed of the default image: a 16 MiB disk about half zeros (see the module docstring)."""
DEFAULT_IMAGE_SIZE: Final = 16 * MIB
DEFAULT_BANDWIDTH: Final = 60 * MIB
DEFAULT_DEPLOYMENTS: Final = 1000
QUICK_DEPLOYMENTS: Final = 50
DEFAULT_REPLICAS: Final = (1, 5, 20, 50)
QUICK_REPLICAS: Final = (1, 5)
DEFAULT_DAMAGE_DEPLOYMENTS: Final = 200
QUICK_DAMAGE_DEPLOYMENTS: Final = 50
MAX_REPLICAS: Final = 100

DAMAGED_REPLICA: Final = 2
DAMAGE_FRACTION: Final = 0.01


def version_name(replicas: int) -> str:
    """The version that lives in ``replicas`` replicas: 1.0.R."""
    return f"1.0.{replicas}"


def version_id(replicas: int) -> str:
    return f"/galleries/{GALLERY}/images/{IMAGE_NAME}/versions/{version_name(replicas)}"


def replica_dir(home: Path, number: int) -> Path:
    return home / "regions" / REGION / f"replica-{number}"


def object_files(replica: Path) -> list[Path]:
    """The replica's stored objects: its packs (where a publish puts new chunks) and chunk files."""
    gallery = replica / "galleries" / GALLERY
    return sorted([*files_under(gallery / "packs"), *files_under(gallery / "chunks")])


# --- the child: one blobrep operation, timed inside ----------------------------------------


def _throttle(bandwidth: float) -> StoreWrapper | None:
    """Wraps every replica store in its own token bucket of ``bandwidth`` bytes/s (none if 0)."""
    if bandwidth <= 0:
        return None

    def wrap(region: str, number: int, store: Store) -> Store:
        return ThrottledStore(store, bandwidth)

    return wrap


def _child_setup(spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """A fresh home: the gallery, the definition, and version 1.0.R in R replicas for each R."""

    async def go() -> tuple[float, dict[str, Any]]:
        counts: list[int] = spec["counts"]
        async with await GalleryService.open(spec["home"]) as service:
            admin = service.bootstrap_admin
            await service.create_gallery(admin, GALLERY, location=REGION)
            await service.create_definition(admin, GALLERY, IMAGE_NAME, FIELDS)
            published: list[PublishResult] = []
            versions: dict[str, Any] = {}
            started = time.perf_counter()
            for count in counts:
                begun = time.perf_counter()
                version = await service.create_version(
                    admin,
                    GALLERY,
                    IMAGE_NAME,
                    version_name(count),
                    source=spec["source"],
                    options=VersionOptions(target_regions=[f"{REGION}={count}"]),
                    on_published=published.append,
                )
                status = version.status(REGION)
                if status is None or str(status.state) != "Completed" or status.completed_replicas != count:
                    raise BenchmarkError(f"publishing {version_name(count)} into {REGION}={count}: {status}")
                result = published[-1]
                versions[str(count)] = {
                    "version": version_name(count),
                    "replicas": count,
                    "seconds": round(time.perf_counter() - begun, 3),
                    "new_chunks": result.new_chunks,
                    "written_bytes": result.written_bytes,
                }
            seconds = time.perf_counter() - started
            async with service.open_version(admin, version_id(counts[0]), location=REGION) as reader:
                chunks = reader.manifest.chunks
                read_bytes = sum(chunk.stored_length for chunk in chunks if not chunk.is_zero)
                zero_chunks = sum(1 for chunk in chunks if chunk.is_zero)
        first = published[0]
        return seconds, {
            "versions": versions,
            "size": first.size,
            "digest": first.digest,
            "chunks": first.chunks,
            "zero_chunks": zero_chunks,
            "distinct_chunks": first.distinct_chunks,
            "stored_bytes": first.stored_bytes,
            "read_bytes_per_deployment": read_bytes,
        }

    return anyio.run(go)


def _child_deploy(spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """``deploy_scale_set`` of ``count`` deployments, discarding the bytes; timed by its makespan."""

    async def go() -> tuple[float, dict[str, Any]]:
        wrap = _throttle(float(spec["bandwidth"]))
        async with await GalleryService.open(spec["home"], wrap_store=wrap) as service:
            cpu = time.process_time()
            started = time.perf_counter()
            summary = await service.deploy_scale_set(
                service.bootstrap_admin,
                version_id(spec["replicas"]),
                spec["count"],
                location=REGION,
                policy=Policy(spec["policy"]),
            )
            call_s = time.perf_counter() - started
            cpu = time.process_time() - cpu
        stats = summary.statistics
        served = [replica.bytes_served for replica in stats.replicas.values()]
        times = summary.seconds
        return summary.makespan, {
            "count": summary.count,
            "succeeded": summary.succeeded,
            "errors": summary.errors,
            "failures": list(summary.failures[:5]),
            "makespan_s": round(summary.makespan, 4),
            "p50_s": None if summary.p50 is None else round(summary.p50, 4),
            "p90_s": round(percentile(times, 90), 4) if times else None,
            "p99_s": None if summary.p99 is None else round(summary.p99, 4),
            "min_s": round(min(times), 4) if times else None,
            "max_s": round(max(times), 4) if times else None,
            "call_s": round(call_s, 4),
            "cpu_s": round(cpu, 3),
            "bytes_served": served,
            "requests": [replica.requests for replica in stats.replicas.values()],
            "replica_failures": sum(replica.failures for replica in stats.replicas.values()),
            "chunks": stats.chunks,
            "failovers": stats.failovers,
            "repairs": stats.repairs,
            "repair_failures": stats.repair_failures,
        }

    return anyio.run(go)


def _child_verify(spec: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """``BlobService.verify`` of version 1.0.R in one replica directory."""

    async def go() -> dict[str, Any]:
        name = f"{IMAGE_NAME}/versions/{version_name(spec['replicas'])}"
        report = await BlobService().verify(LocalStore(spec["replica"]), GALLERY, name)
        return {
            "replica": spec["replica"],
            "ok": report.ok,
            "checked_chunks": report.checked_chunks,
            "missing": len(report.missing),
            "corrupt": len(report.corrupt),
            "problems": [dataclasses.asdict(problem) for problem in report.problems[:10]],
        }

    started = time.perf_counter()
    result = anyio.run(go)
    return time.perf_counter() - started, result


CHILD_OPERATIONS: Final = {"setup": _child_setup, "deploy": _child_deploy, "verify": _child_verify}


# --- timed steps ----------------------------------------------------------------------------


class BenchmarkError(RuntimeError):
    """The benchmark could not set up what it measures."""


@dataclasses.dataclass(frozen=True, slots=True)
class Image:
    """The image every deployment reads, as published."""

    path: Path
    size: int
    read_bytes: int
    """Stored bytes one deployment reads (its non-zero chunks)."""
    setup: dict[str, Any]


class Steps(TimedSteps):
    """The timed operations: deployments in a child, ``zstd -d`` timed from here."""

    script = Path(__file__).resolve()
    key_width = 26

    def __init__(self, run_dir: Path, bandwidth: float) -> None:
        super().__init__(run_dir)
        self.home = run_dir / "home"
        self.bandwidth = bandwidth

    def setup(self, source: Path, counts: Sequence[int]) -> dict[str, Any]:
        warm(source)
        spec = {"op": "setup", "home": str(self.home), "source": str(source), "counts": list(counts)}
        sample, result = self.child(spec)
        result["publish_seconds"] = round(sample.seconds, 3)
        log(f"  published {len(counts)} versions in {sample.seconds:.1f} s")
        settle()
        return result

    def deploy(
        self, key: str, replicas: int, policy: str, count: int, *, bandwidth: float | None = None
    ) -> Sample:
        """``count`` deployments from ``replicas`` replicas, each throttled to ``bandwidth``.

        The nominal bandwidth by default; 0 for no throttle.
        """
        settle()
        spec = {
            "op": "deploy",
            "home": str(self.home),
            "replicas": replicas,
            "policy": policy,
            "count": count,
            "bandwidth": self.bandwidth if bandwidth is None else bandwidth,
        }
        sample, result = self.child(spec)
        self.record(key, sample)
        log(
            f"    p50 {result['p50_s']} s  p99 {result['p99_s']} s  errors {result['errors']}"
            f"  cpu in run {result['cpu_s']} s  failovers {result['failovers']}  repairs {result['repairs']}"
        )
        return sample

    def verify(self, replicas: int, number: int) -> dict[str, Any]:
        replica = replica_dir(self.home, number)
        _, result = self.child({"op": "verify", "replicas": replicas, "replica": str(replica)})
        return result

    def zstd_decompress(self, key: str, frame: Path, copies: int) -> Sample:
        """``zstd -d -T1 -c FRAME`` x ``copies`` (one process, every input the same frame) > /dev/null."""
        warm(frame)
        settle()
        command = ["zstd", "-d", "-q", "-T1", "-c", *[str(frame)] * copies]

        def run() -> list[Finished]:
            with open(os.devnull, "wb") as sink:
                return [run_child(command, stdout=sink)]

        def details(_: Sequence[Finished]) -> dict[str, Any]:
            return {"command": f"zstd -d -q -T1 -c FRAME (x{copies}) > /dev/null", "copies": copies}

        return self.record(key, self.in_parent(run, details))


def run_matrix(
    steps: Steps,
    settings: Sequence[tuple[int, bool, float]],
    policies: Sequence[str],
    deployments: int,
    repeat: int,
) -> None:
    """Every (R, bound, bandwidth) of ``settings`` with every policy, ``repeat`` times.

    The policies' order rotates between settings and repeats.
    """
    for round_ in range(repeat):
        for index, (count, bound, bandwidth) in enumerate(settings):
            shift = (round_ + index) % len(policies)
            rate = f"{format_size(bandwidth)}/s per replica" + (" (replica-bound)" if bound else "")
            for policy in [*policies[shift:], *policies[:shift]]:
                log(f"repeat {round_ + 1}/{repeat}: {deployments} deployments, R={count}, {rate}, {policy}")
                steps.deploy(storm_key(count, policy, bound), count, policy, deployments, bandwidth=bandwidth)


def _frames_of(manifest: Manifest) -> dict[str, list[tuple[int, int]]]:
    """Per stored object's file name, the (offset, stored length) of each distinct chunk of
    ``manifest`` in it: one frame at 0 for a chunk file, every frame placed in a pack."""
    frames: dict[str, list[tuple[int, int]]] = {}
    for chunk in manifest.stored_digests().values():
        key, offset = chunk.location(GALLERY)
        frames.setdefault(key.rsplit("/", 1)[-1], []).append((offset, chunk.stored_length))
    return frames


def damage(replica: Path, seed: int, manifest: Path) -> dict[str, Any]:
    """Corrupt (flip one byte of) 1 % of the stored objects (packs, chunk files) and delete
    another 1 %, at least one each; count the chunks of ``manifest`` that this damages."""
    files = object_files(replica)
    if len(files) < 2:
        raise BenchmarkError(f"{replica} holds {len(files)} stored objects: too few to damage")
    each = max(1, round(DAMAGE_FRACTION * len(files)))
    chosen = random.Random(seed).sample(files, 2 * each)
    corrupted, deleted = chosen[:each], chosen[each:]
    frames = _frames_of(parse_manifest(manifest.read_bytes()))
    hurt = sum(len(frames.get(path.name, [])) for path in deleted)
    for path in corrupted:
        middle = path.stat().st_size // 2
        hurt += sum(1 for start, length in frames.get(path.name, []) if start <= middle < start + length)
        with open(path, "r+b") as handle:
            handle.seek(middle)
            byte = handle.read(1)
            handle.seek(middle)
            handle.write(bytes([byte[0] ^ 0xFF]))
    for path in deleted:
        path.unlink()
    return {
        "replica": str(replica),
        "object_files": len(files),
        "corrupted": [path.name for path in corrupted],
        "deleted": [path.name for path in deleted],
        "damaged_chunks": hurt,
    }


def run_damaged(steps: Steps, deployments: int, seed: int) -> dict[str, Any]:
    """Damage one replica, check verify sees it, deploy through it, check it verifies clean."""
    log(f"damaged replica: replica-{DAMAGED_REPLICA} of {version_name(CHECK_REPLICAS)}")
    replica = replica_dir(steps.home, DAMAGED_REPLICA)
    version = version_name(CHECK_REPLICAS)
    versions = replica / "galleries" / GALLERY / "images" / IMAGE_NAME / "versions"
    manifest = versions / version / "manifest.json"
    done = damage(replica, seed, manifest)
    before = steps.verify(CHECK_REPLICAS, DAMAGED_REPLICA)
    log(f"  before: ok={before['ok']} missing={before['missing']} corrupt={before['corrupt']}")
    sample = steps.deploy("damaged", CHECK_REPLICAS, LEAST_LOADED, deployments)
    after = steps.verify(CHECK_REPLICAS, DAMAGED_REPLICA)
    log(f"  after: ok={after['ok']} missing={after['missing']} corrupt={after['corrupt']}")
    return {"damage": done, "verify_before": before, "deploy": sample.details, "verify_after": after}


# --- main -----------------------------------------------------------------------------------


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write replica counts like 1,5,20,50") from None
    if not counts or any(not 1 <= count <= MAX_REPLICAS for count in counts):
        raise argparse.ArgumentTypeError(f"{text!r}: each replica count must be 1..{MAX_REPLICAS}")
    return sorted(set(counts))


def _policies(text: str) -> list[str]:
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in POLICIES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"{text!r}: choose among {', '.join(POLICIES)}")
    return [policy for policy in POLICIES if policy in names]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark deployment storms: N deployments at once from R bandwidth-limited replicas.",
    )
    parser.add_argument(
        "--deployments",
        type=int,
        help=f"deployments at once per run (default {DEFAULT_DEPLOYMENTS}; {QUICK_DEPLOYMENTS} with --quick)",
    )
    parser.add_argument(
        "--replicas",
        type=_counts,
        help="replica counts, comma-separated (default "
        + ",".join(map(str, DEFAULT_REPLICAS))
        + "; "
        + ",".join(map(str, QUICK_REPLICAS))
        + " with --quick)",
    )
    parser.add_argument(
        "--bandwidth",
        type=parse_size,
        default=DEFAULT_BANDWIDTH,
        help=f"per-replica read bandwidth per second (default {format_size(DEFAULT_BANDWIDTH)})",
    )
    parser.add_argument(
        "--image-size",
        type=parse_size,
        default=DEFAULT_IMAGE_SIZE,
        help=f"synthetic image size (default {format_size(DEFAULT_IMAGE_SIZE)})",
    )
    parser.add_argument(
        "--policies", type=_policies, default=list(POLICIES), help=f"default {','.join(POLICIES)}"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per (R, policy), median kept (default 1)")
    parser.add_argument(
        "--damage-deployments",
        type=int,
        help=f"deployments through the damaged replica (default {DEFAULT_DAMAGE_DEPLOYMENTS};"
        f" {QUICK_DAMAGE_DEPLOYMENTS} with --quick)",
    )
    add_run_options(
        parser,
        BENCHMARK,
        quick_help=f"smoke run: {QUICK_DEPLOYMENTS} deployments, replicas "
        + ",".join(map(str, QUICK_REPLICAS)),
        seed=DEPLOY_SEED,
    )
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    if args.deployments is None:
        args.deployments = QUICK_DEPLOYMENTS if quick else DEFAULT_DEPLOYMENTS
    if args.replicas is None:
        args.replicas = list(QUICK_REPLICAS if quick else DEFAULT_REPLICAS)
    if args.damage_deployments is None:
        args.damage_deployments = QUICK_DAMAGE_DEPLOYMENTS if quick else DEFAULT_DAMAGE_DEPLOYMENTS
    if args.out is None:
        args.out = results_path(BENCHMARK, quick=quick)
    if args.deployments < 1 or args.damage_deployments < 1 or args.repeat < 1:
        parser.error("--deployments, --damage-deployments and --repeat must be >= 1")
    if args.bandwidth < 1 or args.image_size < 1 * MIB:
        parser.error("--bandwidth must be positive and --image-size at least 1MiB")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        return child_main(args.child, CHILD_OPERATIONS)
    deployments: int = args.deployments
    replicas: list[int] = args.replicas
    policies: list[str] = args.policies
    bandwidth = float(args.bandwidth)
    size: int = args.image_size
    seed: int = args.seed
    repeat: int = args.repeat
    counts = sorted({*replicas, CHECK_REPLICAS})
    # The image and its zstd frame, and one copy of its chunks per replica directory.
    run = Run.start(BENCHMARK, argv, needed_bytes=2 * size + max(counts) * size)
    source = ensure_image(size, seed)
    with run.directory("deploy-") as run_dir:
        steps = Steps(run_dir, bandwidth)
        log(f"publishing {', '.join(version_name(count) for count in counts)} into {REGION} (untimed)")
        setup = steps.setup(source, counts)
        image = Image(source, size, int(setup["read_bytes_per_deployment"]), setup)
        frame = run_dir / "image.zst"
        run_child(["zstd", "-1", "-q", "-f", str(source), "-o", str(frame)])
        warm(steps.home)
        # The CPU floor first: it sets the replica-bound runs' bandwidth.
        log(f"CPU floor: {deployments} deployments, R={CHECK_REPLICAS}, no throttle")
        first = steps.deploy("unthrottled", CHECK_REPLICAS, LEAST_LOADED, deployments, bandwidth=0)
        aggregate = BOUND_SHARE * deployments * image.read_bytes / first.seconds
        settings = [(count, False, bandwidth) for count in replicas] + [
            (count, True, aggregate / count) for count in bound_counts(replicas, bandwidth, aggregate)
        ]
        log(
            f"  the readers decode {format_size(aggregate / BOUND_SHARE)}/s of stored bytes: replica-bound"
            f" runs keep a region at {format_size(aggregate)}/s"
        )
        run_matrix(steps, settings, policies, deployments, repeat)
        for round_ in range(repeat):
            log(f"checks, repeat {round_ + 1}/{repeat}")
            steps.deploy("ideal", CHECK_REPLICAS, LEAST_LOADED, CHECK_DEPLOYMENTS)
            if round_ > 0:
                steps.deploy("unthrottled", CHECK_REPLICAS, LEAST_LOADED, deployments, bandwidth=0)
            steps.zstd_decompress("zstd", frame, deployments)
        damaged = run_damaged(steps, args.damage_deployments, seed)
        frame_bytes = frame.stat().st_size
    checks = Checks(
        deployments=deployments,
        damage_deployments=args.damage_deployments,
        image_size=size,
        read_bytes=image.read_bytes,
        bandwidth=bandwidth,
        zstd_copies=deployments,
        bound_aggregate=aggregate,
        damaged=damaged,
    )
    cells = collect_cells(steps.samples, image.read_bytes, deployments, settings, policies)
    rows = build_rows(steps.samples, cells, replicas, checks)
    storm = matrix_table(cells)
    table = render(rows, steps.samples)
    bandwidth_text = f"{format_size(bandwidth)}/s"
    header = (
        f"blobrep {blobrep.__version__} deployment-storm benchmark: image {format_size(size)}"
        f" (seed {seed}, {image.setup['chunks']} chunks, {image.setup['zero_chunks']} zero),"
        f" {format_size(image.read_bytes)} stored bytes read per deployment; {bandwidth_text} per"
        f" replica; {deployments} deployments per run; {repeat} repeat(s), {os.cpu_count()} CPUs"
    )
    print(header)
    print(storm)
    print(
        "ratio = makespan / ideal, ideal = D x S / (R x B); speed-up = makespan at the first R / this"
        " one, against the ratio of R; spread = max / min stored bytes served per replica; cores ="
        " CPU time in the run / makespan; * = replica-bound run: the region held to"
        f" {format_size(aggregate)}/s in total, {BOUND_SHARE:.0%} of what the readers decoded"
        " with no throttle."
    )
    print()
    print(table)
    print(
        "MB/s: of stored bytes served (storm rows), of image bytes (no-throttle row and zstd)."
        f" CPU floor = makespan of {deployments} deployments with no throttle. " + ratio_note()
    )
    print(noise_note(steps.samples))
    floor = Timings(steps.samples).median("unthrottled")
    title = (
        f"{deployments} deployments of a {format_size(size)} image"
        f" ({format_size(image.read_bytes)} read each), {bandwidth_text} per replica"
    )
    plot = save_plot(args.out.with_suffix(".png"), cells, replicas, policies, floor, title)
    if plot is not None:
        print(f"plot: {plot}")

    def size_of(key: str) -> int:
        if key in ("unthrottled", "zstd"):
            return deployments * size
        if key == "ideal":
            return CHECK_DEPLOYMENTS * image.read_bytes
        if key == "damaged":
            return int(args.damage_deployments) * image.read_bytes
        return deployments * image.read_bytes

    run.finish(
        args.out,
        config={
            "image_size": size,
            "seed": seed,
            "quick": args.quick,
            "image": str(source),
            "zstd_frame_bytes": frame_bytes,
            "deployments": deployments,
            "replicas": replicas,
            "policies": policies,
            "bandwidth_bytes_per_s": bandwidth,
            "throttle_burst": "ThrottledStore default (50 ms of the rate)",
            "repeat": repeat,
            "region": REGION,
            "versions": {str(count): version_name(count) for count in counts},
            "read_bytes_per_deployment": image.read_bytes,
            "ideal_formula": "deployments * read_bytes_per_deployment / (replicas * bandwidth)",
            "damage_deployments": args.damage_deployments,
            "mb_s_of": "stored bytes served; image bytes for 'unthrottled' and 'zstd'",
            "replica_bound_share": BOUND_SHARE,
            "replica_bound_region_bytes_per_s": round(aggregate),
            "replica_bound_counts": [count for count, bound, _ in settings if bound],
        },
        goals={
            "ideal_ratio_max_50_deployments_5_replicas": IDEAL_RATIO_GOAL,
            "scaling_makespan_over_max_ideal_cpu_floor_max": SCALING_GOAL,
            "p99_least_loaded_over_round_robin_max": P99_RR_TOLERANCE,
            "p99_least_loaded_over_random_below": 1.0,
            "peak_rss_mib_max": RSS_GOAL_MIB,
            "errors": 0,
        },
        rows=rows,
        samples=steps.samples,
        size_of=size_of,
        extra={
            "setup": setup,
            "storm": [cell.to_json() for cell in cells.values()],
            "storm_table": storm.splitlines(),
            "cpu_floor_s": round(floor, 4),
            "damaged": damaged,
            "plot": None if plot is None else str(plot),
        },
        table=table,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
