"""The call executor: dial, wait for the answer, do the job's ``on_answer``, hang up."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from common.clock import iso
from common.contract import Outcome
from modem_drivers.at import AtError, TimeoutClass
from modem_drivers.audio import AudioFault
from modem_drivers.call import Call, CallState
from modem_drivers.errors import ModemError
from modem_drivers.modem import Modem, PlaybackEnd
from modem_drivers.q850 import cause_name

from .amd import answer_amd, message_pcm, prepare_voicebot
from .base import Context, Executed, Placement, result_base

logger = logging.getLogger("appliance.jobs")


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


async def _answer_amd(modem: Modem, call: Call, opts: dict[str, Any], talk_left: float) -> dict[str, Any]:
    """Live AMD and the decision's branch (appliance/jobs/amd.py); the modem's TTS is the
    fallback on a modem without an audio port."""
    return await answer_amd(modem, call, opts, talk_left, _answer_play)


#: What an answered call does (jobspec.ON_ANSWER); each returns its own result fields
#: (an ``outcome`` among them overrides the release's: the AMD's human or machine).
ANSWER_ACTIONS: Final[dict[str, Callable[[Modem, Call, dict[str, Any], float], Awaitable[dict[str, Any]]]]] = {
    "hangup": _answer_hangup,
    "hold": _answer_hold,
    "play": _answer_play,
    "amd": _answer_amd,
}


async def run_call(modem: Modem, job: dict[str, Any], p: Placement, defaults: dict[str, Any],
                   recordings: Any = None) -> dict[str, Any]:
    opts = {**defaults, **(job.get("call") or {})}
    max_ring = float(opts.get("max_ring_seconds", 30.0))
    max_talk = float(opts.get("max_talk_seconds", 60.0))
    action = ANSWER_ACTIONS[opts.get("on_answer", "hangup")]
    out = result_base(job, p)
    prompts: asyncio.Task[int] | None = None
    if opts.get("on_answer") == "amd" and modem.audio is not None:
        # the message's audio is ready before the dial: the answer never waits for espeak-ng
        opts["message_pcm"], opts["message_pcm_error"] = await message_pcm(opts)
        # a voicebot's prompts render (into the disk cache) while the call rings
        prompts = prepare_voicebot(opts)
    recorder = recordings if opts.get("record") else None  # appliance.recordings.Recordings
    if recorder is not None:
        opts["recording_tap"] = recorder.tap()  # attached to the audio port at the answer (amd.py)
    wall0, mono0 = time.time(), time.monotonic()
    try:
        call = await modem.dial(job["callee"])
    except AudioFault as exc:
        # The audio port is lost or its set-up refused before the dial: no call was placed,
        # so the callee's attempt is not spent (a channel failure: soon, on another SIM);
        # ``audio_lost`` has the bank check this channel's audio as after an audio_fault.
        return {**out, "outcome": Outcome.CHANNEL_ERROR.value, "cause": None, "error": f"audio port: {exc}",
                "audio_lost": True, "dialed_at": iso(wall0)}
    except (AtError, ModemError) as exc:
        return {**out, "outcome": Outcome.CHANNEL_ERROR.value, "cause": None, "error": str(exc), "dialed_at": iso(wall0)}
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
    if recorder is not None:
        answered["recording"] = await _recording(recorder, opts["recording_tap"], modem, state)
    elif opts.get("record"):
        answered["recording"] = {"id": None, "reason": "this appliance keeps no recordings (no store for them)"}
    if prompts is not None and not prompts.done():
        prompts.cancel()  # the thread finishes its prompt; nothing waits for it
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


async def _recording(recorder: Any, tap: Any, modem: Modem, state: CallState) -> dict[str, Any]:
    """The result's ``recording``: the file made of what the tap heard, or why there is none."""
    if tap.frames:
        try:
            return dict(await recorder.save(tap))
        except (OSError, ValueError) as exc:
            return {"id": None, "reason": f"the recording could not be written: {exc}"}
    if state is not CallState.ACTIVE:
        why = "the call was not answered"
    elif modem.audio is None:
        why = "no audio port on this modem: nothing to record"
    else:
        why = 'nothing was heard on the audio port (recording needs on_answer "amd")'
    return {"id": None, "reason": why}


async def execute_call(ctx: Context, modem: Modem, job: dict[str, Any], p: Placement) -> Executed:
    """A ``call`` job: the [calls] defaults, overridden by the job's own ``call``."""
    return await run_call(modem, job, p, ctx.call_defaults, ctx.recordings), None
