"""The controller's Prometheus metrics (``GET /metrics``, text exposition format) and its
health (``GET /healthz``).

Labels are bounded by construction: an API request is labelled by its route *template*
(``/v1/campaigns/{id}``, or ``unmatched``), its method among five and its status class, never
by a path, an id or a number. Counts by state are read from the store at scrape time (indexes
and kept counts only: store/gauges.py); event totals (import rows, lease expiries, webhook
deliveries) count from the process's start, as Prometheus counters do.

One registry per controller, not the process-wide default: a test process runs many.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from .store import Store
from .store.backend import DATABASE_ERRORS

#: Methods kept as a label value; any other is ``other`` (a label never takes a client's word).
METHODS: Final = frozenset({"GET", "POST", "PUT", "DELETE", "HEAD"})
#: Latency buckets, seconds: a page read is milliseconds, an import of 100,000 rows about 1 s.
BUCKETS: Final = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def route_of(request: web.Request) -> str:
    """The route's template, ``unmatched`` for a path no route has (a 404)."""
    info = request.match_info
    resource = info.route.resource if info.http_exception is None else None
    return resource.canonical if resource is not None else "unmatched"


class Metrics:
    """The registry and what feeds it. ``appliances_connected`` and ``deliveries`` are read
    at scrape time from the link hub and the webhook deliverer."""

    def __init__(self, store: Store, *, appliances_connected: Callable[[], int],
                 deliveries: Callable[[], tuple[int, int]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram("simrotor_api_request_duration_seconds", "CRM API requests by route template",
                                 ["method", "route", "status"], buckets=BUCKETS, registry=self.registry)
        self.import_rows = Counter("simrotor_import_rows", "Contact rows imported (stored) or in refused imports (refused)",
                                   ["outcome"], registry=self.registry)
        self.lease_expiries = Counter("simrotor_lease_expiries", "Jobs whose lease ran out before a result and were "
                                      "leased again", registry=self.registry)
        self.registry.register(_StoreCollector(store, appliances_connected, deliveries))

    def observe(self, request: web.Request, status: int, seconds: float) -> None:
        method = request.method if request.method in METHODS else "other"
        self.latency.labels(method, route_of(request), f"{status // 100}xx").observe(seconds)

    def imported(self, stored: int = 0, refused: int = 0) -> None:
        if stored:
            self.import_rows.labels("stored").inc(stored)
        if refused:
            self.import_rows.labels("refused").inc(refused)

    def render(self) -> web.Response:
        resp = web.Response(body=generate_latest(self.registry))
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp


class _StoreCollector(Collector):
    def __init__(self, store: Store, appliances_connected: Callable[[], int],
                 deliveries: Callable[[], tuple[int, int]]) -> None:
        self.store = store
        self.appliances_connected = appliances_connected
        self.deliveries = deliveries

    def describe(self) -> list[Metric]:
        return []  # read at scrape time: nothing to describe before

    def collect(self) -> Iterator[Metric]:
        def gauge(name: str, doc: str, label: str, values: dict[str, int]) -> GaugeMetricFamily:
            g = GaugeMetricFamily(name, doc, labels=[label])
            for k, v in sorted(values.items()):
                g.add_metric([k], v)
            return g

        yield gauge("simrotor_jobs", "Jobs holding a lease, by state", "state", self.store.open_jobs_by_state())
        yield gauge("simrotor_contacts", "Contacts by state, all campaigns", "state", self.store.contacts_by_state())
        yield gauge("simrotor_campaigns", "Campaigns by state", "state", self.store.campaigns_by_state())
        yield gauge("simrotor_webhook_queue", "Webhook deliveries waiting (pending) or given up (dead)", "state",
                    self.store.undelivered_by_state())
        yield GaugeMetricFamily("simrotor_appliances_connected", "Appliances on the link (hello received)",
                                value=self.appliances_connected())
        yield GaugeMetricFamily("simrotor_appliances_enrolled", "Appliances enrolled", value=self.store.appliances_enrolled())
        delivered, failed = self.deliveries()
        c = CounterMetricFamily("simrotor_webhook_deliveries", "Webhook delivery attempts by result", labels=["result"])
        c.add_metric(["delivered"], delivered)
        c.add_metric(["failed"], failed)
        yield c


def health(store: Store, appliances_connected: int) -> tuple[int, dict[str, Any]]:
    """``/healthz``: 200 when the database answers, 503 when it does not (the controller
    can do nothing without it); the link's state is reported, not judged (a fleet with no
    appliance connected is quiet, not broken)."""
    try:
        schema = store.ping()
        database: dict[str, Any] = {"ok": True, "schema_version": schema}
        enrolled = store.appliances_enrolled()
    except DATABASE_ERRORS as exc:
        database, enrolled = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}, None
    link = {"appliances_connected": appliances_connected, "appliances_enrolled": enrolled}
    ok = bool(database["ok"])
    return (200 if ok else 503), {"status": "ok" if ok else "failing", "database": database, "link": link}
