"""What ``/metrics`` reads when it is asked for: numbers that live elsewhere (the catalog, the
shared readers, the reconcile loop), turned into metric families by the pure functions of
:mod:`blobrep.daemon.metrics` for that one scrape.

Each source is optional (absent until its part of the daemon runs), and one that cannot be
read is logged and left out: a scrape never fails for it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from blobrep.daemon.metrics import (
    RECONCILE_FIELDS,
    ReplicaRow,
    catalog_read_cache,
    download_budget,
    logger,
    readers_open,
    reconcile_loop,
    region_states,
    replica_usage,
)
from blobrep.errors import BlobrepError

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from blobrep.catalog.reads import CatalogReads
    from blobrep.service.home import Home


async def read_at_scrape(state: Any) -> list[Metric]:
    """What the application's ``state`` holds beside the registry, as metric families: region
    states from the service, the shared readers' statistics, the reconcile loop's lag. Each
    source is optional (absent until its part of the daemon runs) and one that cannot be read
    is logged and left out: a scrape never fails for it."""
    return [
        *await _region_states(state),
        *_catalog_reads(state),
        *await _replica_usage(state),
        *await _reconcile(state),
    ]


async def _region_states(state: Any) -> list[Metric]:
    """Versions per region and state: one catalog read, in one transaction, per scrape."""
    service = getattr(state, "service", None)
    if service is None:
        return []
    try:
        counts = await service.run_query(service.bootstrap_admin, _count_region_states)
    except BlobrepError as exc:
        logger.warning("region states left out of /metrics: %s", exc, extra={"source": "catalog"})
        return []
    return [region_states(counts)]


def _catalog_reads(state: Any) -> list[Metric]:
    """The service's catalog read counts (kept answers and decoded ones), when it has a service."""
    service = getattr(state, "service", None)
    if service is None:
        return []
    hits, misses = service.catalog_read_counts()
    return catalog_read_cache(hits, misses)


def _count_region_states(reads: CatalogReads, home: Home, caller: str) -> Mapping[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for gallery in reads.list_galleries():
        for definition in reads.list_definitions(gallery.name):
            for version in reads.list_versions(gallery.name, definition.name):
                for status in version.regions:
                    key = (status.region, status.state.value)
                    counts[key] = counts.get(key, 0) + 1
    return counts


async def _replica_usage(state: Any) -> list[Metric]:
    """The shared readers' ``replica_statistics()``, when the application has shared readers.

    Expected: an object whose ``replicas`` (or ``rows``, or the object itself) are ``(region,
    replica, bytes served, requests, failures)`` rows (tuples, or objects with the attributes
    ``region``, ``replica``, ``bytes_served``, ``requests``, ``failures``), and whose
    ``failovers`` and ``repairs`` (on it, or on its ``totals``) count over every reader;
    ``open`` and ``opened`` are read when it has them. A shape that does not fit is logged and
    left out rather than failing the scrape.
    """
    statistics = getattr(getattr(state, "readers", None), "replica_statistics", None)
    if statistics is None:
        return []
    try:
        snapshot = await _called(statistics)
        rows = getattr(snapshot, "replicas", None)
        if rows is None:
            rows = getattr(snapshot, "rows", snapshot)
        totals = getattr(snapshot, "totals", snapshot)
        usage = replica_usage(
            [_replica_row(row) for row in rows],
            int(getattr(totals, "failovers", 0)),
            int(getattr(totals, "repairs", 0)),
        )
        open_now, opened = getattr(snapshot, "open", None), getattr(snapshot, "opened", None)
        usage += readers_open(
            None if open_now is None else int(open_now), None if opened is None else int(opened)
        )
        if hasattr(snapshot, "budget_capacity"):
            usage += download_budget(
                int(snapshot.budget_held), int(snapshot.budget_capacity), int(snapshot.budget_waits)
            )
        return usage
    except (AttributeError, TypeError, ValueError) as exc:
        logger.warning("replica statistics left out of /metrics: %s", exc, extra={"source": "readers"})
        return []


def _replica_row(row: Any) -> ReplicaRow:
    if hasattr(row, "region"):
        return (
            str(row.region),
            str(row.replica),
            int(row.bytes_served),
            int(row.requests),
            int(row.failures),
        )
    region, replica, served, requests, failures = row
    return (str(region), str(replica), int(served), int(requests), int(failures))


async def _reconcile(state: Any) -> list[Metric]:
    """The reconcile loop's ``statistics()`` snapshot (or only its ``lag()``), when it runs."""
    reconciler = getattr(state, "reconciler", None)
    if reconciler is None:
        return []
    try:
        statistics = getattr(reconciler, "statistics", None)
        snapshot = await _called(statistics) if statistics is not None else None
        numbers = {
            field: _seconds(value)
            for field, *_ in RECONCILE_FIELDS
            if (value := getattr(snapshot, field, None)) is not None
        }
        lag = getattr(reconciler, "lag", None)
        if "lag" not in numbers and lag is not None and (value := await _called(lag)) is not None:
            numbers["lag"] = _seconds(value)
    except (AttributeError, TypeError, ValueError) as exc:
        logger.warning("reconcile loop left out of /metrics: %s", exc, extra={"source": "reconciler"})
        return []
    return reconcile_loop(numbers)


async def _called(function: Callable[[], Any]) -> Any:
    """``function()``, awaited if it gave an awaitable."""
    value = function()
    return await value if inspect.isawaitable(value) else value


def _seconds(value: Any) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
