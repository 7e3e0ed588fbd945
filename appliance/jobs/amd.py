"""``on_answer: "amd"``: decide human or machine on the live audio, then run the job's
branch for that decision (issue 14, docs/appliance.md "Answer policies").

* machine — ``leave_message``: wait for the beep (or, when none comes within 10 s, the
  greeting's end) and play the message; ``hangup``. A fax or an operator's SIT always hangs
  up: nobody there would hear a message.
* human, unsure (and silence: bias to human, a quiet person may be listening) — ``play``
  the message at once (said within 1 s of the end of his greeting: the AMD's verdict comes
  0.2–0.5 s after it), run the named ``voicebot`` dialogue (appliance/voicebot/live.py,
  reading the port through ``WatchedPort``), or ``hangup``. While the message plays or the
  dialogue runs, the watch may revise "human" to "machine" (the greeting ran on): the
  message or dialogue stops and the machine branch runs.

The message is audio the appliance plays itself: ``message_wav`` or the text rendered by
``appliance.voicebot.tts`` (prepared before the dial, so the answer never waits for it).
A modem without an audio port falls back to the modem's TTS (``fallback``).
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, Final

from appliance.audio.events import AmdResult
from appliance.audio.wav import WavError, read_wav
from appliance.voicebot.live import run_dialogue
from appliance.voicebot.load import DialogueError, shipped
from appliance.voicebot.prepare import prepare_prompts
from appliance.voicebot.tts import Synthesiser, TtsError
from appliance.voicebot.variables import JobVariables, VariablesError
from common.contract import OnHuman, OnMachine, Outcome
from modem_drivers.audio import AudioFault
from modem_drivers.call import Call
from modem_drivers.modem import CallEndedBeforeAudio, Modem

from .live import BEEP_WAIT_S, Listener, Played, SharedDtmf, play, until

logger = logging.getLogger("appliance.jobs")

#: The machine verdicts after which no message is left (rule names of appliance/audio/amd.py).
_NO_MESSAGE_RULES: Final = frozenset({"sit"})
_HUMAN_SIDE: Final = frozenset({AmdResult.HUMAN, AmdResult.UNSURE, AmdResult.SILENCE})
#: The AMD has 5 s of analysis (AmdConfig.total_analysis_ms) plus a frame or two.
DECIDE_WAIT_S: Final = 6.0

Fallback = Callable[[Modem, Call, dict[str, Any], float], Awaitable[dict[str, Any]]]


async def message_pcm(opts: dict[str, Any]) -> tuple[bytes | None, str | None]:
    """The message as 8 kHz s16le PCM (``message_wav``, else ``message`` synthesised in
    ``lang``), or None and why. Rendering runs once per text (cached on disk), off the loop."""
    try:
        if wav := opts.get("message_wav"):
            return (await asyncio.to_thread(read_wav, wav)).samples.tobytes(), None
        if text := opts.get("message"):
            return await asyncio.to_thread(Synthesiser().pcm, text, opts.get("lang") or "pl"), None
    except (WavError, TtsError, OSError) as exc:
        return None, f"the message cannot be played: {exc}"
    return None, "no message to play: neither the job's call.message nor [calls] message / message_wav reached the call"


def _played(p: Played) -> dict[str, Any]:
    out: dict[str, Any] = {"message_played": p.whole, "message_seconds": p.seconds}
    if p.cut is not None:
        out["message_error"] = p.cut.value
    return out


async def answer_amd(modem: Modem, call: Call, opts: dict[str, Any], talk_left: float, fallback: Fallback) -> dict[str, Any]:
    if modem.audio is None:
        # No audio port: no live AMD; the modem's TTS says the message when a branch would.
        if opts.get("on_human", OnHuman.PLAY.value) == OnHuman.PLAY.value:
            return {**await fallback(modem, call, opts, talk_left), "detail": "no audio port: no live AMD, the modem's TTS spoke"}
        return {"detail": "no audio port: no live AMD"}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + talk_left
    try:
        port = await modem.audio_ready()
    except AudioFault as exc:
        return {"outcome": Outcome.AUDIO_FAULT.value, "error": str(exc)}
    except CallEndedBeforeAudio:
        return {}
    if (tap := opts.get("recording_tap")) is not None:  # call.record: the tap copies both ways (appliance/recordings)
        port = tap.attach(port)
    listener = Listener(port)
    readers = [asyncio.create_task(listener.run(), name=f"audio of {modem.name}")]

    async def voicebot() -> dict[str, Any] | None:
        """The dialogue, with the revision watch hearing every frame it reads; None when
        the watch revised "human" to "machine" first (the dialogue stopped, the listener
        reads again for the machine branch's beep)."""
        await _stop(readers[-1])
        dialogue = asyncio.ensure_future(_run_voicebot(modem, WatchedPort(port, listener), opts, deadline,
                                                       SharedDtmf(listener, urc_keys=bool(modem.dialect.dtmf_urcs))))
        revised = asyncio.ensure_future(listener.revised.wait())
        try:
            await asyncio.wait({dialogue, revised}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            revised.cancel()
        if dialogue.done():
            return dialogue.result()
        await _stop(dialogue)  # type: ignore[arg-type]
        readers.append(asyncio.create_task(listener.run(), name=f"audio of {modem.name}"))
        return None

    try:
        return await _decide_and_act(listener, port, call, opts, deadline, voicebot)
    finally:
        await _stop(readers[-1])


async def _stop(task: asyncio.Future[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


class WatchedPort:
    """The audio port as a voicebot dialogue reads it, each frame also fed to the call's
    ``Listener``: its watch may still revise a fast "human" while the dialogue runs (a
    greeting that runs on over the first prompt), as it does while a message plays."""

    def __init__(self, port: Any, listener: Listener) -> None:
        self.port = port
        self.listener = listener

    def pending_frames(self) -> int:
        return int(self.port.pending_frames())

    async def read_frame(self, timeout: float | None = None) -> bytes:
        frame: bytes = await self.port.read_frame(timeout)
        self.listener.feed(frame)
        return frame

    async def write_frame(self, frame: bytes) -> None:
        await self.port.write_frame(frame)


def prepare_voicebot(opts: dict[str, Any], synthesiser: Synthesiser | None = None) -> asyncio.Task[int] | None:
    """For ``on_human: "voicebot"``: start rendering the dialogue's prompts whose words the
    job fixes (appliance/voicebot/prepare.py) in a worker thread, to run while the call
    rings; None when there is no dialogue to prepare (its errors are the runner's to say)."""
    if opts.get("on_human") != OnHuman.VOICEBOT.value:
        return None
    try:
        dialogue = shipped(str(opts.get("dialogue")), opts.get("lang") or "pl")
        variables = job_variables(opts.get("voicebot") or {})
    except (DialogueError, VariablesError, KeyError, ValueError):
        return None

    async def prepare() -> int:
        try:
            return await prepare_prompts(dialogue, variables, synthesiser or Synthesiser())
        except (TtsError, OSError) as exc:  # the dialogue renders on demand and says so
            logger.warning("voicebot prompts not prepared: %s", exc)
            return 0

    return asyncio.create_task(prepare(), name="voicebot prompts")


def job_variables(raw: dict[str, Any]) -> JobVariables:
    """``call.voicebot`` as the contract checked it (JSON values) -> the dialogue's variables."""
    start = raw.get("window_start")
    return JobVariables(creditor=raw["creditor"], debtor_name=raw["debtor_name"], amount=Decimal(str(raw["amount"])),
                        currency=raw["currency"], due_date=dt.date.fromisoformat(str(raw["due_date"])),
                        window_start=dt.date.fromisoformat(str(start)) if start else dt.date.today(),
                        window_end=dt.date.fromisoformat(str(raw["window_end"])))


async def _run_voicebot(modem: Modem, port: Any, opts: dict[str, Any], deadline: float,
                        detector: SharedDtmf | None = None) -> dict[str, Any]:
    """The named dialogue on the live call, bounded by max_talk_seconds; its result, or why not."""
    loop = asyncio.get_running_loop()
    try:
        dialogue = shipped(str(opts.get("dialogue")), opts.get("lang") or "pl")
        variables = job_variables(opts.get("voicebot") or {})
    except (DialogueError, VariablesError, KeyError, ValueError) as exc:
        return {"error": f"the voicebot cannot run: {exc}"}
    try:
        async with asyncio.timeout(max(0.0, deadline - loop.time())):
            result = await run_dialogue(port, modem, dialogue, variables, detector=detector)  # type: ignore[arg-type]
    except TimeoutError:
        return {"error": "the dialogue was stopped at max_talk_seconds"}
    except (AudioFault, TtsError) as exc:
        return {"error": f"the dialogue stopped: {exc}"}
    return {"voicebot": result.to_dict()}


async def _decide_and_act(listener: Listener, port: Any, call: Call, opts: dict[str, Any], deadline: float,
                          voicebot: Callable[[], Awaitable[dict[str, Any] | None]]) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    decided = asyncio.ensure_future(listener.decided.wait())
    if not await until(call, decided, min(DECIDE_WAIT_S, max(0.0, deadline - loop.time()))):
        decided.cancel()
        if listener.error is not None:
            return {"outcome": Outcome.AUDIO_FAULT.value, "error": str(listener.error)}
        return {"detail": "the call ended before the AMD decided"}
    first = listener.first
    assert first is not None
    out: dict[str, Any] = {"amd": {"decision": first.result.value, "rule": first.rule, "decided_ms": first.decided_ms,
                                   "revised": False}}
    pcm: bytes | None = opts.get("message_pcm")
    why_not = opts.get("message_pcm_error")
    machine = first.result not in _HUMAN_SIDE
    if not machine:
        out["outcome"] = Outcome.ANSWERED_HUMAN.value
        if opts.get("on_human", OnHuman.PLAY.value) == OnHuman.PLAY.value:
            if pcm is None:
                out.update(message_played=False, message_seconds=0.0, message_error=why_not)
            else:
                stop = listener.revised
                played = await play(port, call, pcm, deadline, stop)
                out.update(_played(played))
        elif opts.get("on_human") == OnHuman.VOICEBOT.value:
            dialogue = await voicebot()
            if dialogue is not None:
                out.update(dialogue)
                return out
            # revised during the dialogue: the machine branch below
        # else hangup, which is now
        if listener.revision is not None:
            rev = listener.revision
            out["amd"].update(revised=True, revised_ms=rev.decided_ms, revised_rule=rev.rule)
            machine = True
    if machine:
        out["outcome"] = Outcome.ANSWERED_MACHINE.value
        rule = listener.revision.rule if listener.revision is not None else first.rule
        if (first.result is AmdResult.FAX or rule in _NO_MESSAGE_RULES
                or opts.get("on_machine", OnMachine.LEAVE_MESSAGE.value) != OnMachine.LEAVE_MESSAGE.value):
            out["beep_ms"] = listener.beep_ms
            return out
        if listener.beep_ms is None:
            beeped = asyncio.ensure_future(listener.beeped.wait())
            if not await until(call, beeped, min(BEEP_WAIT_S, max(0.0, deadline - loop.time()))):
                beeped.cancel()
                quiet = asyncio.ensure_future(listener.quiet())
                if not await until(call, quiet, max(0.0, deadline - loop.time())):
                    quiet.cancel()
        out["beep_ms"] = listener.beep_ms
        if pcm is None:
            out.update(message_played=False, message_seconds=0.0, message_error=why_not)
        else:
            out.update(_played(await play(port, call, pcm, deadline)))
    return out
