"""Voice calls on a modem: dial, answer, hang up, DTMF, text-to-speech, and following the call.

``dial`` returns at once with a ``Call``; ``answer`` returns the incoming call it answered
(ACTIVE, or already released when the caller gave up first), followed to its release the
same way; the dialect's call-progress URCs (or, on a modem
without auto-report, paced ``AT+CLCC`` polls) drive it to its release. A release whose
cause is not in the report is completed here: ``+CEER`` is asked (or the cause URC
awaited), with the final result's hint as fallback. Every way out of a dial or a hang-up
leaves the driver without a call the modem might still hold: when the modem did not
answer, the hang-up is owed and sent before its next command (``core._settle_owed_hangup``).
"""
from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import Final

from common.phone import mask

from ..at import AtError, CommandFailed, FinalKind, Urc
from ..call import Call, CallState
from ..deadlines import coarse_timeout
from ..dialects import CallUrc
from ..dialects import standard as std
from ..errors import CallBusy, ModemError, NotRegistered, PlaybackFailed, TtsUnsupported
from ..q850 import NO_ANSWER, NORMAL_CLEARING, UNSPECIFIED, USER_BUSY
from ..types import Playback, PlaybackEnd
from .core import ModemCore, logger

#: After ATD the modem normally reports the release at once; if it does not, the call is
#: closed locally after this long (our own release, cause 16).
HANGUP_GRACE: Final = 1.0
#: Where the release cause comes in its own URC (Huawei ^CEND, no +CEER), a bare
#: NO CARRIER — a URC, or ATD's final result when the network refused at once — may
#: come before it: wait this long for the cause before releasing without one.
CAUSE_URC_GRACE: Final = 1.0
#: Trailing release reports of a finished call arrive within milliseconds to a second
#: (emulated and real Huawei dongles: ^CEND, then NO CARRIER); a bare release final seen
#: this soon after the previous release, before the new call progressed, is stale.
STALE_RELEASE_WINDOW: Final = 2.0
RELEASE_FINAL_NAMES: Final = frozenset({"NO CARRIER", "BUSY", "NO ANSWER"})
#: Longest pause between AT+CLCC polls of a modem that stopped answering them: the port's
#: reopen backoff cap (at.port.RECONNECT_MAX_S), so a stuck modem costs a timeout and a
#: log line at most every 8 s, not every poll interval.
POLL_BACKOFF_MAX: Final = 8.0
#: The cause a final result implies when +CEER says nothing (Q.850: 17 user busy, 19 no
#: answer from user), as ``dialects.progress.RELEASE_FINALS``.
_FINAL_HINTS: Final = {FinalKind.BUSY: USER_BUSY, FinalKind.NO_ANSWER: NO_ANSWER}


def urc_value(text: str) -> str:
    """The value of a ``NAME: value`` URC (the whole text when it has no colon)."""
    return text.split(":", 1)[1].strip() if ":" in text else text.strip()


