"""Liveness on the defaults of a fresh install (issue 12, item 1): every queued job either
progresses or says why it waits, an operator hint is a preference unless the job requires
it, a job no SIM of the bank can ever serve ends ``no_eligible_sim`` with its reasons, and
a renewed lease is the same job, not a second one. The appliance runs on the emulator with
its default lock rules and limits (nothing opened up for the test)."""
from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from appliance.config import parse_config
from appliance.runtime import Appliance
from appliance.scheduler import NO_ELIGIBLE_GRACE_SECONDS
from modem_drivers.emulator import Timing

#: The emulator's number plan: +48 60O B XXXXX, O = operator, B = behaviour (0 answers).
ANSWERS = "+48601000{:03d}"


#: Four modems with one SIM each: operators 26001, 26002, 26003, 26006 (one SIM each).
pytestmark = [pytest.mark.bank(modems=4, sims_per_modem=1, timing=Timing.FAST, seed=3), pytest.mark.appliance(seed=5)]


@pytest.fixture
def appliance_config(tmp_path, bank):
    """The ``appliance`` fixture's: the API on a free port."""
    return {
        "emulator_state": str(bank.state),
        "appliance": {"id": "live", "store": str(tmp_path / "a.db"), "listen": "127.0.0.1:0", "token": "t"},
    }


def sims_of(app: Appliance, operator: str) -> list[str]:
    return [s.sim_id for ch, s in app.bank.sims() if s.info and s.info.mcc_mnc == operator]


def finals(app: Appliance) -> tuple[dict[str, dict], asyncio.Event]:
    out: dict[str, dict] = {}
    ev = asyncio.Event()

    def on_result(r: dict) -> None:
        if r.get("final"):
            assert r["job_id"] not in out, f"a second final result for {r['job_id']}"
            out[r["job_id"]] = r
            ev.set()

    app.scheduler.result_listeners.append(on_result)
    return out, ev


async def get_job(app: Appliance, job_id: str) -> dict:
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer t"}) as s:
        async with s.get(f"{app.address}/api/jobs/{job_id}") as r:
            assert r.status == 200
            return await r.json()


async def wait_for(pred, timeout: float = 30.0, what: str = "condition"):
    async with asyncio.timeout(timeout):
        while not (value := await pred()):
            await asyncio.sleep(0.1)
    return value


async def test_operator_hint_is_a_preference_when_its_sims_are_locked(appliance):
    app = appliance
    for sim_id in sims_of(app, "26001"):  # the technician (or a lock rule) took them out
        app.policy.quarantine(sim_id, ("test: blocked by the operator",), time.time())
    out, _ = finals(app)
    app.scheduler.submit([{"id": "pref", "kind": "call", "callee": ANSWERS.format(1), "hints": {"operator": "26001"},
                           "call": {"max_ring_seconds": 10, "max_talk_seconds": 1}}])
    async with asyncio.timeout(30):
        while "pref" not in out:
            await asyncio.sleep(0.05)
    assert out["pref"]["outcome"] == "answered_human"
    assert out["pref"]["sim_id"] not in sims_of(app, "26001")


async def test_required_operator_with_every_sim_locked_ends_no_eligible_sim(appliance):
    app = appliance
    for sim_id in sims_of(app, "26002"):
        app.policy.quarantine(sim_id, ("test: blocked by the operator",), time.time())
    out, _ = finals(app)
    app.scheduler.submit([{"id": "req", "kind": "sms", "callee": ANSWERS.format(2), "text": "x",
                           "hints": {"operator": "26002", "require": ["operator"]}}])

    async def waiting():
        job = await get_job(app, "req")
        return job if job.get("waiting_for") else None

    job = await wait_for(waiting)
    assert job["state"] == "queued" and job["waiting_for"] == "operator_sims_locked"
    assert "26002" in job["waiting_detail"] and "quarantined" in job["waiting_detail"]
    assert app.scheduler.stats()["waiting_for"] == {"operator_sims_locked": 1}
    # The grace is for modems still opening; it passes on the scheduler's clock.
    real = app.scheduler.clock
    app.scheduler.clock = lambda: real() + NO_ELIGIBLE_GRACE_SECONDS + 1
    app.scheduler._wake.set()
    async with asyncio.timeout(10):
        while "req" not in out:
            await asyncio.sleep(0.05)
    r = out["req"]
    assert r["outcome"] == "no_eligible_sim" and r["waiting_for"] == "operator_sims_locked"
    assert "26002" in r["detail"]
    assert (await get_job(app, "req"))["state"] == "no_eligible_sim"


