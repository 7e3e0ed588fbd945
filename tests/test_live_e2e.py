"""Live call audio end to end THROUGH THE CONTROLLER (issue 14, "Done when"): a CRM creates
a campaign whose call step runs the AMD, leaves a message on machines and the
promise-to-pay voicebot with people; the controller dispatches to an appliance over the
fleet link; the appliance calls an emulated Huawei bank whose far ends speak and listen on
their audio ports. The network's record (the emulator's GET /calls: what each far end
heard and keyed) is the ground truth the CRM's results and webhooks are checked against.

The settings are a fresh install's: the controller's default contact rules (calling hours
08:00-21:00 local, attempt caps), the appliance's default limits and lock rules. The
contacts live in a time zone where it is now daytime (chosen at test time), as a real
campaign's debtors would.
"""
from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from controller_harness import FakeClock, enroll, make_config
from system_harness import appliance_config, controller_sections, daytime_zone, receiver

from appliance.config import parse_config
from appliance.runtime import Appliance
from modem_drivers.emulator import Timing

MESSAGE = "Dzień dobry, tu {creditor}. Prosimy o pilny kontakt w sprawie {case_ref}."
CREDITOR = "Kredyt Plus"
#: external_id -> (number, what answers): the number plan of docs/emulator.md
CALLEES: dict[str, tuple[str, str]] = {
    "m1": ("+48601100200", "machine"),
    "m2": ("+48601100301", "machine"),
    "p1": ("+48600000123", "person"),          # "Halo?", then listens and keys nothing
    "k0": ("+48600890111", "confirms"),        # 1, DDMM, 1
    "k1": ("+48600891111", "invalid_first"),   # 1, 3102, DDMM, 1
    "k2": ("+48600892111", "agent"),           # 0
    "k3": ("+48600893111", "silent"),          # nothing
    "k4": ("+48600894111", "wrong_person"),    # 2
}
#: Real zones around the world; the one where it is now closest to 13:00 is the debtors'.
#: Realistic timing: the far ends' voices are made while the call sets up and rings, as on a
#: real network (in fast timing a cold sound cache left a person's first second as his
#: line's noise floor, which the AMD read as a long greeting: a machine). Seed 12: each
#: person answers with a short word — one who answers with a whole sentence is a machine to
#: the AMD (its long_greeting rule, 1.5 s), a known trade-off measured by the benchmark.
pytestmark = pytest.mark.bank(modems=len(CALLEES), vendors=("huawei",), timing=Timing.REALISTIC, seed=12)


def keyed_date(ddmm: str, start: date) -> date:
    """The date a DDMM keyed on ``start`` names (the year that puts it on or after start)."""
    day, month = int(ddmm[:2]), int(ddmm[2:])
    d = date(start.year, month, day)
    return d if d >= start else date(start.year + 1, month, day)


@pytest.fixture
def controller_config(tmp_path):  # type: ignore[no-untyped-def]
    """A fresh install's controller: only the dispatch pace, the loopback webhook receiver
    and the plan's operator prefixes differ from the shipped defaults (no contact rules)."""
    return make_config(tmp_path / "controller.db", **controller_sections())


@pytest.fixture
def clock() -> FakeClock:
    """The controller's clock: the real time (the appliance runs on it too)."""
    return FakeClock()


