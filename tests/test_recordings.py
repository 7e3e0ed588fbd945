"""Call recordings (issue 14, "Recordings"): the tap on a live call's audio port, the Ogg
Opus file, the appliance's rows and uploads, the controller's API and its retention sweep
(on a fake clock), and a recorded call on the emulator fetched through the controller and
gone after its campaign's retention."""
from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from controller_harness import FakeAppliance, enroll

from appliance.recordings import (
    FORMAT,
    RecordingRows,
    Recordings,
    Tap,
    Uploader,
    decode,
    encode,
)
from appliance.recordings.encode import EncodeError
from appliance.recordings.store import ORPHAN_SECONDS
from appliance.recordings.upload import upload_base
from appliance.store import Store as ApplianceStore
from controller.recordings import DEFAULT_RETENTION_DAYS, retention_days
from modem_drivers.audio import FRAME_BYTES, SAMPLE_RATE
from modem_drivers.emulator import Timing

DAY = 86400.0


def level_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)) / 32768 + 1e-12))


def tone(seconds: float, hz: float, amp: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.int16)


# -- the tap ---------------------------------------------------------------------------------
class FakePort:
    """Frames to read, frames written, and one attribute the tap passes through."""

    def __init__(self, frames: list[bytes]) -> None:
        self.rx = list(frames)
        self.written: list[bytes] = []
        self.name = "fake-audio"

    async def read_frame(self, timeout: float | None = None) -> bytes:
        return self.rx.pop(0)

    async def write_frame(self, frame: bytes) -> None:
        self.written.append(frame)

    def pending_frames(self) -> int:
        return len(self.rx)


