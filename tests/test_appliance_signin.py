"""Sign-in to the technician page over real HTTP (an Appliance on an emulated bank):
nothing but /healthz and the form without a session, the cookie's flags, lockout with
backoff per account and per address, CSRF refusals that change nothing on the modems,
sign-out, a removed account's session ending; the accounts' CLI; the lockout's and
the event sentences' pure parts."""
from __future__ import annotations

import asyncio
import json
import re
import time
from http.cookies import SimpleCookie

import aiohttp
import pytest
from click.testing import CliRunner

from appliance.store import Store
from appliance.technician import technician_accounts
from appliance.technician.cli import user
from appliance.technician.words import sentence, trouble
from common.webauth import DESK, AccountError
from common.webauth.lockout import Lockout
from common.webauth.signin import COOKIE, SIGNIN_COOKIE
from modem_drivers.emulator import Timing
from tests.sse_reader import next_event

pytestmark = pytest.mark.bank(modems=2, sims_per_modem=2, timing=Timing.FAST, seed=5, vendors=("simcom", "quectel"))

PASSWORD = "rack-side-42"


def another_token(token: str) -> str:
    """The token with its first character changed: never equal to it (``"x" + token[1:]`` was, one time in 64)."""
    return ("y" if token[0] == "x" else "x") + token[1:]


def cookies_of(response: aiohttp.ClientResponse) -> dict[str, SimpleCookie]:
    out = {}
    for header in response.headers.getall("Set-Cookie", []):
        c: SimpleCookie = SimpleCookie()
        c.load(header)
        for name in c:
            out[name] = c
    return out


