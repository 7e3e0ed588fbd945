"""The simulated GSM network behind the virtual modems.

It knows the subscribers (the number plan in ``_plan.py`` and the virtual SIMs), plays
each callee's script (answer, busy, no answer, reject, absent, unassigned, DTMF), runs
the SMS centre (reassembly of concatenated parts, status reports after delays), answers
USSD balance requests and originates inbound calls and SMS towards the SIMs. It logs every
call (``calls``) and every submitted message (``sms``) as ground truth for tests.
"""
from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Final, Protocol

from ._callee import AudioLine, FarEnd
from ._calls import Call, CallRecord, CallState, Outcome
from ._pdu import Submit, build_deliver, build_status_report
from ._plan import (
    OPERATORS,
    Q850,
    Behaviour,
    ReportStatus,
    international,
    plan_behaviour,
    plan_operator_info,
)
from ._sim import VirtualSim
from ._timing import TimingProfile
from ._voices import CalleeKind, CalleeSound, NotReady, SoundLibrary, listens


class VirtualModem(Protocol):
    """The modem side of the network, as the network uses it: which SIMs it holds, its
    call, and the reports it turns into URCs. Declared here, on the user's side, so the
    network never imports the modem (``_modem.VirtualModem`` fits it)."""

    id: str
    sims: list[VirtualSim]
    call: Call | None
    audio: AudioLine | None  # the audio port, on models that have one

    def reachable_via(self, sim: VirtualSim) -> bool: ...

    def call_progress(self, call: Call, state: CallState) -> None: ...

    def call_ended(self, call: Call, *, remote: bool) -> None: ...

    def ring(self, call: Call) -> None: ...

    def dtmf_received(self, digit: str) -> None: ...

    def sms_arrived(self, sim: VirtualSim, pdu: bytes, tpdu_len: int) -> None: ...

    def status_report(self, sim: VirtualSim, pdu: bytes, tpdu_len: int) -> None: ...

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CalleeScript:
    """How a callee of one behaviour handles a call (docs/dialects.md cause table)."""

    alerting: bool  # does the phone ring before the end/answer?
    answer: str | None  # TimingProfile field: delay before answering; None = never answers
    ring_limit: str | None  # TimingProfile field: how long it rings before the release
    cause: int  # Q.850 cause of the remote release
    outcome: Outcome
    hold: str | None = None  # TimingProfile field: how long he stays after answering
    dtmf: bool = False  # keys digits to the voicebot after answering


SCRIPTS: Final[dict[Behaviour, CalleeScript]] = {
    Behaviour.HUMAN: CalleeScript(True, "answer_human", None, Q850.NORMAL_CLEARING, Outcome.ANSWERED_HUMAN, "hold_human"),
    Behaviour.MACHINE: CalleeScript(True, "answer_machine", None, Q850.NORMAL_CLEARING, Outcome.ANSWERED_MACHINE, "hold_machine"),
    Behaviour.BUSY: CalleeScript(False, None, None, Q850.USER_BUSY, Outcome.BUSY),
    Behaviour.NO_ANSWER: CalleeScript(True, None, "no_answer_timer", Q850.NO_ANSWER, Outcome.NO_ANSWER),
    Behaviour.REJECTS: CalleeScript(True, None, "reject_after", Q850.CALL_REJECTED, Outcome.REJECTED),
    Behaviour.ABSENT: CalleeScript(False, None, None, Q850.SUBSCRIBER_ABSENT, Outcome.UNREACHABLE),
    Behaviour.UNASSIGNED: CalleeScript(False, None, None, Q850.UNASSIGNED_NUMBER, Outcome.INVALID_NUMBER),
    Behaviour.HUMAN_LATE: CalleeScript(True, "answer_late", None, Q850.NORMAL_CLEARING, Outcome.ANSWERED_HUMAN, "hold_human"),
    Behaviour.HUMAN_DTMF: CalleeScript(True, "answer_human", None, Q850.NORMAL_CLEARING, Outcome.ANSWERED_HUMAN, "hold_human", dtmf=True),
}
#: SIM-side refusals: no alerting, immediate release (docs/dialects.md).
BLOCKED_SCRIPT: Final = CalleeScript(False, None, None, Q850.FACILITY_NOT_SUBSCRIBED, Outcome.NETWORK_ERROR)
NO_CREDIT_SCRIPT: Final = CalleeScript(False, None, None, Q850.NORMAL_UNSPECIFIED, Outcome.NETWORK_ERROR)

