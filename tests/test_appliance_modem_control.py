"""One modem stopped, restarted or removed while the appliance runs (issue 15): through the
local API (``POST /api/modems/{id}/{action}``) and ``simrotor appliance modem``, on an
emulated bank, while the other modems keep calling.

A stop "when idle" lets the call on the modem end as it would have (the job's own talk
limit), a stop now hangs it up (the job still gets its normal result); the stopped modem
takes no job, its port is closed (the test opens it itself), a restart brings it back
idle, a remove forgets it (status ``modems_removed``; a restart is refused, 404)."""
from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aiohttp
import pytest

from modem_drivers.at import AtError
from modem_drivers.emulator import Timing
from modem_drivers.errors import ModemError
from modem_drivers.modem import Modem

TOKEN = "modem-control-token"

pytestmark = pytest.mark.bank(modems=3, sims_per_modem=1, timing=Timing.FAST, seed=11)


def control_config(tmp_path: Any, bank: Any, appliance_id: str) -> dict[str, Any]:
    """An appliance on the test's bank with its local API on a free port: the shipped lock
    rules; calls back to back (no pauses, caps out of the way) so the tests stay short;
    supervision every second so a stopped or lost port is seen at once."""
    return {
        "emulator_state": str(bank.state),
        "appliance": {"id": appliance_id, "store": str(tmp_path / "appliance.db"), "listen": "127.0.0.1:0",
                      "token": TOKEN},
        "limits": {"calls_per_hour": 1000, "calls_per_day": 1000, "min_pause_seconds": 0.0,
                   "pause_after_call": [0.0, 0.0]},
        "supervision": {"check_interval_seconds": 1.0, "reopen_backoff": [0.2, 1.0]},
    }


@pytest.fixture
def appliance_config(tmp_path, bank) -> dict[str, Any]:
    return control_config(tmp_path, bank, "ctl")


