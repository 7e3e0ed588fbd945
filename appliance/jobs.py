"""What a job does on a channel: a call, an SMS, an HLR-style check.

Each executor takes the modem the bank lent it and returns a result dict in the docs/architecture.md
vocabulary. They do not touch the store: the scheduler writes the attempt before calling
them and the result after, so a crash between the two is recovered as ``interrupted``.

HLR-style checks, two methods (chosen per job, ``method``):

* ``sms_ping`` — an SMS with TP-PID 0x40 ("type 0", 23.040 §9.2.3.9: the handset
  acknowledges it and shows nothing) and a status report requested; the report's TP-ST
  classifies the number: delivered → ``active``; temporary error (absent, switched off)
  → ``absent``; permanent error → ``invalid``.
* ``probe_call`` — a call released before answer: alerting means the subscriber is
  reachable (``active``); a release before alerting is classified by its Q.850 cause.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from modem_drivers.at import AtError, TimeoutClass
from modem_drivers.call import Call, CallState
from modem_drivers.deadlines import coarse_timeout
from modem_drivers.errors import ModemError, SimBlocked
from modem_drivers.modem import Modem, PlaybackEnd
from modem_drivers.q850 import CallOutcome, cause_name
from modem_drivers.sms import PID_TYPE0, DeliveryState, StatusReport
from common.clock import iso as clock_iso

logger = logging.getLogger(__name__)


class HlrStatus(enum.Enum):
    ACTIVE = "active"
    ABSENT = "absent"
    INVALID = "invalid"
    UNKNOWN = "unknown"


#: Release causes of a probe call that never alerted (Q.850 Table 1) -> number status.
PROBE_CAUSES: Final[dict[int, HlrStatus]] = {
    1: HlrStatus.INVALID,  # unassigned number
    3: HlrStatus.INVALID,  # no route to destination
    22: HlrStatus.INVALID,  # number changed
    28: HlrStatus.INVALID,  # invalid number format
    18: HlrStatus.ABSENT,  # no user responding
    20: HlrStatus.ABSENT,  # subscriber absent
    27: HlrStatus.ABSENT,  # destination out of order
    17: HlrStatus.ACTIVE,  # user busy: the subscriber exists and is attached
    19: HlrStatus.ACTIVE,  # alerted, no answer
    21: HlrStatus.ACTIVE,  # rejected by the user
    16: HlrStatus.ACTIVE,  # normal clearing (our own release after alerting)
}

#: How long an SMS ping waits for its first status report. The SMSC reports a temporary
#: failure within seconds of its first delivery attempt (23.040 §3.2.9 leaves timing to
#: the SMSC; a minute covers typical SMSCs).
SMS_PING_TIMEOUT: Final = 60.0
#: A probe call is released this long after dialing if nothing came back.
PROBE_TIMEOUT: Final = 30.0


def iso(ts: float | None) -> str | None:
    """A result's time stamp (UTC ISO 8601 with milliseconds), or None."""
    return None if ts is None else clock_iso(ts)


@dataclasses.dataclass(slots=True)
class Placement:
    """Where an attempt runs: channel, SIM and the number the callee will see."""

    channel_id: str
    sim_id: str
    msisdn: str
    attempt: int


def _base(job: dict[str, Any], p: Placement) -> dict[str, Any]:
    return {
        "job_id": job["id"],
        "kind": job["kind"],
        "callee": job["callee"],
        "attempt": p.attempt,
        "channel_id": p.channel_id,
        "sim_id": p.sim_id,
        "number_shown": p.msisdn,
    }


def _wall(call_times: dict[CallState, float], mono0: float, wall0: float, state: CallState) -> str | None:
    t = call_times.get(state)
    return None if t is None else iso(wall0 + (t - mono0))


async def _answer_hangup(modem: Modem, call: Call, opts: dict[str, Any], talk_left: float) -> dict[str, Any]:
    return {}


