"""``simrotor modem …``: the installer's modem tools. Each command parses its options,
calls one ``Modem`` method, and turns library errors into a sentence and an exit code
(``common.clikit``)."""
from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import click

from common.clikit import (
    EXIT_FAILURE,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    emit,
    fail,
    json_option,
    run_async,
)

from .at import AtError, AtTimeout, CommandFailed, PortClosed, PortUnavailable
from .call import CallState
from .errors import ModemError, NotRegistered, PinError, SimBlocked
from .modem import Modem
from .types import PinState, StatusReportReceived

port_argument = click.argument("port", metavar="PORT")
pin_option = click.option("--pin", help="SIM PIN, entered when the SIM asks for it.")


def _explain(exc: BaseException) -> tuple[str, int]:
    if isinstance(exc, PortUnavailable):
        return str(exc), EXIT_UNAVAILABLE
    if isinstance(exc, PortClosed):
        return f"the modem went away: {exc}", EXIT_UNAVAILABLE
    if isinstance(exc, AtTimeout):
        return f"the modem did not answer: {exc}", EXIT_UNAVAILABLE
    if isinstance(exc, SimBlocked):
        return f"SIM blocked: {exc}", EXIT_FAILURE
    if isinstance(exc, NotRegistered):
        return f"not registered: {exc}", EXIT_FAILURE
    if isinstance(exc, ModemError):
        return str(exc), EXIT_FAILURE
    if isinstance(exc, CommandFailed):
        return f"the modem answered {exc.final.text!r} to {exc.command!r}", EXIT_FAILURE
    if isinstance(exc, AtError):
        return str(exc), EXIT_FAILURE
    if isinstance(exc, ValueError):
        return str(exc), EXIT_FAILURE
    if isinstance(exc, TimeoutError):
        return "timed out", EXIT_FAILURE
    raise exc


