"""The daemon's Prometheus metrics: what requests count as they happen, and what a scrape reads.

Two kinds of number live here:

* counters and histograms that the daemon moves as work happens (requests by route, method and
  status; request latency by route; disk bytes uploaded, served and replicated), held in a
  :class:`~prometheus_client.CollectorRegistry` of the application's own, never the process-wide
  one, so two applications in one process (tests do that) count apart;
* numbers that already live elsewhere and are read when ``/metrics`` is asked for
  (:mod:`blobrep.daemon.scraped`: the shared readers' per-replica statistics and download
  budget, versions per region and replication state, the catalog's read counts, the reconcile
  loop's lag and backlog), turned into metric families by the pure functions here and rendered
  beside the registry's for that one scrape.

Label values are kept to small sets: the route is the route's template (``/galleries/{gallery}``),
never the path a client sent; the method is one of the HTTP methods the API knows or ``other``.
A client cannot make a series per request.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily

from blobrep.core.gallery import ReplicationState

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric


logger = logging.getLogger("blobrep.daemon")

#: Seconds; from a cached metadata read to a multi-gigabyte upload answered after its last byte.
_SUB_SECOND: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5)
LATENCY_BUCKETS: Final = (*_SUB_SECOND, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)

#: Methods counted under their own name; any other is counted as ``other``.
KNOWN_METHODS: Final = frozenset({"GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS"})

#: The route label of a request that matched no route.
UNMATCHED: Final = "unmatched"


class Metrics:
    """The counters the daemon moves as it works, in a registry of the application's own.

    Thread-safe (prometheus_client locks each value), so worker threads may call it too.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "blobrep_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "blobrep_http_request_duration_seconds",
            "Seconds from a request's arrival to its response's start, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._in_flight = Gauge(
            "blobrep_http_requests_in_flight",
            "Requests received whose response has not ended yet.",
            registry=self.registry,
        )
        self._uploaded = Counter(
            "blobrep_uploaded_bytes", "Bytes of version disks received in uploads.", registry=self.registry
        )
        self._served = Counter(
            "blobrep_served_bytes", "Bytes of version disks sent to clients.", registry=self.registry
        )
        self._replicated = Counter(
            "blobrep_replication_bytes",
            "Stored bytes copied to replicas by replication.",
            registry=self.registry,
        )

    def uploaded(self, count: int) -> None:
        """``count`` more bytes of uploaded disk received."""
        self._uploaded.inc(count)

    def served(self, count: int) -> None:
        """``count`` more bytes of disk content sent."""
        self._served.inc(count)

    def replicated(self, count: int) -> None:
        """``count`` more stored bytes copied to a replica by replication."""
        self._replicated.inc(count)

    def started(self) -> None:
        """A request arrived."""
        self._in_flight.inc()

    def ended(self) -> None:
        """A request's response ended (sent whole, or its client went away)."""
        self._in_flight.dec()

    def answered(self, route: str, method: str, status: int, seconds: float) -> None:
        """A request to ``route`` (its template) was answered ``status`` after ``seconds``."""
        method = method if method in KNOWN_METHODS else "other"
        self._requests.labels(route, method, str(status)).inc()
        self._latency.labels(route).observe(seconds)

    def render(self, scraped: Iterable[Metric], accept: str | None) -> tuple[bytes, str]:
        """The registry's metrics and ``scraped`` in the format ``accept`` asks for (Prometheus
        text unless OpenMetrics is asked for), and that format's content type."""
        encoder, content_type = choose_encoder(accept or "")
        created = content_type.startswith("application/openmetrics-text")
        return encoder(_Scrape(self.registry, list(scraped), created)), content_type


class _Scrape:
    """One scrape's collector: the registry's metrics, then those read for this scrape.

    The Prometheus text format has no place for a counter's creation time: there the client's
    ``_created`` samples would each become a series of their own, doubling the series for
    nothing, so they are left out of it (OpenMetrics keeps them, as it defines them).
    """

    def __init__(self, registry: CollectorRegistry, scraped: list[Metric], created: bool) -> None:
        self._registry = registry
        self._scraped = scraped
        self._created = created

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            if not self._created:
                family.samples = [sample for sample in family.samples if not sample.name.endswith("_created")]
            yield family
        yield from self._scraped


def region_states(counts: Mapping[tuple[str, str], int]) -> Metric:
    """Versions per region and replication state, from ``{(region, state): versions}``.

    Every state is given for every region that appears, zeros included, so that a state whose
    last version moved on reads 0 instead of vanishing from the series.
    """
    family = GaugeMetricFamily(
        "blobrep_region_versions",
        "Image versions per region and replication state.",
        labels=["region", "state"],
    )
    for region in sorted({region for region, _ in counts}):
        for state in ReplicationState:
            family.add_metric([region, state.value], counts.get((region, state.value), 0))
    return family


