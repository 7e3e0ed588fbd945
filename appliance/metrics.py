"""Prometheus metrics of one appliance, in their own registry (no global state).
Labels are bounded: channel id, SIM id, state, outcome — never a phone number.

Counters are pushed (``count_result``, ``count_change``: the runtime subscribes them to
the scheduler and the bank); gauges are read from the channels and the scheduler when
``/metrics`` is scraped (``refresh``)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from .channel import Channel, ChannelState
from .scheduler import Scheduler


class Metrics:
    def __init__(self, channels: Mapping[str, Channel], scheduler: Scheduler) -> None:
        self._channels = channels
        self._scheduler = scheduler
        self.registry = CollectorRegistry()
        self.channels = Gauge("simrotor_channels", "Channels by state", ["state"], registry=self.registry)
        self.signal = Gauge("simrotor_signal_dbm", "Signal strength of each modem", ["modem"], registry=self.registry)
        self.results = Counter("simrotor_results_total", "Attempt results by kind and outcome", ["kind", "outcome"], registry=self.registry)
        self.channel_changes = Counter("simrotor_channel_changes_total", "Channel state changes", ["to"], registry=self.registry)
        self.queued = Gauge("simrotor_jobs_queued", "Jobs waiting for a channel", registry=self.registry)
        self.running = Gauge("simrotor_jobs_running", "Jobs on a channel now", registry=self.registry)
        self.waiting = Gauge("simrotor_jobs_waiting", "Queued jobs by why they wait (scheduler JobWait, rotation WaitingFor)",
                             ["waiting_for"], registry=self.registry)
        # ``labels()`` builds and locks on every call; per-job counters keep their children.
        self._result_children: dict[tuple[str, str], Any] = {}
        self._change_children: dict[ChannelState, Any] = {}

    def count_result(self, result: dict) -> None:
        """One attempt result (called per job: the labelled child is looked up once)."""
        key = (str(result.get("kind")), str(result.get("outcome")))
        child = self._result_children.get(key)
        if child is None:
            child = self._result_children[key] = self.results.labels(*key)
        child.inc()

    def count_change(self, to: ChannelState) -> None:
        """One channel state change (twice per job)."""
        child = self._change_children.get(to)
        if child is None:
            child = self._change_children[to] = self.channel_changes.labels(to.value)
        child.inc()

    def refresh(self) -> None:
        """The gauges, read now (before a scrape)."""
        counts = {s: 0 for s in ChannelState}
        for ch in self._channels.values():
            counts[ch.state] += 1
            if ch.signal_dbm is not None:
                self.signal.labels(ch.id).set(ch.signal_dbm)
        for state, n in counts.items():
            self.channels.labels(state.value).set(n)
        stats = self._scheduler.stats()
        self.queued.set(stats["queued"])
        self.running.set(stats["running"])
        waiting = self._scheduler.waiting_counts()
        for labels in list(self.waiting._metrics):  # reasons no job has any more read 0, not their last count
            if labels[0] not in waiting:
                self.waiting.labels(*labels).set(0)
        for why, n in waiting.items():
            self.waiting.labels(why).set(n)
