"""``simrotor demo``: the whole system on an emulated modem bank.

It starts an emulated bank (16 modems with 2 SIMs each, in its own process), a
controller and an appliance linked to it, creates an API key, enrolls the appliance,
and plays the CRM: a campaign (HLR check, a call, an SMS when the call fails) over a
few hundred numbers of the emulator's plan (every behaviour: people, voicemail, busy,
no answer, rejecting, switched off, unassigned). It prints progress and the addresses of
the CRM API, its reference page and the technician page. Without ``--until-done`` it
keeps running after the campaign so you can look around; Ctrl-C stops everything.
"""
from __future__ import annotations

import asyncio
import json
import secrets
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import click

from controller.rules import DEFAULT_HOURS
from common.clikit import emit, install_event_loop_policy, json_option, raise_nofile_limit

#: The campaign the demo runs, on the product's defaults: contact rules, the appliance's
#: lock rules and quarantine, the operator hints the controller derives from its prefixes.
#: Only the per-SIM pacing is quicker than the defaults (``DEMO_LIMITS``) so that a few
#: hundred debtors finish in a minute rather than an afternoon.
STRATEGY = [
    {"kind": "hlr", "method": "sms_ping"},
    {"kind": "call", "attempts": 1, "ring_seconds": 20},
    {"kind": "sms", "text": "Dzień dobry {name}, prosimy o kontakt w sprawie {case_ref}: {amount} {currency}."},
]
#: Per-SIM pacing of the demo: 60 calls an hour, no rest between calls (defaults: 30 an
#: hour, 10 s start-to-start, 5-20 s after each call: a working day's rhythm).
DEMO_LIMITS = {"calls_per_hour": 60, "min_pause_seconds": 0.0, "pause_after_call": [0.0, 1.0]}
#: The debtors' zone (the sample numbers are Polish).
DEBTOR_ZONE = "Europe/Warsaw"
#: The technician account the demo creates for its page (its password is printed).
DEMO_TECHNICIAN = "demo"
#: The controller's overview page user the demo creates (its password is printed too).
DEMO_USER = "demo"
BEHAVIOURS = {0: "answers", 1: "voicemail", 2: "busy", 3: "no answer", 4: "rejects", 5: "switched off",
              6: "unassigned", 7: "answers late", 8: "answers, keys DTMF", 9: "random"}


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free port")


