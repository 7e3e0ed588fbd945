"""Prometheus metrics of one appliance, in their own registry (no global state).
Labels are bounded: channel id, SIM id, state, outcome — never a phone number.

Counters are pushed (``count_result``, ``count_change``: the runtime subscribes them to
the scheduler and the bank); gauges are read from the channels and the scheduler when
``/metrics`` is scraped (``refresh``)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from common.clock import parse_iso

from .channel import Channel, ChannelState
from .scheduler import Scheduler

#: Post-dial delay buckets (s): GSM call set-up to ringback is 1-10 s on live networks
#: (provisioning's CALL_WAIT note); ITU-T E.721 mean targets 3-8 s.
PDD_BUCKETS = (0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0)
#: Talk-time buckets (s): the [calls] max_talk_seconds default is 60; a voicebot call runs
#: a few minutes.
TALK_BUCKETS = (1.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
#: Outcomes of a call attempt the network never saw: not a seizure (technician/traffic.py).
NOT_SEIZED = frozenset({"channel_error"})


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
        # ASR, ACD and PDD as the page computes them (appliance/technician/traffic.py):
        # seizures and answers per modem, talk time and post-dial delay of every seizure.
        self.seizures = Counter("simrotor_call_seizures_total", "Call attempts the network saw (every outcome but "
                                "channel_error), per modem", ["modem"], registry=self.registry)
        self.answered = Counter("simrotor_call_answered_total", "Seized calls answered, per modem", ["modem"],
                                registry=self.registry)
        self.talk = Histogram("simrotor_call_talk_seconds", "Talk time of answered calls (answer to release)",
                              buckets=TALK_BUCKETS, registry=self.registry)
        self.pdd = Histogram("simrotor_call_post_dial_delay_seconds", "Post-dial delay: ATD sent to alerting (or to the "
                             "answer when no alerting came)", buckets=PDD_BUCKETS, registry=self.registry)
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
        if key[0] == "call" and key[1] not in NOT_SEIZED and result.get("dialed_at"):
            self._count_call(result)

    def _count_call(self, result: dict) -> None:
        """One seized call: its modem's seizure (and answer), its talk time and PDD."""
        modem = str(result.get("channel_id"))
        self.seizures.labels(modem).inc()
        try:
            dialed = parse_iso(result["dialed_at"])
            rang = result.get("alerting_at") or result.get("answered_at")
            if rang:
                self.pdd.observe(max(0.0, parse_iso(rang) - dialed))
        except (TypeError, ValueError):
            pass  # a result without readable times still counts as a seizure
        if result.get("answered_at"):
            self.answered.labels(modem).inc()
            self.talk.observe(float(result.get("talk_seconds") or 0.0))

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