def run_command(as_json: bool, main: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return run_async(main)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - every library error becomes a sentence
        message, code = _explain(exc)
        fail(message, code=code, as_json=as_json)


def with_modem(func: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(func)
    async def wrapper(port: str, pin: str | None, *args: Any, **kwargs: Any) -> Any:
        modem = await Modem.open(port, pin=pin, reconnect=False)
        try:
            if pin is not None and modem.pin_problem is not None:
                raise modem.pin_problem  # a wrong --pin, or one not sent (one try left): say so
            return await func(modem, *args, **kwargs)
        finally:
            await modem.close()

    return wrapper


@click.group()
def modem() -> None:
    """Talk to one modem on a serial port (a tty path or any pyserial URL).

    \b
    Examples:
      simrotor modem probe /dev/ttyUSB2
      simrotor modem at /dev/ttyUSB2 'AT+CSQ'
      simrotor modem sms /dev/ttyUSB2 --to +48601000123 --text 'Dzień dobry' --report
      simrotor modem dial /dev/ttyUSB2 --to +48600000123 --seconds 5
      simrotor modem ussd /dev/ttyUSB2 '*100#'
      simrotor modem pin /dev/ttyUSB2
      simrotor modem unlock /dev/ttyUSB2 --puk 12345678 --new-pin 1234
    """


@with_modem
async def probe_modem(modem: Modem) -> dict[str, Any]:
    sim = await modem.sim_info()
    out: dict[str, Any] = {"port": modem.port.url, "identity": modem.identity, "sim": sim}
    if sim.pin_state is PinState.READY:
        out["signal"] = await modem.signal()
        out["registration"] = await modem.registration_status()
    out["call_progress"] = "polled" if modem.call_progress_polled else "reported"
    out["sms_indications"] = getattr(modem, "cnmi", None)
    return out


@modem.command()
@port_argument
@pin_option
@json_option
def probe(port: str, pin: str | None, as_json: bool) -> None:
    """Identify the modem and its SIM: vendor, model, IMEI, dialect, ICCID, IMSI,
    operator, own number, signal and registration.

    \b
    Example:
      simrotor modem probe /dev/ttyUSB2 --pin 1234 --json
    """
    result = run_command(as_json, lambda: probe_modem(port, pin))
    emit(result, as_json)
    if result["sim"].pin_state is not PinState.READY:
        fail(f"SIM not ready: {result['sim'].pin_state.value}" + (" (give --pin)" if result["sim"].pin_state is PinState.SIM_PIN else ""), as_json=False)


@with_modem
async def raw_at(modem: Modem, command: str, timeout: float) -> dict[str, Any]:
    """The reply lines and final result, and the unsolicited lines that came meanwhile: a
    ``+X:``/``^X:`` answer whose prefix is not the command's own (``AT^SYSINFO`` is
    answered ``^SYSINFO:``, but ``AT+CPIN?`` on some modems ``+CPIN:`` and ``^SIMST:``)
    is a URC to the parser, and a person at the prompt wants to see it anyway."""
    urcs: list[str] = []
    unsubscribe = modem.port.subscribe(lambda u: urcs.extend(x for x in (u.text, u.pdu) if x))
    try:
        r = await modem.port.command(command, timeout=timeout)
    finally:
        unsubscribe()
    return {"command": command, "lines": list(r.lines), "unsolicited": urcs, "final": r.final.text}


@modem.command(name="at")
@port_argument
@click.argument("command")
@pin_option
@click.option("--timeout", type=float, default=10.0, show_default=True, help="Seconds to wait for the final result.")
@json_option
def at_command(port: str, command: str, pin: str | None, timeout: float, as_json: bool) -> None:
    """Send one AT command and print the modem's answer.

    \b
    Example:
      simrotor modem at /dev/ttyUSB2 'AT+CSQ'
    """
    if not command.upper().startswith("AT"):
        fail(f"not an AT command: {command!r} (it must start with AT)", code=2, as_json=as_json)
    result = run_command(as_json, lambda: raw_at(port, pin, command, timeout))
    if as_json:
        emit(result, True)
    else:
        for line in result["lines"]:
            click.echo(line)
        for line in result["unsolicited"]:
            click.echo(f"{line}    (unsolicited)")
        click.echo(result["final"])


@with_modem
async def send_sms(modem: Modem, to: str, text: str, report: bool, wait: float) -> dict[str, Any]:
    await modem.require_registered()
    reports: dict[int, Any] = {}
    done = asyncio.Event()
    refs: set[int] = set()

    def on_event(ev: Any) -> None:
        if isinstance(ev, StatusReportReceived) and ev.report.reference in refs:
            reports[ev.report.reference] = ev.report
            if all(r in reports and reports[r].state.value != "pending" for r in refs):
                done.set()

    unsub = modem.subscribe(on_event)
    started = time.monotonic()
    try:
        sub = await modem.send_sms(to, text, report=report)
        refs.update(sub.references)
        out: dict[str, Any] = {"to": to, "parts": sub.parts, "references": list(sub.references)}
        if report:
            try:
                async with asyncio.timeout(wait):
                    await done.wait()
            except TimeoutError:
                pass
            states = [reports[r].state.value if r in reports else "no_report" for r in sub.references]
            out["delivery"] = (
                "delivered" if all(s == "delivered" for s in states) else
                "failed" if any(s == "failed" for s in states) else
                "pending" if any(s == "pending" for s in states) else "no_report"
            )
            out["reports"] = [reports.get(r) for r in sub.references]
        out["seconds"] = round(time.monotonic() - started, 3)
        return out
    finally:
        unsub()


@modem.command()
@port_argument
@click.option("--to", "to", required=True, help="Recipient, international form (+48…).")
@click.option("--text", required=True, help="Message text: any length, any alphabet.")
@click.option("--report", is_flag=True, help="Request a delivery report and wait for it.")
@click.option("--wait", type=float, default=60.0, show_default=True, help="Seconds to wait for the report.")
@pin_option
@json_option
def sms(port: str, to: str, text: str, report: bool, wait: float, pin: str | None, as_json: bool) -> None:
    """Send an SMS in PDU mode (GSM-7, or UCS2 when needed; long texts go in parts).

    \b
    Example:
      simrotor modem sms /dev/ttyUSB2 --to +48601000123 --text 'Zażółć gęślą jaźń' --report
    """
    result = run_command(as_json, lambda: send_sms(port, pin, to, text, report, wait))
    emit(result, as_json)
    if report and result.get("delivery") != "delivered":
        raise SystemExit(EXIT_FAILURE)


@with_modem
async def dial_call(modem: Modem, to: str, seconds: float, ring: float) -> dict[str, Any]:
    await modem.require_registered()
    call = await modem.dial(to)
    try:
        state = await call.wait_for(CallState.ACTIVE, timeout=ring)
    except TimeoutError:
        state = call.state
    if state is CallState.ACTIVE:
        try:
            await call.wait_released(seconds)
        except TimeoutError:
            pass
    if not call.released:
        await modem.hangup()
    report = call.report()
    return {"to": to, "outcome": report.outcome, "cause": report.cause, "report": report}


@modem.command()
@port_argument
@click.option("--to", "to", required=True, help="Number to call, international form (+48…).")
@click.option("--seconds", type=float, default=5.0, show_default=True, help="Talk time after answer before hanging up.")
@click.option("--ring", type=float, default=30.0, show_default=True, help="Ring time before giving up.")
@pin_option
@json_option
def dial(port: str, to: str, seconds: float, ring: float, pin: str | None, as_json: bool) -> None:
    """Place a voice call, follow its progress, hang up; prints outcome and Q.850 cause.

    \b
    Example:
      simrotor modem dial /dev/ttyUSB2 --to +48600000123 --seconds 3 --json
    """
    result = run_command(as_json, lambda: dial_call(port, pin, to, seconds, ring))
    emit(result, as_json)


@with_modem
async def run_ussd(modem: Modem, code: str, timeout: float) -> dict[str, Any]:
    await modem.require_registered()
    reply = await modem.ussd(code, timeout=timeout)
    return {"code": code, "status": reply.status, "text": reply.text}


@modem.command()
@port_argument
@click.argument("code")
@click.option("--timeout", type=float, default=30.0, show_default=True)
@pin_option
@json_option
def ussd(port: str, code: str, timeout: float, pin: str | None, as_json: bool) -> None:
    """Send a USSD code (e.g. a balance check) and print the network's answer.

    \b
    Example:
      simrotor modem ussd /dev/ttyUSB2 '*100#'
    """
    result = run_command(as_json, lambda: run_ussd(port, pin, code, timeout))
    emit(result, as_json)


# -- PIN --------------------------------------------------------------------------------------
last_try_option = click.option(
    "--last-try", is_flag=True,
    help="Send even when the SIM has one try left (a wrong one locks the SIM, or blocks it for good after a PUK).")


def _check_codes(as_json: bool, **codes: str | None) -> None:
    """PINs are 4 to 8 digits, a PUK 8 (3GPP TS 51.011 §9.3): refused here, before they
    could cost the SIM a try."""
    for option, code in codes.items():
        if code is None:
            continue
        shortest = 8 if option == "puk" else 4
        if not (code.isdigit() and shortest <= len(code) <= 8):
            expected = "8 digits" if shortest == 8 else "4 to 8 digits"
            fail(f"--{option.replace('_', '-')} must be {expected}", code=EXIT_USAGE, as_json=as_json)


async def _pin_view(modem: Modem) -> dict[str, Any]:
    """The SIM's state and its tries left (reading them costs no try)."""
    state = await modem.sim_status()
    return {"state": state.value, **(await modem.pin_tries()).public()}


def _pin_outcome(as_json: bool, result: dict[str, Any]) -> None:
    """Print a PIN command's result; a refused or wrong code exits 1 with its sentence."""
    error = result.pop("error")
    if error is None:
        emit(result, as_json)
        return
    if not as_json:
        emit(result, False)
    fail(error, code=EXIT_FAILURE, as_json=as_json, **result)


@with_modem
async def unlock_sim(modem: Modem, pin: str | None, puk: str | None, new_pin: str | None,
                     last_try: bool) -> dict[str, Any]:
    before = await _pin_view(modem)
    error = None
    try:
        await modem.unlock(new_pin if puk is not None else pin, puk=puk, last_try=last_try)  # type: ignore[arg-type]
    except PinError as exc:
        error = str(exc)
    return {"port": modem.port.url, "before": before, "after": await _pin_view(modem), "error": error}


@modem.command()
@port_argument
@click.option("--pin", help="The SIM's PIN, when it asks for its PIN.")
@click.option("--puk", help="The SIM's PUK (8 digits), when it asks for its PUK; needs --new-pin.")
@click.option("--new-pin", help="The PIN the SIM gets with --puk (4 to 8 digits).")
@last_try_option
@json_option
def unlock(port: str, pin: str | None, puk: str | None, new_pin: str | None, last_try: bool, as_json: bool) -> None:
    """Unlock the SIM: its PIN, or its PUK and a new PIN. Shows the tries left before and
    after; with one try left nothing is sent unless --last-try is given. The appliance
    stops a channel whose SIM rejected its configured PIN and lets go of the port, so
    this runs while the appliance keeps running; the appliance forgets the rejected PIN
    once it finds the SIM unlocked (fix [[modem]] pin in its config too).

    \b
    Examples:
      simrotor modem unlock /dev/ttyUSB2 --pin 1234
      simrotor modem unlock /dev/ttyUSB2 --puk 12345678 --new-pin 1234 --json
    """
    if (pin is None) == (puk is None) or (puk is None) != (new_pin is None):
        fail("give either --pin P, or --puk P with --new-pin N", code=EXIT_USAGE, as_json=as_json)
    _check_codes(as_json, pin=pin, puk=puk, new_pin=new_pin)
    result = run_command(as_json, lambda: unlock_sim(port, None, pin, puk, new_pin, last_try))
    _pin_outcome(as_json, result)


@with_modem
async def sim_pin(modem: Modem, change: bool, old: str | None, new: str | None, last_try: bool) -> dict[str, Any]:
    before = await _pin_view(modem)
    if not change:
        return {"port": modem.port.url, **before, "error": None}
    error = None
    try:
        await modem.change_pin(old, new, last_try=last_try)  # type: ignore[arg-type]
    except PinError as exc:
        error = str(exc)
    return {"port": modem.port.url, "before": before, "after": await _pin_view(modem),
            "changed": error is None, "error": error}


@modem.command(name="pin")
@port_argument
@click.option("--change", is_flag=True, help="Change the PIN (AT+CPWD): needs --old and --new.")
@click.option("--old", help="The SIM's PIN now (with --change).")
@click.option("--new", help="The new PIN, 4 to 8 digits (with --change).")
@last_try_option
@json_option
def pin_command(port: str, change: bool, old: str | None, new: str | None, last_try: bool, as_json: bool) -> None:
    """Show the SIM's PIN state and its PIN and PUK tries left; with --change, change the
    PIN (the SIM must be unlocked; a wrong --old costs a try, so the last one is refused
    unless --last-try).

    \b
    Examples:
      simrotor modem pin /dev/ttyUSB2 --json
      simrotor modem pin /dev/ttyUSB2 --change --old 1234 --new 4321
    """
    if change and (old is None or new is None):
        fail("--change needs --old and --new", code=EXIT_USAGE, as_json=as_json)
    if not change and (old is not None or new is not None):
        fail("--old and --new go with --change", code=EXIT_USAGE, as_json=as_json)
    _check_codes(as_json, old=old, new=new)
    result = run_command(as_json, lambda: sim_pin(port, None, change, old, new, last_try))
    _pin_outcome(as_json, result)