def frame(value: int) -> bytes:
    return np.full(FRAME_BYTES // 2, value, dtype="<i2").tobytes()


async def test_the_tap_lines_both_sides_up_on_the_frame_clock() -> None:
    """The far end's frames are the clock: read or still queued, each is 20 ms of the call."""
    port = FakePort([frame(1), frame(2)])  # queued since the answer
    tap = Tap().attach(port)  # type: ignore[arg-type]
    assert [await tap.read_frame(), await tap.read_frame()] == [frame(1), frame(2)]  # slots 0, 1
    port.rx = [frame(3), frame(4), frame(5)]
    await tap.read_frame()  # slot 2; 4 and 5 came in but wait in the port
    await tap.write_frame(frame(9))  # we speak now: slot 5 (after the far end's 5 frames), silence before it
    await tap.write_frame(frame(8))  # paced: the next slot, 6
    for _ in range(2):
        await tap.read_frame()  # slots 3, 4
    port.rx = [frame(6)]
    await tap.read_frame()  # slot 5
    assert port.written == [frame(9), frame(8)] and tap.pending_frames() == 0 and tap.name == "fake-audio"
    per_slot = tap.stereo().reshape(-1, FRAME_BYTES // 2, 2)[:, 0, :]
    assert per_slot[:, 0].tolist() == [1, 2, 3, 4, 5, 6, 0]
    assert per_slot[:, 1].tolist() == [0, 0, 0, 0, 0, 9, 8]
    assert tap.frames == 7 and tap.seconds == 0.14 and not tap.truncated


async def test_the_tap_keeps_at_most_its_bound_and_says_so() -> None:
    port = FakePort([])
    tap = Tap(max_seconds=0.1).attach(port)  # type: ignore[arg-type]
    for _ in range(8):
        await tap.write_frame(frame(7))
    assert tap.frames == 5 and tap.truncated and len(port.written) == 8  # the call itself is not cut
    with pytest.raises(ValueError, match="max_seconds"):
        Tap(max_seconds=0)


# -- the file --------------------------------------------------------------------------------
def test_opus_keeps_the_sides_apart() -> None:
    """A tone on the far end's side for 2 s, then noise on ours for 2 s: each side comes
    back with its own sound and the other's at least 40 dB below it, at 8 kHz, full length."""
    n = 2 * SAMPLE_RATE
    rng = np.random.default_rng(7)
    far = np.concatenate([tone(2, 440), np.zeros(n, np.int16)])
    ours = np.concatenate([np.zeros(n, np.int16), (rng.standard_normal(n) * 3000).astype(np.int16)])
    data = encode(np.stack([far, ours], axis=1))
    assert data.startswith(b"OggS") and len(data) < 4 * 8000  # under 64 kbit/s
    back, rate = decode(data)
    assert rate == SAMPLE_RATE and back.shape == (2 * n, 2)
    assert level_db(back[:n, 0]) > -16 and level_db(back[n:, 1]) > -22
    assert level_db(back[:n, 1]) < level_db(back[:n, 0]) - 40
    assert level_db(back[n:, 0]) < level_db(back[n:, 1]) - 40


def test_encode_and_decode_refuse_what_they_cannot_use() -> None:
    with pytest.raises(EncodeError, match=r"shape \(n, 2\)"):
        encode(np.zeros(160, np.int16))
    with pytest.raises(EncodeError, match="libsndfile"):
        decode(b"not audio at all")


# -- the appliance's files and rows ------------------------------------------------------------
def recordings(tmp_path: Path, **kw: Any) -> tuple[Recordings, ApplianceStore]:
    store = ApplianceStore(tmp_path / "a.db")
    return Recordings(RecordingRows(store.conn), tmp_path / "recordings", **kw), store


async def a_tap(seconds: float) -> Tap:
    port = FakePort([])
    tap = Tap().attach(port)  # type: ignore[arg-type]
    pcm = tone(seconds, 300).tobytes()
    for i in range(0, len(pcm), FRAME_BYTES):
        await tap.write_frame(pcm[i:i + FRAME_BYTES])
    return tap


async def test_a_saved_recording_gets_its_row_with_its_result_and_the_folder_stays_bounded(tmp_path) -> None:
    rec, store = recordings(tmp_path)
    try:
        made = [await rec.save(await a_tap(1.0)) for _ in range(3)]
        rec.max_bytes = made[1]["bytes"] + made[2]["bytes"]  # room for two
        for m in made:
            assert m["format"] == FORMAT and m["seconds"] == 1.0 and rec.path(m["id"]).stat().st_size == m["bytes"]
            assert decode(rec.path(m["id"]).read_bytes())[0].shape == (SAMPLE_RATE, 2)
        assert rec.rows.count() == 0  # no row before the result is stored
        rec.on_result({"job_id": "j0", "attempt": 1, "outcome": "busy"})  # no recording: nothing
        rec.on_result({"job_id": "j0", "attempt": 1, "recording": {"id": None, "reason": "the call was not answered"}})
        assert rec.rows.count() == 0
        for i, m in enumerate(made):
            rec.on_result({"job_id": f"j{i}", "attempt": 1, "recording": m})
        # the third took the folder past its bound: the oldest went
        assert rec.rows.ids() == {made[1]["id"], made[2]["id"]}
        assert not rec.path(made[0]["id"]).exists() and rec.path(made[2]["id"]).exists()
        assert store.db["recordings"].get(made[1]["id"])["job_id"] == "j1"
    finally:
        store.close()


async def test_files_no_result_named_are_deleted_once_an_hour_old(tmp_path) -> None:
    rec, store = recordings(tmp_path)
    try:
        kept = await rec.save(await a_tap(0.2))
        rec.on_result({"job_id": "j", "attempt": 1, "recording": kept})
        young, old = await rec.save(await a_tap(0.2)), await rec.save(await a_tap(0.2))
        past = rec.clock() - ORPHAN_SECONDS - 60
        for r in (kept, old):
            os.utime(rec.path(r["id"]), (past, past))
        assert rec.sweep_orphans() == [rec.path(old["id"]).name]
        assert rec.path(kept["id"]).exists() and rec.path(young["id"]).exists() and not rec.path(old["id"]).exists()
    finally:
        store.close()


async def test_a_failed_upload_waits_its_backoff_and_says_why(tmp_path) -> None:
    rec, store = recordings(tmp_path)
    now = [1000.0]
    rec.clock = lambda: now[0]
    try:
        m = await rec.save(await a_tap(0.2))
        rec.on_result({"job_id": "j", "attempt": 1, "recording": m})
        with socket_nobody_listens() as port:
            up = Uploader(rec, lambda: f"ws://127.0.0.1:{port}/v1/link", lambda: "sra_x", clock=lambda: now[0])
            async with aiohttp.ClientSession() as s:
                assert await up.send_due(s) == 0
                row = rec.rows.get(m["id"])
                assert row is not None and row["tries"] == 1 and row["next_try_at"] == 1005.0
                assert "Connect" in row["last_error"] or "refused" in row["last_error"], row
                assert await up.send_due(s) == 0 and rec.rows.get(m["id"])["tries"] == 1  # not due before its time
                now[0] = 1005.0
                await up.send_due(s)
                assert rec.rows.get(m["id"])["next_try_at"] == 1015.0  # doubled
        assert rec.path(m["id"]).exists()  # kept until the controller has it
        assert [up.delay(n) for n in (1, 2, 3, 10, 20)] == [5.0, 10.0, 20.0, 600.0, 600.0]
    finally:
        store.close()
    assert str(upload_base("wss://c.example:8480/v1/link")) == "https://c.example:8480/"
    with pytest.raises(ValueError, match=r"\[link\] url"):
        upload_base("tcp://c:1/v1/link")


class socket_nobody_listens:
    """A port that refuses connections (bound, never listening)."""

    def __enter__(self) -> int:
        import socket

        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        return int(self.s.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.s.close()


# -- the controller's API and sweep ----------------------------------------------------------
@pytest.fixture
def clock():  # type: ignore[no-untyped-def]
    """A daytime controller clock (the campaign's calling hours are open)."""
    from system_harness import clock_between

    return clock_between(1, 21)


async def leased_job(controller, crm, campaign: str, rules: dict[str, Any]) -> tuple[FakeAppliance, dict[str, Any], str]:  # type: ignore[no-untyped-def]
    """A campaign with one contact whose call job the controller leased to a fake appliance."""
    c = controller.c
    status, body = await crm.call("POST", "/v1/campaigns", json={
        "id": campaign, "name": campaign, "start": True, "strategy": [{"kind": "call", "attempts": 1}],
        "rules": {"hours": ["00:00", "23:59"], **rules}})
    assert status == 201, body
    status, body = await crm.call("POST", f"/v1/campaigns/{campaign}/contacts",
                                  json=[{"external_id": "e1", "phones": ["+48600000123"], "name": "Jan"}])
    assert status == 200, body
    cred = await enroll(crm.s, c, f"box-{campaign}")
    fa = FakeAppliance(crm.s, c.url, cred, appliance_id=f"box-{campaign}", clock=c.clock)
    await fa.connect()
    batch = await fa.expect("jobs", 10)
    await fa.ack(batch)
    return fa, batch["jobs"][0], cred


async def put(http: aiohttp.ClientSession, url: str, rec_id: str, data: bytes, cred: str, job_id: str,
              content_type: str = "audio/ogg") -> tuple[int, Any]:
    async with http.put(f"{url}/v1/link/recordings/{rec_id}", data=data, params={"job_id": job_id, "attempt": "1", "seconds": "2.0"},
                        headers={"Authorization": f"Bearer {cred}", "Content-Type": content_type}) as r:
        return r.status, await r.json()


async def test_the_crm_lists_and_fetches_a_recording_until_the_sweep_deletes_it(controller, crm, http, clock) -> None:  # type: ignore[no-untyped-def]
    c = controller.c
    fa, job, cred = await leased_job(controller, crm, "rec7", {"recording_retention_days": 7})
    data = encode(np.stack([tone(2, 440), np.zeros(2 * SAMPLE_RATE, np.int16)], axis=1))
    rid = "ab" * 16
    try:
        # the appliance's credential, not an API key; a job this controller leased; Ogg only
        assert (await put(http, c.url, rid, data, controller.key, job["id"]))[0] == 401
        status, body = await put(http, c.url, rid, data, cred, "nope.1")
        assert status == 422 and body["code"] == "unknown_job" and body["errors"][0]["field"] == "job_id"
        assert (await put(http, c.url, rid, data, cred, job["id"], "audio/wav"))[0] == 415
        assert (await put(http, c.url, rid, b"RIFF....", cred, job["id"]))[0] == 400
        assert (await put(http, c.url, "..%2F..%2Fetc", data, cred, job["id"]))[0] == 400  # ids are file names
        assert await put(http, c.url, rid, data, cred, job["id"]) == (200, {"id": rid, "stored": True, "duplicate": False})
        assert (await put(http, c.url, rid, data, cred, job["id"]))[1]["duplicate"] is True  # a retry: stored once

        # the CRM: its API key lists the campaign's recordings and fetches the file
        async with http.get(f"{c.url}/v1/recordings", params={"campaign_id": "rec7"}) as r:
            assert r.status == 401
        status, page = await crm.call("GET", "/v1/recordings?campaign_id=rec7")
        assert status == 200 and [i["id"] for i in page["items"]] == [rid], page
        item = page["items"][0]
        assert item["job_id"] == job["id"] and item["format"] == FORMAT and item["bytes"] == len(data)
        assert item["seconds"] == 2.0 and item["appliance_id"] == "box-rec7"
        assert (await crm.call("GET", "/v1/recordings?campaign_id=other"))[1]["items"] == []
        async with http.get(f"{c.url}/v1/recordings/{rid}", headers=crm.headers) as r:
            assert r.status == 200 and r.content_type == "audio/ogg"
            assert await r.read() == data
        path = c.recordings.directory / f"{rid}.opus"
        assert path.is_file()

        # a fake clock: kept through day 6, deleted after the 7th
        clock.advance(6 * DAY)
        assert c.recordings.sweep() == [] and path.is_file()
        clock.advance(1 * DAY + 60)
        assert c.recordings.sweep() == [rid]
        assert not path.exists()
        status, body = await crm.call("GET", f"/v1/recordings/{rid}")
        assert status == 404 and body["code"] == "deleted" and "7 days" in body["detail"], body
        assert (await crm.call("GET", "/v1/recordings?campaign_id=rec7"))[1]["items"] == []
        assert (await crm.call("GET", "/v1/recordings/" + "cd" * 16))[1]["code"] == "not_found"
        assert c.recordings.sweep() == []  # swept once
    finally:
        await fa.close()


def test_retention_comes_from_the_campaigns_rules_or_the_default() -> None:
    assert retention_days({"recording_retention_days": 2}) == 2
    assert retention_days({}) == retention_days(None) == DEFAULT_RETENTION_DAYS == 30
    assert retention_days({"recording_retention_days": True}) == 30


async def test_the_appliances_uploader_hands_a_recording_to_the_controller(tmp_path, controller, crm, clock) -> None:  # type: ignore[no-untyped-def]
    """The appliance's Uploader against a real controller: stored there, deleted here;
    a recording of a job the controller never leased is dropped with its reason."""
    c = controller.c
    fa, job, cred = await leased_job(controller, crm, "up", {})
    rec, store = recordings(tmp_path)
    try:
        m = await rec.save(await a_tap(1.0))
        rec.on_result({"job_id": job["id"], "attempt": 1, "recording": m})
        stray = await rec.save(await a_tap(0.2))
        rec.on_result({"job_id": "never.leased", "attempt": 1, "recording": stray})
        up = Uploader(rec, lambda: c.url.replace("http", "ws") + "/v1/link", lambda: cred)
        async with aiohttp.ClientSession() as s:
            assert await up.send_due(s) == 1
        assert rec.rows.count() == 0 and not rec.path(m["id"]).exists() and not rec.path(stray["id"]).exists()
        status, page = await crm.call("GET", "/v1/recordings?campaign_id=up")
        assert status == 200, page
        assert [i["id"] for i in page["items"]] == [m["id"]] and page["items"][0]["seconds"] == 1.0
        # the campaign says nothing of retention: 30 days
        created = page["items"][0]["created_at"]
        assert page["items"][0]["expires_at"] > created
        clock.advance(29 * DAY)
        assert c.recordings.sweep() == []
        clock.advance(1 * DAY + 60)
        assert c.recordings.sweep() == [m["id"]]
    finally:
        store.close()
        await fa.close()


def test_the_appliance_store_has_the_table_on_an_old_file(tmp_path) -> None:
    """A store made before recordings gets the table at open (no migration needed)."""
    path = tmp_path / "old.db"
    ApplianceStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE recordings")
    conn.commit()
    conn.close()
    s = ApplianceStore(path)
    try:
        assert "recordings" in s.db.table_names()
    finally:
        s.close()


# -- end to end on the emulator --------------------------------------------------------------
MESSAGE = "Dzień dobry, prosimy o pilny kontakt z działem obsługi klienta."


@pytest.mark.bank(modems=2, vendors=("huawei",), timing=Timing.FAST, seed=3)
async def test_a_recorded_call_is_fetched_through_the_api_and_gone_after_its_retention(tmp_path, bank, controller, crm, http,
                                                                                       clock) -> None:  # type: ignore[no-untyped-def]
    """A campaign whose call step records (another's does not: off by default): a person
    answers on the emulator (his "Halo?"),
    the AMD says human and the appliance plays the message. The result names the
    recording; the appliance sends it and deletes its copy; the CRM lists it, fetches it,
    and hears the person's greeting on the far end's side and the message on ours, about
    as long as the call; 2 days later (the campaign's retention) it is gone."""
    from system_harness import appliance_config, daytime_zone

    from appliance.config import parse_config
    from appliance.runtime import Appliance

    c = controller.c
    cred = await enroll(http, c, "box-01")
    (tmp_path / "cred").write_text(cred)
    cfg = parse_config(appliance_config(tmp_path, bank.state, c.url.replace("http", "ws") + "/v1/link", tmp_path / "cred"))
    assert all(m.audio for m in cfg.modem)
    app = Appliance(cfg, seed=1)
    await app.start()
    try:
        step = {"kind": "call", "attempts": 1, "on_answer": "amd", "on_human": "play", "message": MESSAGE}
        for cid, record, phone in (("rec", True, "+48600000123"), ("plain", False, "+48600010123")):
            status, body = await crm.call("POST", "/v1/campaigns", json={
                "id": cid, "name": cid, "start": True, "rules": {"recording_retention_days": 2},
                "strategy": [{**step, "record": True} if record else step]})
            assert status == 201, body
            status, body = await crm.call("POST", f"/v1/campaigns/{cid}/contacts",  # shipped hours: where it is day
                                          json=[{"external_id": "p1", "phones": [phone], "name": "Jan",
                                                 "time_zone": daytime_zone(clock())}])
            assert status == 200, body
        async with asyncio.timeout(60):
            while not (page := (await crm.call("GET", "/v1/recordings?campaign_id=rec"))[1])["items"]:
                await asyncio.sleep(0.2)
            while not [r for r in await crm.all_results("plain") if r.get("kind") == "call"]:
                await asyncio.sleep(0.2)
        # recording is off by default: the other campaign's answered call has none
        plain = [r["detail"] for r in await crm.all_results("plain") if r.get("kind") == "call"]
        assert plain[0]["outcome"] == "answered_human" and "recording" not in plain[0], plain
        assert (await crm.call("GET", "/v1/recordings?campaign_id=plain"))[1]["items"] == []
        results = [r for r in await crm.all_results("rec") if r.get("kind") == "call"]
        assert len(results) == 1, results
        result = results[0]
        body = result["detail"]
        rec_meta = body["recording"]
        item = page["items"][0]
        assert body["outcome"] == "answered_human" and body["message_played"] is True, body
        assert item["id"] == rec_meta["id"] and item["bytes"] == rec_meta["bytes"] and item["format"] == FORMAT
        async with http.get(f"{c.url}/v1/recordings/{item['id']}", headers=crm.headers) as r:
            assert r.status == 200
            data = await r.read()
        samples, rate = decode(data)
        assert rate == SAMPLE_RATE
        seconds = len(samples) / rate
        assert abs(seconds - rec_meta["seconds"]) < 0.1 and abs(seconds - body["talk_seconds"]) < 1.5, (seconds, body)
        # the far end's greeting before the AMD's verdict, our message after it
        decided = body["amd"]["decided_ms"] * SAMPLE_RATE // 1000
        far, ours = samples[:decided, 0], samples[decided:, 1]
        assert level_db(far) > -45, level_db(far)
        assert level_db(ours) > -35 and level_db(samples[:decided, 1]) < -60, (level_db(ours), level_db(samples[:decided, 1]))
        assert body["message_seconds"] <= seconds
        # the appliance's copy went once the controller stored it
        async with asyncio.timeout(10):
            while app.recordings.rows.count():
                await asyncio.sleep(0.1)
        assert not any(app.recordings.directory.iterdir())
    finally:
        await app.stop()
    path = c.recordings.directory / f"{item['id']}.opus"
    assert path.is_file()
    clock.advance(2 * DAY + 60)
    assert c.recordings.sweep() == [item["id"]]
    status, gone = await crm.call("GET", f"/v1/recordings/{item['id']}")
    assert status == 404 and gone["code"] == "deleted" and not path.exists()