def inside_calling_hours(now: float) -> bool:
    """Whether ``now`` is inside the default calling hours in the debtors' zone."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    start, end = DEFAULT_HOURS
    return start <= datetime.fromtimestamp(now, ZoneInfo(DEBTOR_ZONE)).time() < end


def sample_contacts(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        behaviour, operator = i % 10, (i // 10) % 4
        out.append({"external_id": f"D-{i:05d}", "phones": [f"+4860{operator}{behaviour}{i:05d}"],
                    "name": f"Dłużnik {i}", "case_ref": f"KOM/{2026}/{i:05d}", "amount": f"{150 + i * 7 % 900}.00",
                    "currency": "PLN", "due_date": "2026-12-31", "language": "pl"})
    return out


async def run_demo(state: dict[str, Any], workdir: Path, *, contacts: int, until_done: bool, quiet: bool,
                   api_port: int, page_port: int) -> dict[str, Any]:
    import aiohttp

    from appliance.config import parse_config as parse_appliance
    from appliance.runtime import Appliance, plan_prefixes
    from appliance.technician import technician_accounts
    from controller.config import parse_config as parse_controller
    from controller.overview import BASE as OVERVIEW
    from controller.overview import overview_accounts
    from controller.server import Controller, create_enroll_token, create_key

    say = (lambda *a: None) if quiet else (lambda *a: click.echo(" ".join(str(x) for x in a)))
    started = time.monotonic()
    ccfg = parse_controller({
        "controller": {"listen": f"127.0.0.1:{api_port}", "store": str(workdir / "controller.db")},
        "dispatch": {"interval_seconds": 0.2},
        "webhooks": {"allow_private": True},  # the CRM of examples/crm-client-node listens on loopback too
        "operator_prefixes": {k: v for k, v in plan_prefixes().items() if k.startswith("+4860")},
    }, source="demo")
    controller = Controller(ccfg)
    await controller.start()
    key = create_key(controller.store, "demo-crm", time.time())["key"]
    token = create_enroll_token(controller.store, 600, time.time())["token"]
    (workdir / "bank.json").write_text(json.dumps(state))
    acfg = parse_appliance({
        "emulator_state": str(workdir / "bank.json"),
        "appliance": {"id": "demo-box", "store": str(workdir / "appliance.db"), "listen": f"127.0.0.1:{page_port}",
                      "token": "demo-token", "timezone": "Europe/Warsaw"},
        "limits": DEMO_LIMITS,
        "sms": {"report_timeout_seconds": 20.0, "ping_timeout_seconds": 20.0, "collect_interval_seconds": 5.0},
        "link": {"url": controller.url.replace("http", "ws") + "/v1/link", "credential_file": str(workdir / "credential"),
                 "heartbeat_seconds": 2.0},
    }, source="demo")
    headers = {"Authorization": f"Bearer {key}"}
    appliance: Appliance | None = None
    try:
        async with aiohttp.ClientSession() as s:
            async with s.post(controller.url + "/v1/enroll", json={"token": token, "appliance_id": "demo-box"}) as r:
                (workdir / "credential").write_text((await r.json())["credential"])
            appliance = Appliance(acfg, seed=1)
            await appliance.start()
            # The page needs a technician's sign-in; on a real box: simrotor appliance user add NAME
            password = secrets.token_urlsafe(9)
            technician_accounts(appliance.store.conn).add(DEMO_TECHNICIAN, password)
            # and the controller's overview page its own user: simrotor controller user add NAME
            overview_password = secrets.token_urlsafe(9)
            overview_accounts(controller.store).add(DEMO_USER, overview_password)
            say(f"controller   {controller.url}   (CRM API under /v1, reference page {controller.url}/docs)")
            say(f"technician   {appliance.address}/   (the appliance's page: modems, SIMs, results; "
                f"sign in as {DEMO_TECHNICIAN}, password {password})")
            say(f"overview     {controller.url}{OVERVIEW}/   (the controller's page: appliances, campaigns' progress "
                f"and ETA; sign in as {DEMO_USER}, password {overview_password})")
            say(f"API key      {key}")
            say(f"bank         {len(state['modems'])} modems, "
                f"{sum(len(m['sims']) for m in state['modems'])} SIMs; work directory {workdir}")
            campaign: dict[str, Any] = {"id": "demo", "name": "Demo campaign", "strategy": STRATEGY}
            if not inside_calling_hours(time.time()):
                # Outside the hours nothing may be dialled before 08:00: a real campaign
                # waits (its refusals say so). The demo opens the hours, and says it.
                campaign["rules"] = {"hours": ["00:00", "23:59"]}
                say(f"note         it is outside the default calling hours ({DEFAULT_HOURS[0]:%H:%M}-{DEFAULT_HOURS[1]:%H:%M} "
                    f"{DEBTOR_ZONE}): this campaign is allowed the whole day so the demo can run now")
            async with s.post(controller.url + "/v1/campaigns", headers=headers, json=campaign) as r:
                assert r.status == 201, await r.text()
            people = sample_contacts(contacts)
            async with s.post(controller.url + "/v1/campaigns/demo/contacts", headers=headers, json=people) as r:
                imported = await r.json()
            say(f"campaign     'demo': {imported['created']} contacts imported "
                f"(numbers of the emulator's plan: {', '.join(BEHAVIOURS.values())})")
            # created as a draft, so nothing was dialled while the contacts came in: start it now
            async with s.post(controller.url + "/v1/campaigns/demo/start", headers=headers) as r:
                assert r.status == 200, await r.text()
            say("campaign     'demo' started")
            last = ""
            while True:
                async with s.get(controller.url + "/v1/campaigns/demo", headers=headers) as r:
                    counts = (await r.json())["contacts"]
                done = counts["done"] == counts["total"]
                busy = sum(1 for ch in appliance.bank.channels.values() if ch.state.value == "busy")
                waits = appliance.scheduler.waiting_counts()
                line = (f"[{time.monotonic() - started:6.1f} s] contacts done {counts['done']}/{counts['total']}, "
                        f"in flight {counts['in_flight']}, channels busy {busy}/{len(appliance.bank.channels)}"
                        + (", waiting: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(waits.items()))
                           if waits else ""))
                if line != last:
                    say(line)
                    last = line
                if done:
                    break
                await asyncio.sleep(1.0)
            results: list[dict[str, Any]] = []
            after = 0
            while True:
                async with s.get(controller.url + f"/v1/results?after={after}&limit=1000&campaign_id=demo", headers=headers) as r:
                    page = await r.json()
                if not page["items"]:
                    break
                results += page["items"]
                after = page["next"]
            finals = [x for x in results if x.get("final") is not False]
            outcomes = Counter(f"{x['kind']}:{x['outcome']}" for x in finals)
            summary = {
                "demo": "campaign",
                "seconds": round(time.monotonic() - started, 1),
                "contacts": counts["total"],
                "results": len(finals),
                "outcomes": dict(sorted(outcomes.items())),
                "controller": controller.url,
                "technician_page": appliance.address + "/",
                "technician": {"name": DEMO_TECHNICIAN, "password": password},
                "overview_page": controller.url + OVERVIEW + "/",
                "overview_user": {"name": DEMO_USER, "password": overview_password},
                "workdir": str(workdir),
            }
            say("campaign complete: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
            if not until_done:
                say("still running — open the pages above; Ctrl-C to stop")
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.add_signal_handler(sig, stop.set)
                await stop.wait()
            return summary
    finally:
        if appliance is not None:
            await appliance.stop()
        await controller.stop()


@click.command()
@click.option("--contacts", type=int, default=300, show_default=True, help="Size of the sample campaign.")
@click.option("--modems", type=int, default=16, show_default=True)
@click.option("--sims-per-modem", type=int, default=2, show_default=True)
@click.option("--timing", type=click.Choice(["realistic", "fast"]), default="fast", show_default=True,
              help="Emulated network timing: none (fast) or real call set-up and SMS delays.")
@click.option("--until-done", is_flag=True, help="Exit with a summary when the campaign completes.")
@click.option("--api-port", type=int, default=8480, show_default=True, help="Controller port (another is taken if busy).")
@click.option("--page-port", type=int, default=8470, show_default=True, help="Appliance page port (another if busy).")
@click.option("--seed", type=int, default=1, show_default=True)
@json_option
def demo(contacts: int, modems: int, sims_per_modem: int, timing: str, until_done: bool, api_port: int,
         page_port: int, seed: int, as_json: bool) -> None:
    """Run the whole system on an emulated bank: a controller, an appliance, 16 modems
    with 2 SIMs each, and a sample campaign of a few hundred debtors, with progress and
    the addresses of the API and the technician page.

    \b
    Examples:
      simrotor demo                          # runs until Ctrl-C, so you can look around
      simrotor demo --until-done --json      # exits with a summary when the campaign is done
      simrotor demo --timing realistic       # real call set-up times: slower, more lifelike
    """
    from bench._emulated import emulator_process

    raise_nofile_limit()
    quiet = as_json
    if not quiet:
        click.echo(f"simrotor demo: emulated bank of {modems} modems × {sims_per_modem} SIMs ({timing} timing) …")
    with tempfile.TemporaryDirectory(prefix="simrotor-demo-") as tmp, \
            emulator_process(modems, timing=timing, sims_per_modem=sims_per_modem, seed=seed) as state:
        install_event_loop_policy()
        try:
            summary = asyncio.run(run_demo(state, Path(tmp), contacts=contacts, until_done=until_done, quiet=quiet,
                                           api_port=free_port(api_port), page_port=free_port(page_port)))
        except KeyboardInterrupt:
            sys.exit(130)
    if as_json:
        emit(summary, True)
