"""Timed steps: blobrep operations in a child process of their own, baseline commands from here.

A benchmark script is its own child: ``SCRIPT --child SPEC`` runs the one operation that the
JSON ``SPEC`` names (its ``"op"``), timed inside the child around that operation, and prints
``{"seconds", "result", "vm_hwm_kib"}`` as JSON on stdout (:func:`child_main`). A baseline
command is timed from this process, from the spawn of its first command to the end of whatever
durability step follows (:meth:`TimedSteps.in_parent`). Either way the run becomes a
:class:`Sample` with the child's peak RSS and CPU time and the rest of the machine's CPU time.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from _harness import KIB, Finished, Sample, cpu_busy_s, load1, log, own_peak_rss_kib, run_child

ChildOperation = Callable[[dict[str, Any]], tuple[float, dict[str, Any]]]
"""One operation of a child: the spec in, (the seconds it took, its result as plain data) out."""


def child_main(spec_text: str, operations: Mapping[str, ChildOperation]) -> int:
    """``--child SPEC``: run one operation and print ``{"seconds", "result"}`` as JSON."""
    spec = json.loads(spec_text)
    seconds, result = operations[spec["op"]](spec)
    json.dump({"seconds": seconds, "result": result, "vm_hwm_kib": own_peak_rss_kib()}, sys.stdout)
    return 0


class TimedSteps:
    """The timed operations of one benchmark; each records a :class:`Sample` under a key.

    A subclass names its script (run with ``--child`` for blobrep operations) and the width of
    the key column in the progress log.
    """

    script: ClassVar[Path]
    key_width: ClassVar[int]

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.samples: dict[str, list[Sample]] = {}

    def path(self, name: str) -> Path:
        return self.run_dir / name

    def record(self, key: str, sample: Sample) -> Sample:
        self.samples.setdefault(key, []).append(sample)
        log(
            f"  {key:<{self.key_width}} {sample.seconds:8.3f} s"
            f"  peak RSS {sample.peak_rss_kib / KIB:7.1f} MiB  cpu {sample.cpu_s:6.2f} s"
            f"  other cpu {sample.other_cpu_s:5.2f} s  load {sample.load1:.2f}"
        )
        return sample

    def child(self, spec: dict[str, Any]) -> tuple[Sample, dict[str, Any]]:
        """Run ``spec`` in a child (not recorded): its sample, and the operation's result."""
        load = load1()
        busy = cpu_busy_s()
        finished = run_child([sys.executable, str(self.script), "--child", json.dumps(spec)])
        busy = cpu_busy_s() - busy
        payload = json.loads(finished.stdout)
        cpu = finished.user_s + finished.system_s
        sample = Sample(
            seconds=payload["seconds"],
            wall_s=finished.seconds,
            peak_rss_kib=finished.peak_rss_kib,
            cpu_s=cpu,
            load1=load,
            other_cpu_s=max(0.0, busy - cpu),
            details={**payload["result"], "child_vm_hwm_kib": payload["vm_hwm_kib"]},
        )
        return sample, payload["result"]

    def in_parent(
        self,
        action: Callable[[], Sequence[Finished]],
        details: Callable[[Sequence[Finished]], dict[str, Any]],
    ) -> Sample:
        """Time ``action`` from here (not recorded): the commands it runs and anything after them.

        The sample's CPU time is the sum of the commands', its peak RSS their largest; its
        details are ``details`` of the finished commands, taken once the timing has stopped.
        """
        load = load1()
        busy = cpu_busy_s()
        started = time.perf_counter()
        finished = action()
        seconds = time.perf_counter() - started
        busy = cpu_busy_s() - busy
        cpu = sum(run.user_s + run.system_s for run in finished)
        return Sample(
            seconds=seconds,
            wall_s=seconds,
            peak_rss_kib=max(run.peak_rss_kib for run in finished),
            cpu_s=cpu,
            load1=load,
            other_cpu_s=max(0.0, busy - cpu),
            details=details(finished),
        )