async def test_machines_get_the_message_people_the_voicebot_and_the_crm_its_outcome(  # type: ignore[no-untyped-def]
        tmp_path, bank, controller, crm, clock) -> None:
    emu = bank.emu
    zone = daytime_zone()
    credential = await enroll(crm.s, controller.c, "box-01")
    (tmp_path / "cred").write_text(credential)
    link = controller.c.url.replace("http", "ws") + "/v1/link"
    cfg = appliance_config(tmp_path, bank.state, link, tmp_path / "cred")
    for shipped_default in ("limits", "lock", "retry"):  # a fresh install's limits and lock rules
        cfg.pop(shipped_default)
    app = Appliance(parse_config(cfg), seed=14)
    async with receiver(clock) as hooks:
        await app.start()
        try:
            status, hook = await crm.call("POST", "/v1/webhooks", json={"url": hooks.url, "events": ["result"]})
            assert status == 201, hook
            hooks.secret = hook["secret"]
            status, camp = await crm.call("POST", "/v1/campaigns", json={
                "id": "live", "name": "Live calls", "creditor": CREDITOR, "start": True,
                "strategy": [{"kind": "call", "on_answer": "amd", "on_machine": "leave_message",
                              "on_human": "voicebot", "dialogue": "promise_to_pay", "message": MESSAGE}]})
            assert status == 201, camp
            assert camp["rules"]["hours"] == ["08:00", "21:00"]  # the shipped calling hours
            contacts = [{"external_id": ext, "phones": [number], "name": f"Jan Kowalski {ext[-1]}", "amount": "123.45",
                         "currency": "PLN", "due_date": "2026-11-30", "case_ref": f"K/{ext}", "language": "pl",
                         "time_zone": zone} for ext, (number, _) in CALLEES.items()]
            status, report = await crm.call("POST", "/v1/campaigns/live/contacts", json=contacts)
            assert status == 200 and report["created"] == len(CALLEES), report
            await crm.wait_campaign_done("live", timeout=240)
            results = [r for r in await crm.all_results("live") if r["final"]]
            async with asyncio.timeout(30):  # every final result also pushed, signed
                while len([e for e in hooks.events if e.get("final")]) < len(results):
                    await asyncio.sleep(0.2)
        finally:
            await app.stop()
    async with aiohttp.ClientSession() as s, s.get(f"{emu.control_url}/calls") as r:
        network = {c["callee"]: c for c in await r.json()}
    assert hooks.bad_signatures == 0
    hooked = {e["job_id"]: e for e in hooks.events if e.get("final")}
    by_ext: dict[str, dict[str, Any]] = {}
    for res in results:
        status, contact = await crm.call("GET", f"/v1/contacts/{res['contact_id']}")
        assert status == 200
        by_ext[contact["external_id"]] = {"result": res, "contact": contact}
    assert set(by_ext) == set(CALLEES)
    refusals = [r for r in results if r["outcome"] == "refused_by_policy"]
    assert not refusals, refusals  # daytime in the debtors' zone: nothing held back

    for ext, (number, kind) in CALLEES.items():
        res, contact = by_ext[ext]["result"], by_ext[ext]["contact"]
        detail, call = res["detail"], network[number]
        audio = call["audio"]
        assert hooked[res["job_id"]].get("voicebot") == res.get("voicebot"), ext  # the webhook says the same
        start = datetime.fromisoformat(detail["answered_at"]).astimezone(ZoneInfo(zone)).date()
        if kind == "machine":
            assert res["outcome"] == "answered_machine" and detail["amd"]["decision"] == "machine", (ext, detail)
            assert detail["message_played"] is True and audio["beep_ms"] is not None, (ext, detail, audio)
            after_beep = [h for h in audio["heard"] if h["start_ms"] >= audio["beep_ms"]]
            heard_s = sum(h["end_ms"] - h["start_ms"] for h in after_beep) / 1000
            # the message (its length as the appliance played it) reached the machine's recording
            assert after_beep and heard_s >= 0.8 * detail["message_seconds"], (ext, audio, detail["message_seconds"])
            assert "voicebot" not in res and contact["promise_date"] is None
            continue
        assert res["outcome"] == "answered_human", (ext, detail.get("amd"), detail.get("message_error"), audio)
        vb = res["voicebot"]
        keys = "".join(k["digit"] for k in audio["keys"])
        assert [d["key"] for d in detail["voicebot"]["digits"]] == list(keys), (ext, detail["voicebot"], keys)
        assert len(audio["heard"]) >= 2, (ext, audio)  # the prompts reached him
        expected: dict[str, Any] = {"identity": "unknown", "promise_date": None, "callback_requested": False}
        if kind in ("confirms", "invalid_first"):
            promised = keyed_date(keys[1:5] if kind == "confirms" else keys[5:9], start)
            assert start + timedelta(days=2) <= promised <= start + timedelta(days=9), (ext, keys)
            expected.update(identity="confirmed", promise_date=promised.isoformat())
            if kind == "invalid_first":
                assert keys[1:5] == "3102" and "bad_date" in detail["voicebot"]["path"], (ext, detail["voicebot"])
        elif kind == "agent":
            expected.update(callback_requested=True)
            assert keys == "0"
        elif kind == "wrong_person":
            expected.update(identity="denied")
            assert keys == "2"
        else:  # the person who says "Halo?" and the silent keypad person: no key, the dialogue gives up
            assert keys == "" and detail["voicebot"]["end_state"] == "no_input", (ext, detail["voicebot"])
        assert vb == expected, (ext, vb, keys)
        assert contact["promise_date"] == expected["promise_date"], (ext, contact)
        assert contact["state"] == "done", (ext, contact)