ReplicaRow = tuple[str, str, int, int, int]
"""``(region, replica, bytes served, requests, failures)``: one replica's work."""


def replica_usage(rows: Iterable[ReplicaRow], failovers: int, repairs: int) -> list[Metric]:
    """The shared readers' work: per replica ``(region, replica, bytes served, requests,
    failures)``, and failovers and repairs over every reader."""
    served = CounterMetricFamily(
        "blobrep_replica_served_bytes",
        "Stored bytes read from each replica by the shared readers.",
        labels=["region", "replica"],
    )
    requests = CounterMetricFamily(
        "blobrep_replica_requests",
        "Chunk reads sent to each replica by the shared readers.",
        labels=["region", "replica"],
    )
    failures = CounterMetricFamily(
        "blobrep_replica_failures",
        "Chunk reads from each replica that failed (missing, corrupt or unreachable).",
        labels=["region", "replica"],
    )
    for region, replica, bytes_served, request_count, failure_count in rows:
        served.add_metric([region, replica], bytes_served)
        requests.add_metric([region, replica], request_count)
        failures.add_metric([region, replica], failure_count)
    return [
        served,
        requests,
        failures,
        CounterMetricFamily(
            "blobrep_reader_failovers",
            "Times a shared reader moved on to another replica after one failed.",
            value=failovers,
        ),
        CounterMetricFamily(
            "blobrep_reader_repairs",
            "Chunks the shared readers wrote back to a replica that lacked them or held them corrupt.",
            value=repairs,
        ),
    ]


def readers_open(open_now: int | None, opened: int | None) -> list[Metric]:
    """Shared readers open now and opened since the start (those of the two that are known)."""
    families: list[Metric] = []
    if open_now is not None:
        families.append(GaugeMetricFamily("blobrep_readers_open", "Shared readers open now.", value=open_now))
    if opened is not None:
        families.append(
            CounterMetricFamily("blobrep_readers_opened", "Shared readers opened so far.", value=opened)
        )
    return families


def download_budget(held: int, capacity: int, waits: int) -> list[Metric]:
    """The byte budget of chunks downloads hold (:mod:`blobrep.daemon.budget`): held now, its
    size, and how often a chunk read waited for it (clients beyond what the budget feeds)."""
    return [
        GaugeMetricFamily(
            "blobrep_download_budget_held_bytes", "Chunk bytes downloads hold now.", value=held
        ),
        GaugeMetricFamily(
            "blobrep_download_budget_bytes", "Chunk bytes downloads may hold at once.", value=capacity
        ),
        CounterMetricFamily(
            "blobrep_download_budget_waits", "Chunk reads that waited for the download budget.", value=waits
        ),
    ]


def catalog_read_cache(hits: int, misses: int) -> list[Metric]:
    """Catalog reads answered from what the connection had decoded, and reads decoded anew."""
    return [
        CounterMetricFamily(
            "blobrep_catalog_cached_reads", "Catalog reads answered from decoded answers kept.", value=hits
        ),
        CounterMetricFamily(
            "blobrep_catalog_decoded_reads", "Catalog reads decoded from the database.", value=misses
        ),
    ]


#: What the reconcile loop's ``statistics()`` snapshot holds: attribute, metric, help, counter?
RECONCILE_FIELDS: Final = (
    ("lag", "blobrep_reconcile_lag_seconds", "Seconds the oldest unmet region has waited.", False),
    ("passes", "blobrep_reconcile_passes", "Reconcile passes completed since the daemon started.", True),
    ("last_pass", "blobrep_reconcile_last_pass_timestamp_seconds", "Unix time of the last pass.", False),
    ("behind", "blobrep_reconcile_behind_regions", "Version regions the loop still has work for.", False),
    ("retrying", "blobrep_reconcile_retrying_regions", "Of those, regions waiting to retry.", False),
    ("given_up", "blobrep_reconcile_given_up_regions", "Regions left Failed after the last attempt.", False),
)


def reconcile_loop(numbers: Mapping[str, float]) -> list[Metric]:
    """The reconcile loop's numbers (``lag``, ``passes``, ``last_pass``, ``behind``,
    ``retrying``, ``given_up``; those it has) as metric families."""
    return [
        (CounterMetricFamily if counter else GaugeMetricFamily)(name, documentation, value=numbers[field])
        for field, name, documentation, counter in RECONCILE_FIELDS
        if field in numbers
    ]


def log_lines_dropped(count: int) -> Metric:
    """Log lines the daemon dropped because its standard error could not keep up."""
    return CounterMetricFamily(
        "blobrep_log_lines_dropped",
        "Log lines dropped because standard error did not keep up.",
        value=count,
    )