class Calls(ModemCore):
    """One call at a time (dialled, or an incoming one answered): follow, release, DTMF and
    TTS during it."""

    async def dial(self, number: str) -> Call:
        """Start a voice call. Returns at once; follow the ``Call`` for its progress."""
        if not re.fullmatch(r"\+?[0-9*#]{3,20}", number):
            raise ValueError(f"not a dialable number: {number!r} (digits, optional leading +)")
        self._require_sim()
        if self.call is not None and not self.call.released:
            raise CallBusy("a call is already up on this modem")
        call = Call(number, on_change=self._on_call_change)
        self.call = call
        self._release_hint = None
        handed_over = False
        answered = False  # the modem gave ATD a final result: it says whether a call is up
        try:
            try:
                await self._cmd(f"ATD{number};", timeout=self.dial_timeout)
            except (CommandFailed, ModemError) as exc:
                answered = True
                kind = exc.final.kind if isinstance(exc, CommandFailed) else None
                if kind is FinalKind.NO_DIALTONE:
                    raise NotRegistered("no dial tone: the modem is not registered on a network") from None
                if kind in (FinalKind.BUSY, FinalKind.NO_CARRIER, FinalKind.NO_ANSWER):
                    hint = _FINAL_HINTS.get(kind)
                    await self._finish_release(call, hint)
                    handed_over = True
                    return call
                raise
            logger.info("%s: dialing %s", self.name, mask(number))
            if self.call_progress_polled:
                self._spawn(self._poll_call(call), "call polling")
            handed_over = True
            return call
        finally:
            if not handed_over:
                # Every other way out (refused, timed out, cancelled, port lost, a bug):
                # no call of ours is up, and if the modem never answered ATD one may be.
                self._drop_call(call, owe_hangup=not answered,
                                why="refused" if answered else "ATD got no answer")

    async def answer(self, caller: str | None = None) -> Call:
        """Answer the incoming call ringing now (``ATA``, V.250 §6.3.5; a voice call answers
        ``OK`` once connected, 27.007 §6.6) and return it as the modem's ``Call``: ACTIVE,
        its audio set up like an outgoing call's once it connects, its release followed by
        the dialect's reports (``^CEND``, ``VOICE CALL: END``, ``NO CARRIER``) and ended by
        ``hangup``. ``caller`` is the number ``+CLIP`` gave (logs and the report).

        A caller who gave up before the answer (``NO CARRIER``) gives a released call.
        +CLCC/^DSCI reports of a mobile-terminated call are not read (the dialect's readers
        follow our dialled calls only), so a polled modem is not polled for it: its release
        comes as ``NO CARRIER``, and our hang-up ends it after ``HANGUP_GRACE``.
        Raises ``CallBusy`` when a call of ours is up, ``ModemError`` when the modem refused
        (no call was ringing); any other way out leaves the hang-up owed, as for ``dial``."""
        self._require_sim()
        if self.call is not None and not self.call.released:
            raise CallBusy("a call is already up on this modem")
        call = Call(caller or "", on_change=self._on_call_change, incoming=True)
        self.call = call
        self._release_hint = None
        handed_over = False
        answered = False  # the modem gave ATA a final result
        try:
            try:
                await self._cmd("ATA", timeout=self.dial_timeout)
            except (CommandFailed, ModemError) as exc:
                answered = True
                kind = exc.final.kind if isinstance(exc, CommandFailed) else None
                if kind in (FinalKind.NO_CARRIER, FinalKind.BUSY, FinalKind.NO_ANSWER):
                    call.release(NORMAL_CLEARING)  # the caller hung up while we answered
                    handed_over = True
                    return call
                raise
            answered = True
            call.advance(CallState.ACTIVE)  # a ^CONN/VOICE CALL: BEGIN after OK is a duplicate
            logger.info("%s: answered a call from %s", self.name, mask(caller or "a hidden number"))
            handed_over = True
            return call
        finally:
            if not handed_over:
                self._drop_call(call, owe_hangup=not answered,
                                why="refused" if answered else "ATA got no answer")

    def _on_call_change(self, call: Call, event: object) -> None:
        if call.released:
            self._last_release = time.monotonic()
            self._end_playback(PlaybackEnd.CALL_RELEASED)

    def _drop_call(self, call: Call, *, owe_hangup: bool, why: str) -> None:
        """End ``call`` here, whatever the modem does: released (a channel error unless
        it was answered), no longer the modem's call, and — when the modem may still hold
        it — a hang-up owed, sent before the modem's next command."""
        call.channel_failed()
        if self.call is call:
            self.call = None
        if owe_hangup:
            self._hangup_owed = True
            logger.warning("%s: call to %s ended here (%s); hang-up owed to the modem", self.name,
                           mask(call.number), why)

    async def hangup(self) -> None:
        """Hang up the current call. Afterwards the call is released: by the modem's report,
        after ``HANGUP_GRACE`` as our release (cause 16), or — when the modem does not
        answer the hang-up (stuck, port lost) or the wait is cancelled — here, as a channel
        error with the hang-up owed to the modem (sent before its next command)."""
        call = self.call
        # released before our hang-up (the far end hung up first): not a local release
        released_before = call is not None and call.released
        answered = False
        released_by_modem = False
        failure: str = "cancelled"
        self._hangup_owed = False  # this hang-up is the one owed; set again if unanswered
        try:
            try:
                await self._cmd(self.dialect.hangup)
            except (CommandFailed, ModemError):
                pass  # the modem answered; its release report (or the grace) follows
            answered = True
            if call is not None and not call.released:
                with contextlib.suppress(TimeoutError):
                    await call.wait_released(HANGUP_GRACE)
            # the modem's report of our hang-up may come before its OK (emulated Huawei
            # sends ^CEND first): released since the command started is ours all the same
            released_by_modem = call is not None and call.released and not released_before
        except AtError as exc:
            failure = str(exc)
        finally:
            if not answered:
                if call is not None:
                    self._drop_call(call, owe_hangup=False, why=failure)
                self._hangup_owed = True
                logger.warning("%s: hang-up got no answer (%s); call ended here, hang-up owed",
                               self.name, failure)
            elif call is not None and (released_by_modem or not call.released):
                call.hung_up(NORMAL_CLEARING)

    async def send_dtmf(self, digits: str) -> None:
        if self.call is None or self.call.state is not CallState.ACTIVE:
            raise ModemError("DTMF needs an answered call")
        for digit in digits:
            if digit.upper() not in "0123456789*#ABCD":
                raise ValueError(f"not a DTMF digit: {digit!r}")
            await self._cmd(self.dialect.dtmf_send.format(digit=digit.upper(), call=1))

    async def play_tts(self, text: str, *, timeout: float) -> Playback:
        """Speak ``text`` to the far end of the answered call with the dialect's TTS command,
        and wait until the modem says it finished, the call ends, or ``timeout`` seconds
        pass (then the playback is stopped). Raises ``TtsUnsupported`` when the modem has
        no TTS, ``PlaybackFailed`` without an answered call or when the modem refuses."""
        tts = self.dialect.tts
        if tts is None:
            raise TtsUnsupported(f"{self.dialect.name} modems have no text-to-speech command: the message cannot be played")
        call = self.call
        if call is None or call.state is not CallState.ACTIVE or call.releasing:
            raise PlaybackFailed("a message can only be played during an answered call")
        if self._tts_waiter is not None:
            raise PlaybackFailed("a message is already playing on this modem")
        try:
            line = tts.command_for(text)
        except ValueError as exc:
            raise PlaybackFailed(str(exc)) from None
        # The end URC may follow OK at once: listen before writing (docs/architecture.md, Style 6).
        waiter: asyncio.Future[PlaybackEnd] = asyncio.get_running_loop().create_future()
        self._tts_waiter = waiter
        started = time.monotonic()
        try:
            try:
                await self._cmd(line)
            except (CommandFailed, ModemError) as exc:
                raise PlaybackFailed(f"the modem refused to play the message: {exc}") from exc
            try:
                async with coarse_timeout(timeout):
                    end = await waiter
            except TimeoutError:
                end = PlaybackEnd.TIMED_OUT
                await self._try(tts.stop)
        finally:
            self._tts_waiter = None
        seconds = round(time.monotonic() - started, 3)
        logger.info("%s: message played to %s: %s after %.1f s", self.name, mask(call.number), end.value, seconds)
        return Playback(end, seconds)

    def _end_playback(self, end: PlaybackEnd) -> None:
        waiter = self._tts_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(end)

    async def _poll_call(self, call: Call) -> None:
        """Generic modems without call auto-report: paced AT+CLCC while the call is up; a
        modem that stops answering is asked less and less often (``POLL_BACKOFF_MAX``)."""
        interval = self.dialect.poll_interval
        seen_call = False
        failures = 0
        while not call.released:
            try:
                states = await self._read(std.CALLS)
            except (AtError, ModemError):
                failures += 1
                with contextlib.suppress(TimeoutError):
                    await call.wait_released(min(interval * 2 ** failures, POLL_BACKOFF_MAX))
                continue
            failures = 0
            if states:
                seen_call = True
                call.advance(states[0][0])
            elif seen_call or call.state is not CallState.DIALING:
                await self._finish_release(call, self._release_hint)
                return
            if call.released:
                return
            try:
                await call.wait_released(interval)
            except TimeoutError:
                pass

    async def _finish_release(self, call: Call, hint: int | None) -> None:
        """Release without a cause in the URC: ask +CEER (or, where the cause has its own
        URC, wait for it), fall back to the hint."""
        if call.released:
            return
        cause = None
        try:
            if self.dialect.ceer is None:
                with contextlib.suppress(TimeoutError):
                    await call.wait_released(CAUSE_URC_GRACE)
            else:
                cause = await self._try_read(self.dialect.ceer)
        except AtError as exc:  # no answer to +CEER: the release stands without its cause
            logger.debug("%s: no release cause: %s", self.name, exc)
        finally:
            # released on every way out (a cancelled or failed +CEER too), so the modem
            # never keeps a call that ended
            if not call.released:
                if cause is None or (cause in (NORMAL_CLEARING, UNSPECIFIED) and hint is not None):
                    cause = hint if hint is not None else cause
                call.release(cause)

    def _on_call_urc(self, cu: CallUrc, text: str) -> None:
        call = self.call
        parsed = cu.parse(text)
        if parsed is None:
            return
        state, cause = parsed
        if call is None or call.released:
            return
        if (
            state is CallState.RELEASED
            and cu.prefix in RELEASE_FINAL_NAMES
            and not self.call_progress_polled  # polled modems have nothing else to go by
            and call.state is CallState.DIALING
            and time.monotonic() - self._last_release < STALE_RELEASE_WINDOW
        ):
            # A bare NO CARRIER/BUSY trailing the previous call's own release report
            # (Huawei sends ^CEND, then NO CARRIER) must not end the call just dialed.
            logger.debug("%s: stale %s ignored", self.name, cu.prefix)
            return
        if state is CallState.RELEASED and not cu.cause_is_final:
            if cause is not None:
                self._release_hint = cause
            if call.release_reported():
                self._end_playback(PlaybackEnd.CALL_RELEASED)
                hint = cause if cause is not None else self._release_hint
                self._spawn(self._finish_release(call, hint), "call release")
            return
        call.advance(state, cause)

    def _urc_tts(self, urc: Urc) -> None:
        tts = self.dialect.tts
        if tts is None or urc.name != tts.end_urc or urc_value(urc.text) != tts.end_value:
            return
        call = self.call
        # A release already reported (its cause still being asked) cut the message short.
        cut = call is not None and (call.released or call.releasing)
        self._end_playback(PlaybackEnd.CALL_RELEASED if cut else PlaybackEnd.FINISHED)
