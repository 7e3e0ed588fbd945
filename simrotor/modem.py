"""``simrotor modem …``: the modem tools of ``modem_drivers.cli``, with ``dial --amd``.

The modem library knows nothing of answering machines (the AMD is the appliance's, a floor
above it), so the command root assembles the group: every command of
``modem_drivers.cli.modem`` as it is, and a ``dial`` that — given ``--amd`` and the modem's
audio port — runs the appliance's own call executor (``appliance.jobs.call.run_call`` with
``on_answer: "amd"``), so an installer hears and sees exactly what a campaign's call does.
"""
from __future__ import annotations

import uuid
from typing import Any

import click

from common.clikit import EXIT_FAILURE, emit, fail, json_option
from modem_drivers import cli as base
from modem_drivers.modem import Modem


@click.group(help=base.modem.help)
def modem() -> None:
    pass


for _name, _command in base.modem.commands.items():
    if _name != "dial":
        modem.add_command(_command, _name)


async def dial_amd(modem: Modem, audio: str, to: str, seconds: float, ring: float, message: str | None,
                   lang: str) -> dict[str, Any]:
    """One call through the appliance's executor: live AMD, then hang up (or, with a
    message, play it to a person or after a machine's beep)."""
    from appliance.jobs.base import Placement
    from appliance.jobs.call import run_call

    await modem.require_registered()
    await modem.audio_port(audio)
    call: dict[str, Any] = {"max_ring_seconds": ring, "max_talk_seconds": seconds, "on_answer": "amd", "lang": lang}
    if message:
        call.update(message=message, on_human="play", on_machine="leave_message")
    else:
        call.update(on_human="hangup", on_machine="hangup")
    job = {"id": f"cli-{uuid.uuid4().hex[:8]}", "kind": "call", "callee": to, "call": call}
    sim = await modem.sim_info()
    result = await run_call(modem, job, Placement(channel_id=modem.name, sim_id=sim.iccid or "", msisdn=sim.msisdn or "",
                                                  attempt=1), {})
    keep = ("outcome", "cause", "cause_name", "amd", "beep_ms", "message_played", "message_seconds", "message_error",
            "talk_seconds", "answered_at", "error", "detail")
    return {"to": to, **{k: result[k] for k in keep if k in result}}


@modem.command()
@base.port_argument
@click.option("--to", "to", required=True, help="Number to call, international form (+48…).")
@click.option("--seconds", type=float, default=5.0, show_default=True,
              help="Talk time after answer before hanging up (with --amd: the bound on AMD and message).")
@click.option("--ring", type=float, default=30.0, show_default=True, help="Ring time before giving up.")
@click.option("--amd", is_flag=True, help="Decide human or machine on the live audio and report the decision.")
@click.option("--audio", "audio", metavar="TTY", help="The modem's audio port (needed by --amd), e.g. /dev/ttyUSB1.")
@click.option("--message", help="With --amd: say this to a person, or after a machine's beep (espeak-ng).")
@click.option("--lang", type=click.Choice(["pl", "en"]), default="pl", show_default=True, help="Voice of --message.")
@base.pin_option
@json_option
def dial(port: str, to: str, seconds: float, ring: float, amd: bool, audio: str | None, message: str | None,
         lang: str, pin: str | None, as_json: bool) -> None:
    """Place a voice call, follow its progress, hang up; prints outcome and Q.850 cause.

    With --amd the live audio decides human or machine (the appliance's AMD, its rule and
    the time from the answer, any revision, a machine's beep).

    \b
    Examples:
      simrotor modem dial /dev/ttyUSB2 --to +48600000123 --seconds 3 --json
      simrotor modem dial /dev/ttyUSB2 --audio /dev/ttyUSB1 --to +48600000123 --amd --seconds 20 --json
    """
    if not amd:
        if audio or message:
            fail("--audio and --message go with --amd", code=base.EXIT_USAGE, as_json=as_json)
        emit(base.run_command(as_json, lambda: base.dial_call(port, pin, to, seconds, ring)), as_json)
        return
    if not audio:
        fail("--amd listens on the modem's audio port: give it with --audio TTY (the emulator's state file names "
             "each modem's audio_port)", code=base.EXIT_USAGE, as_json=as_json)
    result = base.run_command(as_json, lambda: base.with_modem(dial_amd)(port, pin, audio, to, seconds, ring, message, lang))
    emit(result, as_json)
    if result.get("outcome") in ("audio_fault", "channel_error"):
        raise SystemExit(EXIT_FAILURE)
