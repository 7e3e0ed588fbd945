"""``simrotor modem …``: the installer's modem tools. Each command parses its options,
calls one ``Modem`` method, and turns library errors into a sentence and an exit code
(``provisioning.clikit``)."""
from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import click

from provisioning.clikit import EXIT_FAILURE, EXIT_UNAVAILABLE, emit, fail, json_option, run_async

from .at import AtError, AtTimeout, CommandFailed, PortClosed, PortUnavailable
from .call import CallState
from .errors import ModemError, NotRegistered, SimBlocked
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


def _run(as_json: bool, main: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return run_async(main)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - every library error becomes a sentence
        message, code = _explain(exc)
        fail(message, code=code, as_json=as_json)


def _with_modem(func: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(func)
    async def wrapper(port: str, pin: str | None, *args: Any, **kwargs: Any) -> Any:
        modem = await Modem.open(port, pin=pin, reconnect=False)
        try:
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
    """


@_with_modem
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
    result = _run(as_json, lambda: probe_modem(port, pin))
    emit(result, as_json)
    if result["sim"].pin_state is not PinState.READY:
        fail(f"SIM not ready: {result['sim'].pin_state.value}" + (" (give --pin)" if result["sim"].pin_state is PinState.SIM_PIN else ""), as_json=False)


@_with_modem
async def raw_at(modem: Modem, command: str, timeout: float) -> dict[str, Any]:
    r = await modem.port.command(command, timeout=timeout)
    return {"command": command, "lines": list(r.lines), "final": r.final.text}


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
    result = _run(as_json, lambda: raw_at(port, pin, command, timeout))
    if as_json:
        emit(result, True)
    else:
        for line in result["lines"]:
            click.echo(line)
        click.echo(result["final"])


@_with_modem
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
    result = _run(as_json, lambda: send_sms(port, pin, to, text, report, wait))
    emit(result, as_json)
    if report and result.get("delivery") != "delivered":
        raise SystemExit(EXIT_FAILURE)


@_with_modem
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
    result = _run(as_json, lambda: dial_call(port, pin, to, seconds, ring))
    emit(result, as_json)


@_with_modem
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
    result = _run(as_json, lambda: run_ussd(port, pin, code, timeout))
    emit(result, as_json)