#: Behaviour 9 draws from this mix (weights loosely follow collections dialler statistics:
#: most numbers ring a human or voicemail, a minority are dead).
RANDOM_MIX: Final[tuple[tuple[Behaviour, int], ...]] = (
    (Behaviour.HUMAN, 35), (Behaviour.MACHINE, 15), (Behaviour.BUSY, 8),
    (Behaviour.NO_ANSWER, 15), (Behaviour.REJECTS, 7), (Behaviour.ABSENT, 10),
    (Behaviour.UNASSIGNED, 5), (Behaviour.HUMAN_LATE, 5),
)

#: SMS status-report sequence per behaviour: (TimingProfile delay field, TP-ST).
_DELIVERED: Final = (("sms_report", ReportStatus.DELIVERED),)
SMS_REPORTS: Final[dict[Behaviour, tuple[tuple[str, ReportStatus], ...]]] = {
    b: _DELIVERED for b in Behaviour if b not in (Behaviour.ABSENT, Behaviour.UNASSIGNED, Behaviour.RANDOM)
} | {
    Behaviour.ABSENT: (("sms_report", ReportStatus.TEMPORARY_TRYING), ("sms_expiry", ReportStatus.VALIDITY_EXPIRED)),
    Behaviour.UNASSIGNED: (("sms_report", ReportStatus.INCOMPATIBLE_DESTINATION),),
}


class SmsStatus(enum.Enum):
    SUBMITTED = "submitted"  # accepted by the SC, no report yet
    PENDING = "pending"  # temporary failure, SC still trying
    DELIVERED = "delivered"
    FAILED = "failed"  # permanent failure
    EXPIRED = "expired"  # validity period expired


_STATUS_OF: Final[dict[ReportStatus, SmsStatus]] = {
    ReportStatus.DELIVERED: SmsStatus.DELIVERED,
    ReportStatus.TEMPORARY_TRYING: SmsStatus.PENDING,
    ReportStatus.INCOMPATIBLE_DESTINATION: SmsStatus.FAILED,
    ReportStatus.VALIDITY_EXPIRED: SmsStatus.EXPIRED,
}


@dataclass(slots=True)
class SmsRecord:
    """One submitted message, reassembled from its parts."""

    sender: str
    to: str
    text: str
    parts: int
    status: SmsStatus = SmsStatus.SUBMITTED
    submitted: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    modem_id: str = ""
    references: list[int] = field(default_factory=list)  # TP-MR of each part
    direction: str = "out"
    part_texts: dict[int, str] = field(default_factory=dict, repr=False)
    part_status: dict[int, SmsStatus] = field(default_factory=dict, repr=False)

    def public(self) -> dict[str, object]:
        return {
            "sender": self.sender, "to": self.to, "text": self.text, "parts": self.parts,
            "status": self.status.value, "submitted": self.submitted.isoformat(),
            "modem_id": self.modem_id, "references": list(self.references), "direction": self.direction,
        }


class SmsRejected(Exception):
    """The SC refused a submission; ``cause`` is the RP cause (24.011 §8.2.5.4) for +CMS ERROR."""

    def __init__(self, cause: int) -> None:
        super().__init__(cause)
        self.cause = cause


RP_FACILITY_NOT_SUBSCRIBED: Final = 50  # 24.011 §8.2.5.4 (SIM blocked by the operator)
RP_TRANSFER_REJECTED: Final = 21  # 24.011 §8.2.5.4 (no credit)
BALANCE_USSD: Final = "*100#"
#: Calls whose far-end recording (``CallAudio.pcm``) is kept: the newest 256, enough for a
#: benchmark's 128 concurrent calls and the test that checks them afterwards.
KEEP_RECORDINGS: Final = 256