async def test_a_renewed_lease_is_the_same_job_with_the_later_deadline(appliance):
    app = appliance
    for ch, s in app.bank.sims():  # every SIM away: the job has to wait
        app.policy.quarantine(s.sim_id, ("test",), time.time())
    now = time.time()
    spec = {"id": "lease", "kind": "sms", "callee": ANSWERS.format(3), "text": "x", "deadline": now + 60}
    assert app.scheduler.submit([dict(spec)]) == [("lease", True)]
    assert app.scheduler.submit([{**spec, "deadline": now + 600}]) == [("lease", False)]
    job = await get_job(app, "lease")
    assert job["deadline"] == pytest.approx(now + 600) and job["spec"]["deadline"] == pytest.approx(now + 600)
    assert app.scheduler._jobs["lease"]["deadline"] == pytest.approx(now + 600)
    # an earlier deadline never shortens it
    app.scheduler.submit([{**spec, "deadline": now + 30}])
    assert (await get_job(app, "lease"))["deadline"] == pytest.approx(now + 600)


async def test_withdrawn_job_says_why_and_a_running_call_ends_normally(appliance):
    app = appliance
    out, _ = finals(app)
    jobs = [{"id": f"w{i}", "kind": "call", "callee": ANSWERS.format(10 + i),
             "call": {"max_ring_seconds": 10, "max_talk_seconds": 2}} for i in range(8)]
    app.scheduler.submit(jobs)
    async with asyncio.timeout(20):
        while not app.scheduler.stats()["running"]:
            await asyncio.sleep(0.02)
    running = set(app.scheduler._running)
    states = {j["id"]: app.scheduler.cancel(j["id"], reason="campaign paused") for j in jobs}
    withdrawn = {k for k, v in states.items() if v == "cancelled"}
    assert withdrawn and running.isdisjoint(withdrawn)
    try:
        async with asyncio.timeout(30):
            while len(out) < len(jobs):
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"states {states}, results {out}, running {running}") from None
    for job_id in withdrawn:
        assert out[job_id]["outcome"] == "cancelled" and out[job_id]["detail"] == "campaign paused"
        assert out[job_id]["kind"] == "call" and out[job_id]["callee"]
    for job_id in running:
        assert out[job_id]["outcome"] == "answered_human"


@pytest.mark.bank(modems=2, sims_per_modem=1, timing=Timing.FAST, seed=3)
async def test_hello_names_sims_outside_the_rotation_instead_of_failing(tmp_path, bank):
    """The bank has read a SIM the rotation does not hold (locked, its modem not yet
    settled): the link's hello says so. Before, it raised KeyError on every connect, and the
    link to a restarted controller never came back (soak test, seed 1)."""
    state = bank.state
    (tmp_path / "cred").write_text("x")
    app = Appliance(parse_config({
        "emulator_state": str(state),
        "appliance": {"id": "h", "store": str(tmp_path / "a.db"), "listen": ""},
        "link": {"url": "ws://127.0.0.1:9/v1/link", "credential_file": str(tmp_path / "cred")},
    }), seed=5)
    await app.start()
    try:
        (ch, slot), *_ = app.bank.sims()
        app.policy.remove_sim(slot.sim_id)
        hello = app.link._hello()
        states = {s.sim_id: s.state for s in hello.sims}
        assert states[slot.sim_id] == "not_in_rotation"
        assert set(states.values()) - {"not_in_rotation"} == {"ready"}
    finally:
        await app.stop()


@pytest.mark.bank(modems=2, sims_per_modem=1, timing=Timing.FAST, seed=3)
async def test_a_retry_due_while_the_bank_is_quiet_is_placed_on_time(tmp_path, bank):
    """A failed SMS is retried 5 s later (channel_retry_seconds). Its channel is freed and
    the retry queued inside the closing commit, where no channel event wakes the dispatch
    loop; with nothing else going on the retry waited for an event that never came (soak
    test, seed 5: an SMS retry idle for a minute with six channels idle)."""
    emu, state = bank
    app = Appliance(parse_config({
        "emulator_state": str(state),
        "appliance": {"id": "q", "store": str(tmp_path / "a.db"), "listen": ""},
    }), seed=5)
    await app.start()
    try:
        for m in emu.modems:  # the operator bars SMS on both SIMs: every try fails on our side
            await emu.inject(m.id, "block_sim")
        out, _ = finals(app)
        app.scheduler.submit([{"id": "sms", "kind": "sms", "callee": ANSWERS.format(7), "text": "x"}])
        async with asyncio.timeout(60):
            while "sms" not in out:
                await asyncio.sleep(0.05)
        assert out["sms"]["outcome"] in ("channel_error", "no_eligible_sim")
        assert app.store.get_job("sms")["attempts"] >= 2
    finally:
        await app.stop()
