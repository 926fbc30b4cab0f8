"""The timed steps of ``bench/regions.py``: each a child process (``_regions_children.py``), or
``cp -r`` timed from the benchmark itself, recorded as a sample under its key.

Before each timed run the files it reads are read once and ``sync`` writes back what earlier
runs left dirty. Every step checks what it must: regions Completed with all their replicas,
scale sets without an error.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from _harness import ChildFailedError, Finished, Sample, log, remove, run_child, settle, warm
from _regions_children import OBJECT_KINDS, SOURCE, TARGET_REPLICAS
from _regions_servers import bucket_url
from _steps import TimedSteps

from blobrep.engine.publish_pipeline import WRITE_TASKS
from blobrep.engine.replicate import WRITES_PER_COPY
from blobrep.storage.object_url import ObjectUrl

#: The engine's replication concurrency (``replicate(copy_tasks=16)``) and its write limit.
COPY_TASKS: Final = 16
REPLICATE_REQUESTS: Final = COPY_TASKS * WRITES_PER_COPY


class BenchmarkError(RuntimeError):
    """A step did not do what it must (a region not Completed, a deployment failed)."""


def check_regions(result: dict[str, Any], wanted: dict[str, int], what: str) -> None:
    seen = {status["region"]: status for status in result["regions"]}
    problems = [
        f"{region}: {seen[region]['state'] if region in seen else 'no status'}"
        f" {seen.get(region, {}).get('completed_replicas')}/{count} {seen.get(region, {}).get('details')}"
        for region, count in wanted.items()
        if region not in seen
        or seen[region]["state"] != "Completed"
        or seen[region]["completed_replicas"] != count
    ]
    if problems:
        raise BenchmarkError(f"{what}: " + "; ".join(problems))


class Steps(TimedSteps):
    """Publish, replicate, obstore uploads and scale sets in a child; ``cp -r`` timed from here."""

    script = Path(__file__).resolve().with_name("regions.py")
    key_width = 24

    def __init__(self, run_dir: Path, run_prefix: str) -> None:
        super().__init__(run_dir)
        self.bases = {kind: ObjectUrl.parse(bucket_url(kind)).child(run_prefix) for kind in OBJECT_KINDS}

    def url(self, kind: str, where: str) -> ObjectUrl:
        return self.bases[kind].child(where) if where else self.bases[kind]

    def publish(self, key: str | None, home: Path, image: Path, **spec: Any) -> dict[str, Any]:
        warm(image)
        settle()
        sample, result = self.child({"op": "publish", "home": str(home), "source": str(image), **spec})
        check_regions(result, {spec["location"]: 1}, f"publishing {spec['version']} into {spec['location']}")
        if key is not None:
            self.record(key, sample)
        return result

    def replicate(self, key: str, home: Path, version: str, regions: Sequence[str]) -> dict[str, Any]:
        warm(home / "regions" / SOURCE)
        settle()
        spec = {
            "op": "replicate",
            "home": str(home),
            "version": version,
            "regions": list(regions),
            "replicas": TARGET_REPLICAS,
        }
        sample, result = self.child(spec)
        check_regions(result, dict.fromkeys(regions, TARGET_REPLICAS), f"replicating {version}")
        self.record(key, sample)
        return result

    def upload(
        self, key: str, kind: str, root: Path, prefixes: Sequence[str], *, mode: str, tasks: int
    ) -> None:
        """obstore's own upload of the files under ``root`` to each prefix (``_child_put``)."""
        warm(root)
        settle()
        spec = {
            "op": "put",
            "kind": kind,
            "bucket": self.bases[kind].bucket,
            "root": str(root),
            "destinations": [self.url(kind, prefix).prefix for prefix in prefixes],
            "mode": mode,
            "tasks": tasks,
            "requests": tasks if tasks == WRITE_TASKS else REPLICATE_REQUESTS,
        }
        sample, _ = self.child(spec)
        self.record(key, sample)

    def copy(self, key: str, source: Path, outputs: Sequence[Path]) -> None:
        """``cp -r source output`` for each output in turn, then ``sync``; timed as one."""
        warm(source)
        settle()
        outputs[0].parent.mkdir(parents=True, exist_ok=True)

        def run() -> list[Finished]:
            finished = [run_child(["cp", "-r", str(source), str(output)]) for output in outputs]
            os.sync()
            return finished

        def details(finished: Sequence[Finished]) -> dict[str, Any]:
            return {"command": f"cp -r SOURCE DEST (x{len(outputs)}) && sync", "copies": len(outputs)}

        try:
            self.record(key, self.in_parent(run, details))
        finally:
            remove(outputs[0].parent)

    def deploy(self, key: str, home: Path, region: str, vms: int, bandwidth: float) -> Sample:
        settle()
        spec = {"op": "deploy", "home": str(home), "region": region, "vms": vms, "bandwidth": bandwidth}
        sample, result = self.child(spec)
        if result["errors"] or result["succeeded"] != vms:
            raise BenchmarkError(f"scale set from {region}: {result['errors']} errors {result['failures']}")
        log(f"    spread {result['spread']}  p99 {result['p99_s']} s  cpu {result['cpu_s']} s")
        return self.record(key, sample)

    def delete(self, where: str = "") -> None:
        """Untimed: every object under ``where`` of the run's prefix (all of it by default), on
        both servers. A failure is logged, not raised: it must not hide why a run stopped."""
        prefixes = [(kind, self.bases[kind].bucket, self.url(kind, where).prefix) for kind in OBJECT_KINDS]
        try:
            _, result = self.child({"op": "delete", "prefixes": prefixes})
        except ChildFailedError as exc:
            log(f"warning: could not delete {', '.join(prefix for _, _, prefix in prefixes)}: {exc}")
            return
        log(f"  deleted {sum(result['deleted'].values())} objects under {prefixes[0][2]}")