async def _answer_hold(modem: Modem, call: Call, opts: dict[str, Any], talk_left: float) -> dict[str, Any]:
    try:
        await call.wait_released(talk_left)
    except TimeoutError:
        pass
    return {}


#: A release reported by the modem is complete once +CEER answered (a DEFAULT-class AT
#: command, modem_drivers.at.timeouts: 3 s); only then would a hang-up be ours.
RELEASE_WAIT: Final = TimeoutClass.DEFAULT.seconds

#: Why a message was not heard to its end, by how its playback ended.
PLAYBACK_ERRORS: Final[dict[PlaybackEnd, str]] = {
    PlaybackEnd.CALL_RELEASED: "the callee hung up before the message ended",
    PlaybackEnd.TIMED_OUT: "the message was stopped at max_talk_seconds",
}


async def _answer_play(modem: Modem, call: Call, opts: dict[str, Any], talk_left: float) -> dict[str, Any]:
    """Speak the message with the modem's TTS; the call still ends with its own outcome
    when it cannot be played (a Huawei channel has no TTS), and the result says why."""
    message = opts.get("message")
    if not message:
        return {"message_played": False, "message_seconds": 0.0,
                "message_error": "no message to play: neither the job's call.message nor [calls] message reached the call"}
    try:
        playback = await modem.play_tts(message, timeout=talk_left)
    except (AtError, ModemError) as exc:
        return {"message_played": False, "message_seconds": 0.0, "message_error": str(exc)}
    out: dict[str, Any] = {"message_played": playback.end is PlaybackEnd.FINISHED, "message_seconds": playback.seconds}
    if playback.end in PLAYBACK_ERRORS:
        out["message_error"] = PLAYBACK_ERRORS[playback.end]
    return out


#: What an answered call does (jobspec.ON_ANSWER); each returns its own result fields.
ANSWER_ACTIONS: Final[dict[str, Callable[[Modem, Call, dict[str, Any], float], Awaitable[dict[str, Any]]]]] = {
    "hangup": _answer_hangup,
    "hold": _answer_hold,
    "play": _answer_play,
}


async def run_call(modem: Modem, job: dict[str, Any], p: Placement, defaults: dict[str, Any]) -> dict[str, Any]:
    opts = {**defaults, **(job.get("call") or {})}
    max_ring = float(opts.get("max_ring_seconds", 30.0))
    max_talk = float(opts.get("max_talk_seconds", 60.0))
    action = ANSWER_ACTIONS[opts.get("on_answer", "hangup")]
    out = _base(job, p)
    wall0, mono0 = time.time(), time.monotonic()
    try:
        call = await modem.dial(job["callee"])
    except (AtError, ModemError) as exc:
        return {**out, "outcome": CallOutcome.CHANNEL_ERROR.value, "cause": None, "error": str(exc), "dialed_at": iso(wall0)}
    try:
        state = await call.wait_for(CallState.ACTIVE, timeout=max_ring)
    except TimeoutError:
        state = call.state
    answered: dict[str, Any] = {}
    if state is CallState.ACTIVE:
        # max_talk_seconds bounds the whole answered part, whatever the action does.
        talk_left = max(0.0, max_talk - (time.monotonic() - call.times[CallState.ACTIVE]))
        answered = await action(modem, call, opts, talk_left)
    if call.releasing and not call.released:
        # The far end released (its cause is being asked with +CEER): not ours to hang up.
        with contextlib.suppress(TimeoutError):
            await call.wait_released(RELEASE_WAIT)
    if not call.released:
        try:
            await modem.hangup()
        except (AtError, ModemError) as exc:
            logger.warning("hang-up failed on %s: %s", p.channel_id, exc)
    report = call.report()
    times = call.times
    return {
        **out,
        "outcome": report.outcome.value,
        "cause": report.cause,
        "cause_name": cause_name(report.cause),
        "local_release": report.local_release,
        "dialed_at": iso(wall0),
        "alerting_at": _wall(times, mono0, wall0, CallState.ALERTING),
        "answered_at": _wall(times, mono0, wall0, CallState.ACTIVE),
        "ended_at": _wall(times, mono0, wall0, CallState.RELEASED),
        "talk_seconds": report.talk_seconds,
        # when this process saw the answer (time.monotonic), for the benchmark's
        # answer-latency figure against the emulator's own stamp
        "answered_monotonic": times.get(CallState.ACTIVE),
        **answered,
    }