class Api:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, url
        self.headers = {"Authorization": f"Bearer {TOKEN}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, self.url + path, json=body, headers=self.headers) as resp:
            return resp.status, await resp.json()

    async def channel(self, cid: str) -> dict[str, Any] | None:
        _, data = await self.call("GET", "/api/channels")
        return next((c for c in data["channels"] if c["id"] == cid), None)

    async def until(self, what: str, check, timeout: float = 20.0) -> Any:
        """Poll (50 ms) until ``check()`` gives something true; fail naming ``what``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            got = await check()
            if got:
                return got
            assert loop.time() < deadline, f"timed out waiting for {what}"
            await asyncio.sleep(0.05)

    async def results(self) -> list[dict[str, Any]]:
        _, data = await self.call("GET", "/api/results?after=0&limit=1000")
        return data["results"]

    async def result(self, job_id: str) -> dict[str, Any] | None:
        return next((r for r in await self.results() if r["job_id"] == job_id and r.get("final", True)), None)

    async def holding(self, job_id: str) -> str:
        """The channel that runs ``job_id`` once its call is answered (talking)."""
        async def check() -> str | None:
            _, data = await self.call("GET", "/api/channels")
            return next((c["id"] for c in data["channels"] if c["job_id"] == job_id), None)
        return await self.until(f"a channel running {job_id}", check)


def hold_call(job_id: str, n: int, talk: float) -> dict[str, Any]:
    # behaviour 0: a person who answers at once in fast timing and would talk 60 s; the
    # job holds the line for ``talk`` seconds, then hangs up
    return {"id": job_id, "kind": "call", "callee": f"+48600{n:06d}",
            "call": {"on_answer": "hold", "max_talk_seconds": talk}}


def short_calls(prefix: str, count: int) -> list[dict[str, Any]]:
    return [{"id": f"{prefix}-{i}", "kind": "call", "callee": f"+48601{i:06d}"} for i in range(count)]


@pytest.fixture
async def api(appliance, http) -> Api:
    return Api(http, appliance.address)


async def test_stop_when_idle_lets_the_call_end_restart_and_remove(api: Api, appliance, bank) -> None:
    status, _ = await api.call("POST", "/api/jobs", {"jobs": [hold_call("hold-1", 1, 2.0)]})
    assert status == 200
    busy = await api.holding("hold-1")
    status, view = await api.call("POST", f"/api/modems/{busy}/stop", {"when_idle": True})
    assert status == 200
    assert view["state"] == "busy" and view["pending"] == "stop"
    assert "waiting for job hold-1 to end (when idle)" in view["reason"]
    _, summary = await api.call("GET", "/api/status")
    assert summary["modem_control"] == [{"id": busy, "state": "busy", "pending": "stop", "reason": view["reason"]}]

    # the other modems keep calling meanwhile
    await api.call("POST", "/api/jobs", {"jobs": short_calls("during", 6)})
    done = await api.until("the call held on the draining modem to end", lambda: api.result("hold-1"), 30)
    assert done["outcome"] == "answered_human" and done["channel_id"] == busy
    assert done["talk_seconds"] >= 1.5, done  # it ran to its own 2 s limit: not hung up by the stop
    stopped = await api.until("the modem to stop", lambda: _state(api, busy, "stopped"))
    assert stopped["pending"] is None and stopped["reason"] == "stopped by a person"

    async def all_done() -> list[dict[str, Any]] | None:
        got = [r for r in await api.results() if r["job_id"].startswith("during-")]
        return got if len(got) == 6 else None
    during = await api.until("the other modems' calls", all_done, 30)
    assert {r["outcome"] for r in during} == {"answered_human"}
    assert busy not in {r["channel_id"] for r in during}

    # its port is closed: this test can open the modem itself
    port = appliance.bank.channels[busy].port
    modem = await Modem.open(port, name="test", reconnect=False)
    await modem.close()

    status, view = await api.call("POST", f"/api/modems/{busy}/restart")
    assert status == 200
    await api.until("the restarted modem to be idle", lambda: _state(api, busy, "idle"))
    await api.call("POST", "/api/jobs", {"jobs": short_calls("after", 9)})

    async def after_done() -> list[dict[str, Any]] | None:
        got = [r for r in await api.results() if r["job_id"].startswith("after-")]
        return got if len(got) == 9 else None
    after = await api.until("calls after the restart", after_done, 30)
    assert {r["outcome"] for r in after} == {"answered_human"}

    # remove another, idle modem: gone from the channels, named in the status
    other = next(c for c in appliance.bank.channels if c != busy)
    status, view = await api.call("POST", f"/api/modems/{other}/remove")
    assert status == 200 and view["removed"] is True and view["state"] == "stopped"
    assert await api.channel(other) is None
    _, summary = await api.call("GET", "/api/status")
    assert [m["id"] for m in summary["modems_removed"]] == [other]
    status, err = await api.call("POST", f"/api/modems/{other}/restart")
    assert status == 404 and "was removed" in err["detail"]
    await api.call("POST", "/api/jobs", {"jobs": short_calls("removed", 4)})

    async def removed_done() -> list[dict[str, Any]] | None:
        got = [r for r in await api.results() if r["job_id"].startswith("removed-")]
        return got if len(got) == 4 else None
    assert other not in {r["channel_id"] for r in await api.until("calls after the remove", removed_done, 30)}


async def _state(api: Api, cid: str, state: str) -> dict[str, Any] | None:
    view = await api.channel(cid)
    return view if view is not None and view["state"] == state else None


async def test_stop_now_hangs_up_and_bad_requests(api: Api) -> None:
    await api.call("POST", "/api/jobs", {"jobs": [hold_call("hold-2", 2, 30.0)]})
    busy = await api.holding("hold-2")
    await asyncio.sleep(0.3)  # the call is answered at once in fast timing; let it talk a little
    status, view = await api.call("POST", f"/api/modems/{busy}/stop")
    assert status == 200 and view["pending"] == "stop" and "hanging up the call of job hold-2 now" in view["reason"]
    done = await api.until("the hung-up call's result", lambda: api.result("hold-2"), 15)
    assert done["outcome"] == "answered_human" and done["talk_seconds"] < 10, done
    await api.until("the modem to stop", lambda: _state(api, busy, "stopped"))

    status, err = await api.call("POST", "/api/modems/nope/stop")
    assert status == 404 and "no modem 'nope'" in err["detail"]
    status, err = await api.call("POST", f"/api/modems/{busy}/explode")
    assert status == 404 and "stop, restart, remove" in err["detail"]
    status, err = await api.call("POST", f"/api/modems/{busy}/restart", {"when_idle": "yes"})
    assert status == 400 and err["code"] == "invalid_body" and err["errors"][0]["field"] == "body"


async def test_cli_stops_and_restarts_with_wait(api: Api, appliance, appliance_config, tmp_path) -> None:
    from provisioning.tomlout import dumps

    listen = appliance.address.removeprefix("http://")
    cfg = {k: v for k, v in appliance_config.items() if k != "lock"}  # (TOML has no null; the CLI reads no lock)
    cfg["appliance"] = {**appliance_config["appliance"], "listen": listen}
    path = tmp_path / "appliance.toml"
    path.write_text(dumps(cfg))
    target = next(iter(appliance.bank.channels))

    async def cli(*args: str) -> tuple[int, dict[str, Any], str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "simrotor", "appliance", "modem", *args, "--config", str(path), "--json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        return proc.returncode, json.loads(out), err.decode()

    code, view, _ = await cli("stop", target, "--when-idle", "--wait")
    assert code == 0 and view["state"] == "stopped" and view["pending"] is None
    code, view, _ = await cli("restart", target, "--wait")
    assert code == 0 and view["state"] == "idle"
    code, view, err = await cli("remove", "m99")
    assert code == 1 and "no modem 'm99'" in view["error"] and "no modem 'm99'" in err


async def test_a_lost_modem_stopped_stays_closed_then_restart_when_idle_after_a_call(api: Api, appliance, bank) -> None:
    from modem_drivers.emulator import Fault

    lost = "emu001"
    await bank.emu.inject(lost, Fault.VANISH, seconds=1.0)
    await api.until("the lost port's channel to be faulty", lambda: _state(api, lost, "faulty"))
    status, view = await api.call("POST", f"/api/modems/{lost}/stop", {"when_idle": True})
    assert status == 200 and view["state"] == "stopped" and view["pending"] is None
    # the port comes back after 1 s: nobody reopens it (the AT layer's own reopen and the
    # bank's ended with the stop), so this test can take it as soon as it is there
    port = appliance.bank.channels[lost].port
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while True:
        try:
            modem = await Modem.open(port, name="test", reconnect=False)
            break
        except (AtError, ModemError, OSError) as exc:  # gone (no such port), or held: busy
            assert loop.time() < deadline, f"the port never came back free: {exc}"
            await asyncio.sleep(0.1)
    await modem.close()
    status, _ = await api.call("POST", f"/api/modems/{lost}/restart")
    assert status == 200
    await api.until("the lost modem back idle", lambda: _state(api, lost, "idle"))

    # restart "when idle" of a modem holding a call: the call ends at its own limit first
    await api.call("POST", "/api/jobs", {"jobs": [hold_call("hold-3", 3, 1.5)]})
    busy = await api.holding("hold-3")
    status, view = await api.call("POST", f"/api/modems/{busy}/restart", {"when_idle": True})
    assert status == 200 and view["pending"] == "restart" and view["state"] == "busy"
    done = await api.until("the held call's result", lambda: api.result("hold-3"), 20)
    assert done["outcome"] == "answered_human" and done["talk_seconds"] >= 1.0, done
    await api.until("the restarted modem idle", lambda: _state(api, busy, "idle"))
    events = [e for e in appliance.store.conn.execute(
        "SELECT detail FROM events WHERE kind = 'channel' AND subject = ? ORDER BY rowid", (busy,))]
    moves = [json.loads(d)["to"] for (d,) in events]
    assert moves[-3:] == ["stopped", "opening", "idle"], moves