def balance_text(balance: float) -> str:
    """Answer to ``*100#``; contains CR LF inside, as real operators' answers do."""
    amount = f"{max(balance, 0):.2f}".replace(".", ",")
    return f"Saldo: {amount} PLN.\r\nKonto wazne do 31.12.2026"


def dtmf_answer(rng: random.Random) -> str:
    """What the plan's first behaviour-8 callee keys (V ≠ 9): 1 (promise to pay), a date
    DDMM, then # (the listening keypad person of ``_voices.KeyScript`` keys after prompts)."""
    return f"1{rng.randint(1, 28):02d}{rng.randint(1, 12):02d}#"


class Network:
    def __init__(self, profile: TimingProfile, seed: int, block_after_calls: int | None,
                 sounds: SoundLibrary | None = None) -> None:
        self.profile = profile
        self.sounds = sounds  # what callees play on audio ports; None: a quiet line
        self._recorded: deque[CallRecord] = deque()  # calls whose far end keeps its recording
        self.rng = random.Random(f"network:{seed}")
        self.block_after_calls = block_after_calls
        self.calls: list[CallRecord] = []
        self.sms: list[SmsRecord] = []
        self._subscribers: dict[str, tuple[VirtualModem, VirtualSim]] = {}
        self._assembling: dict[tuple[str, str, int], SmsRecord] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._concat_ref = 0

    # -- registry ---------------------------------------------------------------------------
    def attach(self, modem: VirtualModem) -> None:
        for sim in modem.sims:
            self._subscribers[sim.msisdn] = (modem, sim)

    def subscriber(self, msisdn: str) -> tuple[VirtualModem, VirtualSim] | None:
        return self._subscribers.get(international(msisdn))

    def _spawn(self, coro: object) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _delay(self, field_name: str | None) -> float:
        if field_name is None:
            return 0.0
        return self.profile.draw(self.rng, getattr(self.profile, field_name))

    def _resolve(self, number: str) -> Behaviour:
        behaviour = plan_behaviour(number)
        if behaviour is Behaviour.RANDOM:
            choices, weights = zip(*RANDOM_MIX)
            behaviour = self.rng.choices(choices, weights)[0]
        return behaviour

    # -- outgoing calls ---------------------------------------------------------------------
    def dial(self, modem: VirtualModem, sim: VirtualSim, number: str) -> Call:
        """Start an outgoing call; progress arrives at ``modem`` from a background task."""
        callee = international(number)
        if not sim.blocked and self.block_after_calls is not None and sim.calls_made >= self.block_after_calls:
            sim.blocked = True  # the operator's fraud rule trips
        behaviour = self._resolve(callee)
        if sim.blocked:
            script = BLOCKED_SCRIPT
        elif sim.balance <= 0:
            script = NO_CREDIT_SCRIPT
        else:
            script = SCRIPTS[behaviour]
            sim.calls_made += 1
        record = CallRecord(
            caller_msisdn=sim.msisdn, callee=callee, started=datetime.now(timezone.utc),
            modem_id=modem.id, slot=sim.slot, behaviour=plan_behaviour(callee).value,
        )
        self.calls.append(record)
        call = Call(number=callee, direction=0, record=record, state=CallState.DIALING)
        sound = self._prepare_sound(modem, callee, behaviour) if script.answer is not None else None
        call.task = self._spawn(self._outgoing(modem, call, script, sound, self._kind(callee, behaviour)))
        return call

    def _prepare_sound(self, modem: VirtualModem, callee: str, behaviour: Behaviour) -> asyncio.Future[CalleeSound] | None:
        """Start making what the callee will play (espeak-ng, in a worker thread) while
        the call is set up; only for modems with an audio port."""
        if modem.audio is None:
            return None
        loop = asyncio.get_running_loop()
        done: asyncio.Future[CalleeSound] = loop.create_future()
        if self.sounds is None:
            done.set_result(CalleeSound(self._kind(callee, behaviour), b"", source="none"))
            return done
        try:
            done.set_result(self.sounds.sound_for(callee, behaviour, blocking=False))  # cached: no thread
        except NotReady:
            return loop.run_in_executor(None, self.sounds.sound_for, callee, behaviour)
        return done

    def _connect_audio(self, line: AudioLine, call: Call, sound: asyncio.Future[CalleeSound] | CalleeSound,
                       kind: CalleeKind) -> FarEnd:
        """Start the far end on ``line``; only the last :data:`KEEP_RECORDINGS` calls keep
        what their far end heard (a soak run's thousands of calls would hold gigabytes)."""
        floor = None
        if isinstance(sound, asyncio.Future) and not sound.done() and self.sounds is not None:
            floor = self.sounds.line_floor_for(call.record.callee, kind)  # noise from the first frame
        far = line.connect(call, sound, kind, floor)
        self._recorded.append(call.record)
        if len(self._recorded) > KEEP_RECORDINGS:
            old = self._recorded.popleft().audio
            if old is not None:
                old.pcm = bytearray()
                old.pcm_dropped = True
        return far

    def _kind(self, callee: str, behaviour: Behaviour) -> CalleeKind:
        if self.sounds is not None:
            return self.sounds.kind_of(callee, behaviour)
        return CalleeKind.KEYPAD if behaviour is Behaviour.HUMAN_DTMF else CalleeKind.SILENCE

    async def _outgoing(self, modem: VirtualModem, call: Call, script: CalleeScript,
                        sound: asyncio.Future[CalleeSound] | None = None,
                        kind: CalleeKind = CalleeKind.SILENCE) -> None:
        # The modem's OK to ATD goes out first. One loop turn was not always enough: a
        # call released at once (FAST timing, invalid number) could put NO CARRIER
        # before the OK, and the host took it for ATD's final result.
        await call.dial_confirmed.wait()
        modem.call_progress(call, CallState.DIALING)
        if script in (BLOCKED_SCRIPT, NO_CREDIT_SCRIPT):
            self._release(modem, call, script.cause, script.outcome)
            return
        await asyncio.sleep(self._delay("call_setup"))
        if not script.alerting:
            self._release(modem, call, script.cause, script.outcome)
            return
        self._set(modem, call, CallState.ALERTING)
        if script.answer is None:
            await asyncio.sleep(self._delay(script.ring_limit))
            self._release(modem, call, script.cause, script.outcome)
            return
        await asyncio.sleep(self._delay(script.answer))
        call.record.answered, call.record.outcome = True, script.outcome
        self._set(modem, call, CallState.ACTIVE)
        if sound is not None and modem.audio is not None:
            far = self._connect_audio(modem.audio, call, sound, kind)  # a listening keypad person keys after prompts
            if script.dtmf and not listens(call.number):
                far.press_now(dtmf_answer(self.rng))  # in-band and the URC, from the answer on
        elif script.dtmf:
            for digit in dtmf_answer(self.rng):
                await asyncio.sleep(self._delay("dtmf_gap"))
                call.record.dtmf += digit
                modem.dtmf_received(digit)
        await asyncio.sleep(self._delay(script.hold))
        self._release(modem, call, script.cause, script.outcome)

    def _set(self, modem: VirtualModem, call: Call, state: CallState) -> None:
        call.advance(state)
        modem.call_progress(call, state)

    def _release(self, modem: VirtualModem, call: Call, cause: int, outcome: Outcome, *, remote: bool = True) -> None:
        if call.state is CallState.RELEASED:
            return
        call.record.cause = cause
        call.record.outcome = call.record.outcome or outcome
        call.record.duration = round(call.duration, 3)
        call.release(cause)
        modem.call_ended(call, remote=remote)

    def hangup(self, modem: VirtualModem, call: Call) -> None:
        """The host released the call (ATH / AT+CHUP)."""
        if call.task is not None and call.task is not asyncio.current_task():
            call.task.cancel()
        outcome = call.record.outcome if call.record.answered else Outcome.CANCELLED
        self._release(modem, call, Q850.NORMAL_CLEARING, outcome or Outcome.CANCELLED, remote=False)

    def callee_hangs_up(self, modem: VirtualModem, call: Call) -> None:
        """The callee ends an answered call now (e.g. in the middle of a message)."""
        if call.task is not None and call.task is not asyncio.current_task():
            call.task.cancel()
        self._release(modem, call, Q850.NORMAL_CLEARING, call.record.outcome or Outcome.ANSWERED_HUMAN)

    def drop(self, modem: VirtualModem, call: Call) -> None:
        """The modem vanished or rebooted under the call."""
        if call.task is not None:
            call.task.cancel()
        call.record.outcome = call.record.outcome if call.record.answered else Outcome.CHANNEL_ERROR
        self._release(modem, call, Q850.NORMAL_UNSPECIFIED, Outcome.CHANNEL_ERROR, remote=False)

    def answer(self, modem: VirtualModem, call: Call) -> None:
        """The host answered an incoming call (ATA)."""
        call.record.answered, call.record.outcome = True, Outcome.ANSWERED_HUMAN
        self._set(modem, call, CallState.ACTIVE)
        keys = call.caller_keys
        if modem.audio is not None:  # the caller listens, and keys one digit after each prompt
            caller = CalleeSound(CalleeKind.KEYPAD, b"", keys=tuple(keys), source="keys")
            self._connect_audio(modem.audio, call, caller, CalleeKind.KEYPAD)
        elif keys:
            self._spawn(self._caller_keys(modem, call, keys))

    async def _caller_keys(self, modem: VirtualModem, call: Call, keys: str) -> None:
        """A caller on a modem without an audio port keys his digits from the answer on
        (the dialect's DTMF URC only)."""
        for digit in keys:
            await asyncio.sleep(self._delay("dtmf_gap"))
            if call.state is not CallState.ACTIVE:
                return
            call.record.dtmf += digit
            modem.dtmf_received(digit)

    # -- incoming calls ---------------------------------------------------------------------
    def inbound_call(self, caller: str, to_msisdn: str, ring_seconds: float, keys: str = "") -> CallRecord:
        """A call towards a virtual SIM; once answered the caller keys ``keys``."""
        target = self.subscriber(to_msisdn)
        record = CallRecord(
            caller_msisdn=international(caller), callee=international(to_msisdn),
            started=datetime.now(timezone.utc), direction="in",
        )
        self.calls.append(record)
        if target is None:
            record.outcome, record.cause = Outcome.INVALID_NUMBER, Q850.UNASSIGNED_NUMBER
            return record
        modem, sim = target
        record.modem_id, record.slot = modem.id, sim.slot
        if not modem.reachable_via(sim):
            record.outcome, record.cause = Outcome.UNREACHABLE, Q850.SUBSCRIBER_ABSENT
            return record
        if modem.call is not None:
            record.outcome, record.cause = Outcome.BUSY, Q850.USER_BUSY
            return record
        call = Call(number=record.caller_msisdn, direction=1, record=record, state=CallState.INCOMING,
                    caller_keys=keys)
        modem.call = call
        call.task = self._spawn(self._incoming(modem, call, ring_seconds))
        return record

    async def _incoming(self, modem: VirtualModem, call: Call, ring_seconds: float) -> None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + ring_seconds
        modem.call_progress(call, CallState.INCOMING)
        while call.state is CallState.INCOMING:
            modem.ring(call)
            wait = min(self.profile.ring_period, give_up - loop.time())
            if wait <= 0:
                break
            try:
                async with asyncio.timeout(wait):
                    await call.answered_event.wait()
            except TimeoutError:
                continue
        if call.state is CallState.INCOMING:  # the caller gave up
            self._release(modem, call, Q850.NORMAL_CLEARING, Outcome.NO_ANSWER)
            return
        await asyncio.sleep(self._delay("hold_human"))
        self._release(modem, call, Q850.NORMAL_CLEARING, Outcome.ANSWERED_HUMAN)

    # -- SMS --------------------------------------------------------------------------------
    async def submit(self, modem: VirtualModem, sim: VirtualSim, part: Submit) -> int:
        """The SC accepts one SMS-SUBMIT; returns its TP-MR. Raises SmsRejected."""
        if sim.blocked:
            raise SmsRejected(RP_FACILITY_NOT_SUBSCRIBED)
        if sim.balance <= 0:
            raise SmsRejected(RP_TRANSFER_REJECTED)
        await asyncio.sleep(self._delay("sms_submit"))
        mr = sim.take_mr()
        to = international(part.to)
        record = self._assemble(modem, sim, part, to, mr)
        if part.status_report:
            behaviour = self._resolve(to)
            submitted = datetime.now(timezone.utc).replace(microsecond=0)
            self._spawn(self._reports(modem, sim, record, mr, to, behaviour, submitted))
        else:
            self._settle(record, mr, _STATUS_OF[SMS_REPORTS[self._resolve(to)][-1][1]])
        return mr

    def _assemble(self, modem: VirtualModem, sim: VirtualSim, part: Submit, to: str, mr: int) -> SmsRecord:
        if part.concat_ref is None:
            record = SmsRecord(sender=sim.msisdn, to=to, text=part.text, parts=1, modem_id=modem.id)
            self.sms.append(record)
        else:
            key = (sim.msisdn, to, part.concat_ref)
            record = self._assembling.get(key)  # type: ignore[assignment]
            if record is None:
                record = SmsRecord(sender=sim.msisdn, to=to, text="", parts=part.parts, modem_id=modem.id)
                self._assembling[key] = record
                self.sms.append(record)
            record.part_texts[part.part] = part.text
            record.text = "".join(record.part_texts[i] for i in sorted(record.part_texts))
            if len(record.part_texts) >= record.parts:
                del self._assembling[key]
        record.references.append(mr)
        record.part_status[mr] = SmsStatus.SUBMITTED
        return record

    def _settle(self, record: SmsRecord, mr: int, status: SmsStatus) -> None:
        record.part_status[mr] = status
        statuses = set(record.part_status.values())
        for candidate in (SmsStatus.FAILED, SmsStatus.EXPIRED, SmsStatus.PENDING, SmsStatus.SUBMITTED):
            if candidate in statuses:
                record.status = candidate
                return
        record.status = SmsStatus.DELIVERED if len(record.part_status) >= record.parts else SmsStatus.SUBMITTED

    async def _reports(self, modem: VirtualModem, sim: VirtualSim, record: SmsRecord, mr: int, to: str,
                       behaviour: Behaviour, submitted: datetime) -> None:
        smsc = sim.operator.smsc if sim.operator else OPERATORS[0].smsc
        for delay_field, status in SMS_REPORTS[behaviour]:
            await asyncio.sleep(self._delay(delay_field))
            self._settle(record, mr, _STATUS_OF[status])
            pdu, tpdu_len = build_status_report(smsc, mr, to, status, submitted)
            modem.status_report(sim, pdu, tpdu_len)

    def inbound_sms(self, sender: str, to_msisdn: str, text: str) -> SmsRecord:
        target = self.subscriber(to_msisdn)
        record = SmsRecord(sender=international(sender), to=international(to_msisdn), text=text, parts=0, direction="in")
        self.sms.append(record)
        if target is None:
            record.status = SmsStatus.FAILED
            return record
        modem, sim = target
        record.modem_id = modem.id
        op = plan_operator_info(sim.msisdn) or OPERATORS[0]
        self._concat_ref = (self._concat_ref + 1) % 256
        parts = build_deliver(op.smsc, record.sender, text, self._concat_ref)
        record.parts = len(parts)
        for pdu, tpdu_len in parts:
            modem.sms_arrived(sim, pdu, tpdu_len)
        record.status = SmsStatus.DELIVERED
        return record

    # -- USSD -------------------------------------------------------------------------------
    def ussd(self, sim: VirtualSim, request: str) -> str | None:
        """The network's answer to a USSD string; None = not supported (+CUSD: 4)."""
        if request.strip() == BALANCE_USSD:
            return balance_text(sim.balance)
        return None
