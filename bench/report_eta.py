"""``simrotor bench report-eta``: how close a campaign report's ETA comes to when the
campaign really ends (issue 16: "within 20 %"), on an emulated bank in realistic timing.

An emulator process, a controller and an appliance in this process; one campaign of a
single call step (one try, ``--ring`` seconds) over contacts that answer, are busy or do
not answer in turn (the emulator's number plan). Its report is read every ``--every``
seconds until every contact is done; each sample's ``eta.at`` is compared with the real
end. Figures:

* ``took_seconds`` — from the start to the last contact done;
* ``max_error_after`` — the largest |predicted end − real end| / real duration over the
  samples taken after ``--settle`` of the run (the ramp-up, when fewer contacts ended
  than channels run, is reckoned from capacity and is named apart);
* ``samples`` — each report's time, contacts done, basis and predicted end (seconds from
  the start).
"""
from __future__ import annotations

import asyncio
import json
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from common.clikit import emit, json_option, run_async

from ._emulated import emulator_process

#: The emulator's number plan: the 7th character of +4860<op><b>… picks the behaviour
#: (0 answers, 2 busy, 3 no answer: docs/emulator.md).
BEHAVIOURS = "0233"


async def _run(state: dict[str, Any], workdir: Path, contacts: int, ring: float, every: float, settle: float) -> dict[str, Any]:
    import aiohttp

    from appliance.config import parse_config as parse_appliance
    from appliance.runtime import Appliance, plan_prefixes
    from controller.config import parse_config as parse_controller
    from controller.server import Controller, create_enroll_token, create_key

    controller = Controller(parse_controller({
        "controller": {"listen": "127.0.0.1:0", "store": str(workdir / "controller.db")},
        "dispatch": {"interval_seconds": 0.1, "lease_seconds": 60.0},
        "operator_prefixes": {k: v for k, v in plan_prefixes().items() if k.startswith("+4860")},
    }, source="bench"))
    await controller.start()
    key = create_key(controller.store, "bench", time.time())["key"]
    token = create_enroll_token(controller.store, 600, time.time())["token"]
    (workdir / "bank.json").write_text(json.dumps(state))
    h = {"Authorization": f"Bearer {key}"}
    app: Any = None
    try:
        async with aiohttp.ClientSession() as s:
            async with s.post(controller.url + "/v1/enroll", json={"token": token, "appliance_id": "box-01"}) as r:
                (workdir / "credential").write_text((await r.json())["credential"])
            app = Appliance(parse_appliance({
                "emulator_state": str(workdir / "bank.json"),
                "appliance": {"id": "box-01", "store": str(workdir / "appliance.db"), "listen": "127.0.0.1:0", "token": "t"},
                "limits": {"calls_per_hour": 1000, "calls_per_day": 10000, "min_pause_seconds": 0.0,
                           "pause_after_call": [0.0, 0.0], "sms_per_hour": 1000},
                "retry": {"max_attempts": 1},
                "link": {"url": controller.url.replace("http", "ws") + "/v1/link",
                         "credential_file": str(workdir / "credential"), "heartbeat_seconds": 1.0},
            }, source="bench"), seed=3)
            await app.start()
            camp = {"id": "eta", "strategy": [{"kind": "call", "attempts": 1, "ring_seconds": ring}],
                    "rules": {"hours": ["00:00", "23:59"]}}
            async with s.post(controller.url + "/v1/campaigns", json=camp, headers=h) as r:
                created = await r.json()
                assert r.status == 201, created
            rows = ["external_id,phones"] + [f"E{n},+4860{n % 4}{BEHAVIOURS[n % 4]}{n:05d}" for n in range(contacts)]
            async with s.post(controller.url + "/v1/campaigns/eta/contacts", data=("\n".join(rows) + "\n").encode(),
                              headers={**h, "Content-Type": "text/csv"}) as r:
                assert r.status == 200, await r.text()
            if created["state"] == "draft":
                async with s.post(controller.url + "/v1/campaigns/eta/start", headers=h) as r:
                    assert r.status == 200, await r.text()
            t0 = time.time()
            samples = []
            while True:
                async with s.get(controller.url + "/v1/campaigns/eta/report", headers=h) as r:
                    rep = await r.json()
                done = rep["contacts"]["done"]
                at = rep["eta"]["at"]
                samples.append({"t": round(time.time() - t0, 1), "done": done, "basis": rep["eta"]["basis"],
                                "predicted_end": None if at is None else
                                round(datetime.fromisoformat(at).timestamp() - t0, 1)})
                if done == contacts:
                    break
                await asyncio.sleep(every)
            took = time.time() - t0
    finally:
        if app is not None:
            await app.stop()
        await controller.stop()
    errors = [abs(x["predicted_end"] - took) / took for x in samples
              if x["predicted_end"] is not None and settle <= x["t"] < took]
    return {"contacts": contacts, "modems": len(state["modems"]), "ring_seconds": ring, "took_seconds": round(took, 1),
            "settle_seconds": settle, "max_error_after": round(max(errors), 4) if errors else None,
            "target": 0.2, "samples": samples}


@click.command("report-eta")
@click.option("--contacts", type=click.IntRange(1, 100_000), default=240, show_default=True, help="Contacts in the campaign.")
@click.option("--modems", type=click.IntRange(1, 256), default=8, show_default=True, help="Emulated modems of one SIM.")
@click.option("--ring", type=click.FloatRange(15, 60), default=20.0, show_default=True, help="The call step's ring seconds.")
@click.option("--every", type=click.FloatRange(0.5, 600), default=5.0, show_default=True, help="Seconds between reports.")
@click.option("--settle", type=click.FloatRange(0, 3600), default=25.0, show_default=True,
              help="Samples before this many seconds are not counted in max_error_after (the ramp-up).")
@json_option
def report_eta(contacts: int, modems: int, ring: float, every: float, settle: float, as_json: bool) -> None:
    """A campaign report's ETA against the real end, emulated bank in realistic timing.

    \b
    Example:
      simrotor bench report-eta --contacts 240 --modems 8 --json
    """
    with emulator_process(modems, timing="realistic", seed=5) as state, \
            tempfile.TemporaryDirectory(prefix="simrotor-eta-") as tmp:
        out = run_async(_run(state, Path(tmp), contacts, ring, every, settle))
    emit(out if as_json else {k: v for k, v in out.items() if k != "samples"}, as_json)