class Browser:
    """A client that keeps cookies itself (so the test sees their flags)."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base, self.jar = http, base, {}

    async def request(self, method: str, path: str, **kw) -> tuple[aiohttp.ClientResponse, str]:
        headers = {**kw.pop("headers", {}), "Cookie": "; ".join(f"{k}={v}" for k, v in self.jar.items())}
        async with self.http.request(method, self.base + path, headers=headers, allow_redirects=False, **kw) as r:
            text = await r.text()
            for name, c in cookies_of(r).items():
                if c[name].value and c[name]["max-age"] != "0":
                    self.jar[name] = c[name].value
                else:
                    self.jar.pop(name, None)
            return r, text

    async def sign_in(self, name: str, password: str, **kw) -> aiohttp.ClientResponse:
        r, text = await self.request("GET", "/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', text).group(1)
        r, _ = await self.request("POST", "/signin", data={"name": name, "password": password, "csrf": csrf}, **kw)
        return r


@pytest.fixture
def appliance_config(tmp_path, bank):
    return {"emulator_state": str(bank.state),
            "appliance": {"id": "box-signin", "store": str(tmp_path / "a.db"), "listen": "127.0.0.1:0", "token": "t"}}


async def test_signin_lockout_csrf_signout(appliance, http, bank):
    b = Browser(http, appliance.address)
    # No account yet: the form says how to make one; nothing else answers.
    r, text = await b.request("GET", "/signin")
    assert r.status == 200 and "simrotor appliance user add NAME" in text
    assert r.headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    r, _ = await b.request("GET", "/")
    assert r.status == 303 and r.headers["Location"] == "/signin"
    for path in ("/status.json", "/nowhere"):
        r, text = await b.request("GET", path)
        assert r.status == 401, path
        assert "emu0" not in text
    r, _ = await b.request("POST", "/actions/reset", json={"channel": "emu000"})
    assert r.status == 401
    r, text = await b.request("GET", "/healthz")
    assert r.status == 200 and '"ok": true' in text
    r, _ = await b.request("GET", "/metrics")  # loopback, no metrics_token: Prometheus on this machine
    assert r.status == 200

    accounts = technician_accounts(appliance.store.conn)
    accounts.add("jan", PASSWORD)
    accounts.add("ewa", PASSWORD)
    desk = appliance.runner.app[DESK]
    now = [1_000_000.0]
    for lockout in (desk.by_account, desk.by_address):
        lockout.clock = lambda: now[0]

    # Five wrong passwords are refused plainly; the sixth locks the account for 30 s …
    for _ in range(5):
        assert (await b.sign_in("jan", "wrong-password")).status == 401
    r = await b.sign_in("jan", "wrong-password")
    assert r.status == 429 and r.headers["Retry-After"] == "30"
    # … during which even the right password is refused, before it is looked at.
    r = await b.sign_in("jan", PASSWORD)
    assert r.status == 429 and int(r.headers["Retry-After"]) == 30
    assert COOKIE not in b.jar
    # The next failure after the lock doubles it (backoff).
    now[0] += 31
    r = await b.sign_in("jan", "wrong-again")
    assert r.status == 429 and r.headers["Retry-After"] == "60"
    # Another account from this address still signs in (the address has 7 failures of 10).
    r = await b.sign_in("ewa", PASSWORD)
    assert r.status == 303 and r.headers["Location"] == "/"
    flags = cookies_of(r)[COOKIE][COOKIE]
    assert flags["httponly"] and flags["samesite"] == "Strict" and not flags["secure"]
    assert COOKIE in b.jar

    # Signed in: the page, its CSRF token and the status answer.
    r, html = await b.request("GET", "/")
    assert r.status == 200
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', html).group(1)
    r, text = await b.request("GET", "/status.json")
    assert r.status == 200 and '"technician": "ewa"' in text

    # An action without the CSRF token, or with another, is refused and does nothing.
    modem = bank.emu.modem("emu000")
    settings, slot = modem.settings, modem.active_slot
    for headers in ({}, {"X-CSRF-Token": another_token(csrf)}):
        r, text = await b.request("POST", "/actions/reset", json={"channel": "emu000"}, headers=headers)
        assert r.status == 403 and "CSRF" in text
        r, text = await b.request("POST", "/actions/switch", json={"channel": "emu000", "slot": 1}, headers=headers)
        assert r.status == 403
    assert modem.settings is settings and modem.active_slot == slot
    assert appliance.bank.channels["emu000"].state.value == "idle"

    # Sign-out needs the token too; then the old cookie is worth nothing.
    old = b.jar[COOKIE]
    r, _ = await b.request("POST", "/signout", data={"csrf": "nope"})
    assert r.status == 403
    r, _ = await b.request("POST", "/signout", data={"csrf": csrf})
    assert r.status == 303 and r.headers["Location"] == "/signin" and COOKIE not in b.jar
    b.jar[COOKIE] = old
    r, _ = await b.request("GET", "/status.json")
    assert r.status == 401

    # Over TLS (a proxy saying so) the cookie is Secure; removing the account ends the session.
    b.jar.clear()
    r = await b.sign_in("ewa", PASSWORD, headers={"X-Forwarded-Proto": "https"})
    assert r.status == 303 and cookies_of(r)[COOKIE][COOKIE]["secure"]
    b.jar[COOKIE] = cookies_of(r)[COOKIE][COOKIE].value
    r, _ = await b.request("GET", "/status.json")
    assert r.status == 200
    accounts.remove("ewa")
    r, _ = await b.request("GET", "/status.json")
    assert r.status == 401

    # Per address: past ten failures over any names the address is locked, even for a good account.
    b.jar.clear()
    now[0] += 3600  # the earlier failures are forgotten
    for i in range(10):
        assert (await b.sign_in(f"guess{i}", "wrong-password")).status == 401
    r = await b.sign_in("guess10", "wrong-password")
    assert r.status == 429 and r.headers["Retry-After"] == "30"
    r = await b.sign_in("jan", PASSWORD)
    assert r.status == 429 and r.headers["Retry-After"] == "30"
    now[0] += 31
    r = await b.sign_in("jan", PASSWORD)
    assert r.status == 303

    # A sign-in form posted without its cookie (another site's form) is refused.
    b.jar.clear()
    r, _ = await b.request("POST", "/signin", data={"name": "jan", "password": PASSWORD, "csrf": "forged"})
    assert r.status == 403 and COOKIE not in b.jar


def test_lockout_backoff_is_capped_and_forgets():
    now = [0.0]
    lock = Lockout(lambda: now[0], free=2, first=10.0, cap=40.0, forget=100.0)
    assert [lock.failed("k") for _ in range(6)] == [0.0, 0.0, 10.0, 20.0, 40.0, 40.0]
    assert lock.locked_for("k") == 40.0 and lock.locked_for("other") == 0.0
    now[0] += 40.0
    assert lock.locked_for("k") == 0.0 and lock.failures("k") == 6
    now[0] += 100.0  # no failure for `forget` seconds: a fresh start
    assert lock.failures("k") == 0 and lock.failed("k") == 0.0
    lock.failed("k")
    lock.succeeded("k")
    assert lock.failures("k") == 0


async def test_accounts_hash_and_refuse(tmp_path):
    store = Store(tmp_path / "a.db")
    accounts = technician_accounts(store.conn)
    accounts.add("jan", PASSWORD)
    row = store.conn.execute("SELECT password_hash FROM technicians WHERE name = 'jan'").fetchone()[0]
    assert row.startswith("$argon2id$") and PASSWORD not in row
    assert (await accounts.verify("jan", PASSWORD)).name == "jan"
    assert await accounts.verify("jan", PASSWORD + "x") is None
    assert await accounts.verify("nobody", PASSWORD) is None
    for name, password, words in (("Jan", PASSWORD, "lower-case"), ("ok", "short", "at least 8"),
                                  ("ok", "x" * 300, "at most 256")):
        with pytest.raises(AccountError, match=words):
            accounts.add(name, password)
    with pytest.raises(AccountError, match="--replace"):
        accounts.add("jan", PASSWORD)
    changed = accounts.add("jan", "another-password", replace=True)
    assert changed.changed_at >= changed.created_at
    assert await accounts.verify("jan", PASSWORD) is None
    store.close()


def test_user_cli_reads_the_password_from_stdin_never_argv(tmp_path):
    db = str(tmp_path / "a.db")
    runner = CliRunner()
    r = runner.invoke(user, ["add", "jan", "--store", db, "--password-stdin"], input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    r = runner.invoke(user, ["add", "ewa", "--store", db], input="pass-word-9\npass-word-9\n")
    assert r.exit_code == 0, r.output
    r = runner.invoke(user, ["add", "ola", "--store", db], input="pass-word-9\ndifferent-1\n")
    assert r.exit_code != 0
    r = runner.invoke(user, ["add", "bad", "--store", db, "--password-stdin"], input="short\n")
    assert r.exit_code == 1 and "at least 8" in r.output
    r = runner.invoke(user, ["list", "--store", db, "--json"])
    assert [t["name"] for t in json.loads(r.output)["technicians"]] == ["ewa", "jan"]
    r = runner.invoke(user, ["remove", "jan", "--store", db])
    assert r.exit_code == 0
    r = runner.invoke(user, ["remove", "jan", "--store", db])
    assert r.exit_code == 1 and "no technician 'jan'" in r.output
    r = runner.invoke(user, ["add", "jan", "--store", db, "--password", "x"])
    assert r.exit_code == 2  # no such option: a password never rides on the command line
    r = runner.invoke(user, ["list", "--store", str(tmp_path / "nowhere" / "a.db")])
    assert r.exit_code == 1 and "does not exist; fix:" in r.output
    r = runner.invoke(user, ["list"])
    assert r.exit_code == 2 and "give --config" in r.output


def test_events_in_words_drop_routine_rows_and_mask():
    iccid = "89480000000000012345"
    rows = [
        {"at": 5.0, "kind": "balance", "subject": iccid, "detail": {"balance": 12.5}},
        {"at": 4.0, "kind": "channel", "subject": "m1", "detail": {"from": "idle", "to": "switching_sim", "reason": "r"}},
        {"at": 3.0, "kind": "channel", "subject": "m1", "detail": {"from": "switching_sim", "to": "idle", "reason": "ok"}},
        {"at": 2.0, "kind": "sim_quarantined", "subject": iccid,
         "detail": {"evidence": [f"job j: cause 21 without alerting, SIM {iccid}"], "by": "jan"}},
        {"at": 1.0, "kind": "channel", "subject": "m1", "detail": {"from": "idle", "to": "faulty", "reason": "port lost"}},
    ]
    out = trouble(rows, 10)
    assert [e["kind"] for e in out] == ["sim_quarantined", "channel"]
    assert out[0]["text"] == "SIM *****************345 quarantined by jan: job j: cause 21 without alerting, SIM *****************345"
    assert out[1]["text"] == "modem m1 out of service: port lost"
    assert iccid not in str(out)
    assert "and 7 more" in sentence("sim_locked", iccid, {"rule": "consecutive_failed", "until": None, "suppressed": 7,
                                                           "seconds": 5.0})
    assert sentence("new_kind", "m1", {"a": 1}) == "new kind m1: a 1"


async def test_metrics_answer_this_machine_or_their_own_token(tmp_path, bank, start_appliance, http):
    from unittest import mock

    from aiohttp.test_utils import make_mocked_request

    from appliance.api import metrics_refusal

    def peer(address: str, auth: str | None = None):
        transport = mock.Mock()
        transport.get_extra_info.side_effect = lambda key, default=None: (address, 5555) if key == "peername" else default
        return make_mocked_request("GET", "/metrics", headers={"Authorization": auth} if auth else {},
                                   transport=transport)

    # Without metrics_token: loopback callers only (a LAN address is refused with the fix).
    assert metrics_refusal(peer("127.0.0.1"), None) is None and metrics_refusal(peer("::1"), None) is None
    refused = metrics_refusal(peer("192.0.2.7"), None)
    assert refused.status == 403 and "metrics_token" in refused.text
    # With it: everyone, loopback too, sends it.
    assert metrics_refusal(peer("192.0.2.7", "Bearer prom-scrape-token-0001"), "prom-scrape-token-0001") is None
    assert metrics_refusal(peer("127.0.0.1"), "prom-scrape-token-0001").status == 401

    # Over real HTTP, with metrics_token in the config.
    app = await start_appliance({"emulator_state": str(bank.state),
                                 "appliance": {"id": "box-m", "store": str(tmp_path / "m.db"), "listen": "127.0.0.1:0",
                                               "token": "t", "metrics_token": "prom-scrape-token-0001"}})
    async with http.get(app.address + "/metrics") as r:
        assert r.status == 401
    async with http.get(app.address + "/metrics", headers={"Authorization": "Bearer prom-scrape-token-0001"}) as r:
        assert r.status == 200 and "simrotor_channels" in await r.text()
    async with http.get(app.address + "/metrics", headers={"Authorization": "Bearer t"}) as r:
        assert r.status == 401  # the API's token is not the scraper's


def test_a_short_metrics_token_beyond_loopback_is_refused_at_start(tmp_path):
    from appliance.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=r"\[appliance\] metrics_token: .* at least 16 characters"):
        parse_config({"appliance": {"id": "x", "store": str(tmp_path / "x.db"), "listen": "0.0.0.0:8470",
                                    "token": "a" * 20, "metrics_token": "short"}}, source="t.toml")


async def test_a_burst_of_sign_ins_counts_at_once_and_actions_refuse_with_reasons(appliance, http, bank, tmp_path,
                                                                                 start_appliance):
    technician_accounts(appliance.store.conn).add("jan", PASSWORD)
    b = Browser(http, appliance.address)
    # Eight wrong passwords sent at once: five are checked, the rest refused as locked.
    forms = []
    for _ in range(8):
        _, text = await b.request("GET", "/signin")
        forms.append(re.search(r'name="csrf" value="([^"]+)"', text).group(1))
    token = b.jar[SIGNIN_COOKIE]

    async def attempt(csrf: str) -> int:
        async with http.post(appliance.address + "/signin", allow_redirects=False,
                             headers={"Cookie": f"{SIGNIN_COOKIE}={csrf}"},
                             data={"name": "jan", "password": "wrong-password", "csrf": csrf}) as r:
            return r.status

    assert token == forms[-1]
    statuses = sorted(await asyncio.gather(*(attempt(c) for c in forms)))
    assert statuses == [401] * 5 + [429] * 3, statuses

    # The counts cleared (as an hour without failures would), jan signs in and acts.
    appliance.runner.app[DESK].by_account.succeeded("jan")
    appliance.runner.app[DESK].by_address.succeeded("127.0.0.1")
    assert (await b.sign_in("jan", PASSWORD)).status == 303
    _, html = await b.request("GET", "/")
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)">', html).group(1)

    async def act(name: str, body: dict) -> tuple[int, dict]:
        r, text = await b.request("POST", f"/actions/{name}", json=body, headers={"X-CSRF-Token": csrf})
        return r.status, json.loads(text)

    assert await act("quarantine", {"channel": "emu000", "slot": 0}) == (400, {
        "type": "urn:simrotor:appliance:problem:refused", "title": "The action was refused", "status": 400,
        "detail": "a quarantine needs a reason: one line of 1 to 200 characters", "instance": "/actions/quarantine",
        "code": "refused", "errors": []})
    status, answer = await act("quarantine", {"channel": "emu000", "slot": 5, "reason": "x"})
    assert status == 400 and "slots 0 to 1" in answer["detail"]
    status, answer = await act("reset", {"channel": "emu009"})
    assert status == 404 and "no modem 'emu009'" in answer["detail"]
    status, answer = await act("switch", {"channel": "emu000", "slot": 0})
    assert status == 409 and "on slot 1 already" in answer["detail"]
    status, answer = await act("explode", {})
    assert status == 404 and answer["code"] == "not_found" and answer["instance"] == "/actions/explode"
    r, text = await b.request("POST", "/actions/reset", data="channel=emu000", headers={
        "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded"})
    assert (r.status, r.content_type, json.loads(text)["code"]) == (415, "application/problem+json", "unsupported_media_type")
    ch = appliance.bank.channels["emu001"]
    appliance.bank.acquire("emu001", "held-by-test")  # a job on it: no reset, no switch
    try:
        status, answer = await act("reset", {"channel": "emu001"})
        assert status == 409 and "is busy" in answer["detail"] and "drop" in answer["detail"]
        status, answer = await act("switch", {"channel": "emu001", "slot": 1})
        assert status == 409 and "never during a call" in answer["detail"]
    finally:
        appliance.bank.release("emu001", cooldown=0.0, reason="test over")
    assert ch.state.value == "idle" and bank.emu.modem("emu001").active_slot == 0

    # A quarantine from the page survives a restart (the rotation snapshot is written at once).
    sim_id = appliance.bank.channels["emu000"].sims[1].sim_id
    status, answer = await act("quarantine", {"channel": "emu000", "slot": 1, "reason": "operator letter 12/2026"})
    assert status == 200 and "quarantined" in answer["message"]
    store = appliance.cfg.appliance.store
    await appliance.stop()
    again = await start_appliance({"emulator_state": str(bank.state),
                                   "appliance": {"id": "box-signin", "store": store, "listen": "127.0.0.1:0",
                                                 "token": "t"}})
    assert again.policy.state(sim_id, time.time()).value == "quarantined"
    assert "operator letter 12/2026" in " ".join(again.policy.usage(sim_id, time.time())["quarantine"])


def test_policy_usage_counts_the_rolling_hour_and_day_the_caps_count():
    from appliance.rotation import JobKind, RotationPolicy, SimLimits, SimRef

    p = RotationPolicy(limits=SimLimits(calls_per_day=150, sms_per_day=200))
    now = 1_000_000.0
    p.add_sim(SimRef("8948000000000000001", "+48600000001", "26001", "m0", 0), now=now)
    for t in (now - 90_000, now - 80_000, now - 3_000, now - 100):  # the first is older than a day
        p.record_start("8948000000000000001", JobKind.CALL, t)
    p.record_start("8948000000000000001", JobKind.SMS, now - 10)
    u = p.usage("8948000000000000001", now)
    assert (u["calls_day"], u["calls_hour"], u["sms_day"], u["sms_hour"]) == (3, 2, 1, 1)
    assert u["last_used"] == now - 10 and u["state"] == "busy"  # five starts, no end reported
    assert u["limits"]["calls_per_day"] == 150 and u["quarantine"] is None and u["locks"] == []


async def read_event(resp: aiohttp.ClientResponse) -> tuple[str, str]:
    """The next server-sent event (its name and data)."""
    return await next_event(resp.content)


async def test_live_updates_by_server_sent_events(appliance, http, bank):
    technician_accounts(appliance.store.conn).add("jan", PASSWORD)
    b = Browser(http, appliance.address)
    async with http.get(appliance.address + "/events.stream") as r:
        assert r.status == 401  # no session, no stream
    assert (await b.sign_in("jan", PASSWORD)).status == 303
    cookie = {"Cookie": f"{COOKIE}={b.jar[COOKIE]}"}
    async with http.get(appliance.address + "/events.stream", headers=cookie, timeout=aiohttp.ClientTimeout(total=60)) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "text/event-stream"
        name, data = await read_event(r)
        doc = json.loads(data)
        assert name == "status" and doc["technician"] == "jan" and len(doc["sims"]) == 4
        # A modem's fault reaches the stream without a poll; the time is printed (a figure, not a test).
        t0 = time.monotonic()
        await bank.emu.inject("emu001", "vanish", seconds=30)
        while True:
            name, data = await read_event(r)
            states = {c["id"]: c["state"] for c in json.loads(data)["channels"]}
            if states["emu001"] == "faulty":
                break
        print(json.dumps({"fault_to_stream_seconds": round(time.monotonic() - t0, 3)}))
        # The account removed: the stream says so and ends.
        technician_accounts(appliance.store.conn).remove("jan")
        while name != "signedout":
            name, _ = await read_event(r)
        with pytest.raises(EOFError):
            await read_event(r)


async def test_an_open_stream_does_not_hold_up_a_stop(tmp_path, bank, start_appliance, http):
    app = await start_appliance({"emulator_state": str(bank.state),
                                 "appliance": {"id": "box-s", "store": str(tmp_path / "s.db"), "listen": "127.0.0.1:0",
                                               "token": "t"}})
    technician_accounts(app.store.conn).add("jan", PASSWORD)
    b = Browser(http, app.address)
    assert (await b.sign_in("jan", PASSWORD)).status == 303
    async with http.get(app.address + "/events.stream", headers={"Cookie": f"{COOKIE}={b.jar[COOKIE]}"}) as r:
        assert (await read_event(r))[0] == "status"
        t0 = time.monotonic()
        await app.stop()
        stopped = time.monotonic() - t0
        with pytest.raises((EOFError, aiohttp.ClientPayloadError)):
            while True:
                await read_event(r)
    # aiohttp would wait up to 60 s (its shutdown_timeout) for a handler still streaming.
    assert stopped < 30, stopped


def test_bench_page_smoke():
    from bench.page import page

    r = CliRunner().invoke(page, ["--modems", "4", "--calls-per-sim", "10", "--events", "50", "--looks", "2", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["sims"] == 8 and out["events_shown"] > 0 and out["look_ms"] > 0
