"""The modem's audio port: open and close it, and send the dialect's audio set-up step at
its moment in each call — before the dial or the answer (Quectel) or when the call
connects (Huawei, SIM7600), for dialled and answered calls alike — then judge the call's
voice path within 500 ms of the answer.

Nothing here runs for a modem without an audio port: ``dial``, ``answer``, the call-change
hook and ``close`` pass straight through to the calls and lifecycle parts (this part sits before
them in ``Modem``'s bases and wraps them with cooperative ``super()`` calls, so neither
part knows of audio, and a modem without a port keeps today's path and its TTS).
"""
from __future__ import annotations

import asyncio

from ..audio import (
    AudioFault,
    AudioFaultReason,
    AudioHealth,
    AudioPort,
    PortUnavailable,
)
from ..call import Call, CallEvent, CallState
from ..dialects import AudioMoment, AudioSetup
from ..errors import ModemError, Unsupported
from .core import ModemCore, logger


class CallEndedBeforeAudio(ModemError):
    """The call ended before its audio path was judged (the callee hung up at once)."""


class Audio(ModemCore):
    """The audio port of one modem and its set-up step in each call."""

    _audio: AudioPort | None = None
    #: The verdict on the current call's audio path: the port when live, else the error.
    _audio_verdict: asyncio.Future[AudioPort] | None = None

    @property
    def audio(self) -> AudioPort | None:
        """The open audio port, or None (none configured: the modem's TTS is the fallback)."""
        return self._audio

    def audio_setup(self) -> AudioSetup | None:
        """The dialect's audio row when this model has the port (its +CGMM fits the row)."""
        setup = self.dialect.audio
        model = self.identity.model if self.identity is not None else ""
        return setup if setup is not None and setup.fits(model) else None

    async def audio_port(self, path: str) -> AudioPort:
        """Open the audio port at ``path`` (the same one again if it is open). Raises
        ``Unsupported`` for a modem without one (generic, SIM800, M35), ``PortUnavailable``
        when the tty cannot be opened."""
        if self.audio_setup() is None:
            model = self.identity.model if self.identity is not None else "unidentified"
            raise Unsupported(f"{self.dialect.name} modem {model} has no audio port (dialect row)")
        port = self._audio
        if port is not None and not port.closed and port.url == path:
            return port
        if port is not None and port.closed:
            await port.close()  # lost: its tty is free, and it stays configured if the open fails
        else:
            await self.close_audio()
        new = await AudioPort.open(path, name=f"{self.name} audio")
        self._audio = new
        logger.info("%s: audio port on %s", self.name, path)
        return new

    async def close_audio(self) -> None:
        port, self._audio = self._audio, None
        if port is not None:
            await port.close()

    async def audio_ready(self) -> AudioPort:
        """After the answer: the audio port once the call's voice path is live (set-up step
        sent, a live frame read). Raises ``AudioFault`` (the call ends ``audio_fault``):
        set-up refused, no frames or only zero frames within 500 ms, port lost;
        ``CallEndedBeforeAudio`` when the call ended first; ``ModemError`` without an
        answered call or an audio port."""
        if self._audio is None:
            raise Unsupported("no audio port is configured on this modem")
        verdict = self._audio_verdict
        if verdict is None:
            raise ModemError("the call's audio is judged once the call is answered")
        return await asyncio.shield(verdict)

    # -- the call path, wrapped ------------------------------------------------------------
    async def dial(self, number: str) -> Call:
        """The calls part's dial, after the audio port's checks when one is configured: a
        lost port is reopened at its path (``AudioFault`` when it is not back), and a
        before-dial set-up step is sent (``AudioFault`` when refused: no call is placed,
        so no one answers a silent line)."""
        await self._prepare_audio("no call placed")
        return await super().dial(number)  # type: ignore[misc]  # the calls part's dial

    async def answer(self, caller: str | None = None) -> Call:
        """The calls part's answer, after the same checks as ``dial`` (the before-call
        set-up step, Quectel's ``AT+QPCMV``, is due before ``ATA`` too). A caller is
        answered even when they fail — he must not be left ringing: the call's audio
        verdict then says the port is not live (``audio_ready`` raises ``AudioFault``) and
        the answerer falls back to the modem's TTS."""
        try:
            await self._prepare_audio("answered without it")
        except AudioFault as exc:
            logger.warning("%s: %s", self.name, exc)
        return await super().answer(caller)  # type: ignore[misc]  # the calls part's answer

    async def _prepare_audio(self, otherwise: str) -> None:
        """Before a call: reopen a lost audio port at its path and send a before-call set-up
        step; ``AudioFault`` (its detail ending ``otherwise``) when either fails."""
        port = self._audio
        if port is None:
            return
        self._audio_verdict = None
        if port.closed:  # lost (USB re-enumerated): its stable path may be back
            try:
                await self.audio_port(port.url)
            except PortUnavailable as exc:
                raise AudioFault(AudioFaultReason.PORT_LOST, f"{exc}; {otherwise}") from exc
        setup = self.audio_setup()
        if (setup is not None and setup.moment is AudioMoment.BEFORE_DIAL
                and not await self._run(setup.step, optional=True)):
            raise AudioFault(AudioFaultReason.SETUP_REFUSED, f"{setup.step.command} refused; {otherwise}")

    def _on_call_change(self, call: Call, event: object) -> None:
        super()._on_call_change(call, event)  # type: ignore[misc]  # the calls part's hook
        port = self._audio
        if port is None or not isinstance(event, CallEvent):
            return
        if event.state is CallState.ACTIVE:
            health = port.begin_call(asyncio.get_running_loop().time())
            verdict: asyncio.Future[AudioPort] = asyncio.get_running_loop().create_future()
            verdict.add_done_callback(_retrieved)
            self._audio_verdict = verdict
            self._spawn(self._judge_audio(call, port, health, verdict), "audio set-up")
        elif event.state is CallState.RELEASED:
            port.end_call()

    async def _judge_audio(self, call: Call, port: AudioPort, health: AudioHealth,
                           verdict: asyncio.Future[AudioPort]) -> None:
        try:
            setup = self.audio_setup()
            if (setup is not None and setup.moment is AudioMoment.AFTER_CONNECT
                    and not await self._run(setup.step, optional=True)):
                raise AudioFault(AudioFaultReason.SETUP_REFUSED, setup.step.command)
            await port.wait_healthy(health)
            if call.released:
                raise CallEndedBeforeAudio("the call ended before its audio was live")
            if not verdict.done():
                verdict.set_result(port)
        except AudioFault as exc:
            logger.warning("%s: %s", self.name, exc)
            if not verdict.done():
                verdict.set_exception(exc)
        except CallEndedBeforeAudio as exc:  # the callee hung up at once: routine, not an error
            logger.info("%s: %s", self.name, exc)
            if not verdict.done():
                verdict.set_exception(exc)
        except BaseException as exc:
            if not verdict.done():
                verdict.set_exception(exc if isinstance(exc, Exception) else CallEndedBeforeAudio(str(exc) or "cancelled"))
            raise

    async def close(self) -> None:
        await self.close_audio()
        await super().close()  # type: ignore[misc]  # the lifecycle part's close


def _retrieved(fut: asyncio.Future[AudioPort]) -> None:
    """Nobody may ask for a verdict (the call ended first): never 'exception never retrieved'."""
    if not fut.cancelled():
        fut.exception()