#: A report may arrive before its submitter registered for it (a fast SMSC answers in
#: the same read as ``+CMGS``); unclaimed reports are kept this long, this many at most.
UNCLAIMED_TTL: Final = 600.0
UNCLAIMED_MAX: Final = 10_000


class ReportTracker:
    """Routes status reports to the submissions waiting for them, by (SIM, TP-MR).

    The key is the SIM, not the modem: TP-MR counts per SIM on multi-SIM modems, and a
    report reaches the SIM that sent the message. A report that arrives before its waiter
    registered is kept; a waiter takes only reports that arrived after its submission
    started, so a late report of an older message with the same TP-MR is never mistaken
    for a new one."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, int], asyncio.Queue[StatusReport]] = {}
        self._unclaimed: dict[tuple[str, int], list[tuple[float, StatusReport]]] = {}

    def expect(self, sim_id: str, reference: int, *, since: float | None = None) -> asyncio.Queue[StatusReport]:
        q: asyncio.Queue[StatusReport] = asyncio.Queue()
        key = (sim_id, reference)
        self._waiting[key] = q
        now = time.monotonic()
        for at, rep in self._unclaimed.pop(key, []):
            if now - at <= UNCLAIMED_TTL and (since is None or at >= since):
                q.put_nowait(rep)
        return q

    def sims_waiting(self) -> set[str]:
        """SIMs with a submission still waiting for a report."""
        return {sim for sim, _ in self._waiting}

    def forget(self, sim_id: str, reference: int) -> None:
        self._waiting.pop((sim_id, reference), None)

    def deliver(self, sim_id: str, report: StatusReport) -> bool:
        """Hand a report to its waiter; keep it for a late waiter otherwise."""
        key = (sim_id, report.reference)
        q = self._waiting.get(key)
        if q is not None:
            q.put_nowait(report)
            return True
        if len(self._unclaimed) >= UNCLAIMED_MAX:
            self._unclaimed.pop(next(iter(self._unclaimed)))
        self._unclaimed.setdefault(key, []).append((time.monotonic(), report))
        return False


async def submit_sms(modem: Modem, job: dict[str, Any], p: Placement, tracker: ReportTracker, *, pid: int = 0) -> tuple[dict[str, Any], list[asyncio.Queue[StatusReport]], list[int]]:
    """Submit (the channel part of an SMS job); returns the partial result and report queues."""
    out = _base(job, p)
    text = job.get("text") or " "
    want_report = bool(job.get("report", True))
    t0 = time.time()
    since = time.monotonic()
    try:
        sub = await modem.send_sms(job["callee"], text, report=want_report, pid=pid)
    except SimBlocked as exc:
        # +CMS ERROR 50 (facility not subscribed): the operator barred this SIM's SMS —
        # evidence for quarantine, like a call refused with cause 50.
        return {**out, "outcome": "channel_error", "error": str(exc), "sim_blocked": True,
                "submitted_at": iso(t0)}, [], []
    except (AtError, ModemError) as exc:
        return {**out, "outcome": "channel_error", "error": str(exc), "submitted_at": iso(t0)}, [], []
    queues = [tracker.expect(p.sim_id, ref, since=since) for ref in sub.references] if want_report else []
    return (
        {**out, "outcome": "submitted", "parts": sub.parts, "references": list(sub.references), "submitted_at": iso(t0)},
        queues,
        list(sub.references),
    )


async def await_delivery(queues: list[asyncio.Queue[StatusReport]], timeout: float, *, first_only: bool = False) -> tuple[str, list[int]]:
    """Wait for every part's final report (or the first report with ``first_only``)."""
    statuses: list[int] = []
    state = "no_report"
    try:
        async with coarse_timeout(timeout):
            for q in queues:
                while True:
                    rep = await q.get()
                    statuses.append(rep.status)
                    if first_only or rep.state is not DeliveryState.PENDING:
                        break
                if first_only:
                    return rep.state.value, statuses
    except TimeoutError:
        return ("pending" if statuses else "no_report"), statuses
    finals = [s for s in statuses]
    if all(DeliveryState.DELIVERED is _state(s) for s in finals[-len(queues):] if True):
        state = "delivered"
    else:
        state = "failed"
    return state, statuses


