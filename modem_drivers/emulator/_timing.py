"""Timing profiles: how long the simulated world takes for each step.

``REALISTIC`` follows the number plan (docs/emulator.md) and typical GSM figures;
``FAST`` removes every artificial delay so a benchmark measures pure software cost. The
phases still happen in order (dialing, alerting, active, released) and the callee's own
conversation length (he hangs up after 60 s / the machine after 30 s) is kept in both
profiles: it is the callee's choice, not network latency, and a caller hangs up first.
"""
from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass
from typing import Final

Span = tuple[float, float]  # a delay drawn uniformly from [low, high] seconds


class Timing(enum.Enum):
    REALISTIC = "realistic"
    FAST = "fast"


@dataclass(frozen=True, slots=True)
class TimingProfile:
    command_latency: Span  # a modem answers a plain command within a few ms
    call_setup: Span  # ATD → alerting / early release (mobile-to-mobile set-up ≈ 1–3 s)
    answer_human: Span  # plan behaviour 0 and 8
    answer_machine: Span  # plan behaviour 1
    answer_late: Span  # plan behaviour 7
    reject_after: Span  # plan behaviour 4 rings this long before rejecting
    no_answer_timer: Span  # network's alerting timer; docs/dialects.md: 30 s (realistic)
    hold_human: Span  # a human hangs up after 60 s if we do not (docs/dialects.md)
    hold_machine: Span  # a machine hangs up 30 s after answering (docs/dialects.md)
    dtmf_gap: Span  # between keyed digits (ITU-T Q.24: ≥ 40 ms tone + pause; humans ~0.3 s)
    sms_submit: Span  # AT+CMGS → +CMGS: <mr>; assignment: 1–3 s
    sms_report: Span  # submit → status report
    sms_expiry: Span  # temporary-failure report → validity-expired report
    reregistration: Span  # slot switch: +CREG: 2 → +CREG: 1
    reboot: Span  # AT+CFUN=1,1 → the modem answers again
    ring_period: float  # RING repeats (27.007 §6.2 leaves it to the network; ~4 s is usual)
    tts_start: Span  # AT+CTTS/AT+QTTS OK → the first word (the engine synthesises ahead)
    speech_chars_per_second: float  # how fast the TTS voice speaks (math.inf: at once)

    def speech_seconds(self, rng: random.Random, text: str) -> float:
        """How long a TTS engine takes to say ``text``."""
        return self.draw(rng, self.tts_start) + len(text) / self.speech_chars_per_second

    def draw(self, rng: random.Random, span: Span) -> float:
        low, high = span
        return low if high <= low else rng.uniform(low, high)


_ZERO: Final[Span] = (0.0, 0.0)

PROFILES: Final[dict[Timing, TimingProfile]] = {
    Timing.REALISTIC: TimingProfile(
        command_latency=(0.002, 0.008),
        call_setup=(1.0, 2.0),
        answer_human=(2.0, 6.0),
        answer_machine=(8.0, 12.0),
        answer_late=(15.0, 20.0),
        reject_after=(1.0, 3.0),
        no_answer_timer=(30.0, 30.0),
        hold_human=(60.0, 60.0),
        hold_machine=(30.0, 30.0),
        dtmf_gap=(0.3, 0.8),
        sms_submit=(1.0, 3.0),
        sms_report=(2.0, 6.0),
        sms_expiry=(20.0, 30.0),
        reregistration=(3.0, 6.0),
        reboot=(3.0, 5.0),
        ring_period=4.0,
        # Assumption, no vendor figure: synthesis of the first phrase takes a few hundred
        # ms, then the voice runs at ~150 words a minute (the usual rate of read-aloud and
        # synthetic speech), i.e. ~15 characters a second with a word of ~5 letters and
        # its space: 136 characters (the longest message) take ~9 s.
        tts_start=(0.2, 0.5),
        speech_chars_per_second=15.0,
    ),
    Timing.FAST: TimingProfile(
        command_latency=_ZERO,
        call_setup=_ZERO,
        answer_human=_ZERO,
        answer_machine=_ZERO,
        answer_late=_ZERO,
        reject_after=_ZERO,
        no_answer_timer=_ZERO,
        hold_human=(60.0, 60.0),
        hold_machine=(30.0, 30.0),
        dtmf_gap=_ZERO,
        sms_submit=_ZERO,
        sms_report=_ZERO,
        sms_expiry=_ZERO,
        reregistration=_ZERO,
        reboot=_ZERO,
        ring_period=4.0,
        tts_start=_ZERO,
        speech_chars_per_second=math.inf,
    ),
}