def _state(status: int) -> DeliveryState:
    from modem_drivers.sms import delivery_state

    return delivery_state(status)


def classify_ping(status: int | None) -> HlrStatus:
    if status is None:
        return HlrStatus.UNKNOWN
    st = _state(status)
    if st is DeliveryState.DELIVERED:
        return HlrStatus.ACTIVE
    if st is DeliveryState.PENDING or 0x60 <= status <= 0x7F:
        return HlrStatus.ABSENT
    return HlrStatus.INVALID


async def run_probe_call(modem: Modem, job: dict[str, Any], p: Placement) -> dict[str, Any]:
    out = _base(job, p)
    t0 = time.monotonic()
    try:
        call = await modem.dial(job["callee"])
    except (AtError, ModemError) as exc:
        return {**out, "outcome": "channel_error", "method": "probe_call", "error": str(exc)}
    try:
        state = await call.wait_for(CallState.ALERTING, CallState.ACTIVE, timeout=PROBE_TIMEOUT)
    except TimeoutError:
        state = call.state
    if not call.released:
        await modem.hangup()
    if call.channel_lost and state not in (CallState.ALERTING, CallState.ACTIVE):
        return {**out, "outcome": "channel_error", "method": "probe_call", "error": "the modem's port went away during the probe"}
    if state in (CallState.ALERTING, CallState.ACTIVE):
        status = HlrStatus.ACTIVE
    elif call.cause is not None and call.report().outcome is CallOutcome.CHANNEL_ERROR:
        # Our SIM was refused (barred, not subscribed): says nothing about the callee.
        return {**out, "outcome": "channel_error", "method": "probe_call", "cause": call.cause,
                "cause_name": cause_name(call.cause), "error": "the network refused our SIM"}
    else:
        status = PROBE_CAUSES.get(call.cause or -1, HlrStatus.UNKNOWN)
    return {
        **out,
        "outcome": status.value,
        "method": "probe_call",
        "cause": call.cause,
        "cause_name": cause_name(call.cause),
        "alerted": CallState.ALERTING in call.times or CallState.ACTIVE in call.times,
        "seconds": round(time.monotonic() - t0, 3),
    }


async def run_sms_ping(modem: Modem, job: dict[str, Any], p: Placement, tracker: ReportTracker, timeout: float) -> dict[str, Any]:
    t0 = time.monotonic()
    ping = {**job, "text": " ", "report": True}
    partial, queues, refs = await submit_sms(modem, ping, p, tracker, pid=PID_TYPE0)
    if not queues:
        return {**partial, "method": "sms_ping"}
    try:
        state, statuses = await await_delivery(queues, timeout, first_only=True)
    finally:
        for ref in refs:
            tracker.forget(p.sim_id, ref)
    status = statuses[0] if statuses else None
    return {
        **_base(job, p),
        "outcome": classify_ping(status).value,
        "method": "sms_ping",
        "tp_status": status,
        "seconds": round(time.monotonic() - t0, 3),
    }
