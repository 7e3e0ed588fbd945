"""The technician page: one HTML page on every appliance, and the JSON it polls.

``GET /`` serves a self-contained page (no CDN: appliances often have no internet);
``GET /status.json`` is what it shows: channels (state and reason, SIM, masked number,
operator, signal), job counters, results by outcome, recent trouble, link state. Read-only
and without phone numbers in clear (masked but the last 3 digits, as in the logs), so it
needs no token; ``[appliance] status_page = false`` switches it off.

Its handlers read the status sources from the application key ``status.STATUS``, which
the runtime sets when it builds the API's application.
"""
from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from common.phone import mask

from .status import STATUS, Status


def status_document(status: Status) -> dict[str, Any]:
    channels = []
    for ch in status.bank.channels.values():
        d = ch.public()
        d["msisdn"] = mask(d["msisdn"]) if d.get("msisdn") else None
        d["sim_id"] = mask(d["sim_id"]) if d.get("sim_id") else None
        channels.append(d)
    st = status.summary()
    return {
        "appliance": st["appliance"],
        "uptime_seconds": st["uptime_seconds"],
        "now": time.time(),
        "link": st.get("link"),
        "channels": channels,
        "channel_states": st["channels"],
        "jobs": st["jobs"],
        "scheduler": st["scheduler"],
        "outcomes": status.store.final_outcomes(),
        "events": [{**e, "subject": mask(e["subject"]) if e["kind"].startswith("sim") else e["subject"]}
                   for e in status.store.recent_events(PAGE_EVENTS)],
    }


#: Rows of "recent trouble" on the page.
PAGE_EVENTS = 20


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>simrotor — appliance</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
 header{background:#1d2330;color:#fff;padding:10px 16px;display:flex;gap:24px;align-items:baseline}
 header h1{font-size:18px;margin:0} .muted{color:#8a93a6}
 main{padding:12px 16px;display:grid;gap:16px}
 section{background:#fff;border-radius:8px;padding:10px 12px;box-shadow:0 1px 2px #0001}
 h2{font-size:14px;margin:0 0 8px} table{border-collapse:collapse;width:100%}
 th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eceef2;white-space:nowrap}
 .state{font-weight:600;border-radius:4px;padding:1px 6px}
 .idle{background:#e3f6e8;color:#146c2e}.busy{background:#e3ecfb;color:#1a4fa0}
 .cooling_down{background:#eef0f3}.switching_sim{background:#fff3d6;color:#7a5600}
 .faulty{background:#fde4e4;color:#a11}.quarantined{background:#f3e1fb;color:#6b1d8f}.opening{background:#eef0f3}
 .cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#fff;border-radius:8px;padding:8px 14px;box-shadow:0 1px 2px #0001}
 .card b{display:block;font-size:20px}
 #error{color:#a11}
</style></head>
<body>
<header><h1>simrotor <span id="appliance"></span></h1><span class="muted">up <span id="uptime"></span></span>
<span class="muted">link: <span id="link">standalone</span></span><span id="error"></span></header>
<main>
<div class="cards" id="cards"></div>
<section><h2>Channels</h2><table id="channels"><thead><tr><th>modem</th><th>state</th><th>reason</th><th>model</th>
<th>dialect</th><th>slot</th><th>number</th><th>operator</th><th>signal</th><th>balance</th><th>job</th></tr></thead><tbody></tbody></table></section>
<section><h2>Results</h2><table id="outcomes"><thead><tr><th>kind</th><th>outcome</th><th>count</th></tr></thead><tbody></tbody></table></section>
<section><h2>Recent trouble</h2><table id="events"><thead><tr><th>when</th><th>what</th><th>where</th><th>detail</th></tr></thead><tbody></tbody></table></section>
</main>
<script>
const esc = s => String(s ?? "").replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));
const dur = s => s < 120 ? `${Math.round(s)} s` : s < 7200 ? `${Math.round(s/60)} min` : `${(s/3600).toFixed(1)} h`;
function bars(dbm){ if(dbm==null) return "—"; return `${dbm} dBm`; }
function rows(id, html){ document.querySelector(`#${id} tbody`).innerHTML = html.join(""); }
async function refresh(){
  try{
    const r = await fetch("status.json", {cache: "no-store"});
    const d = await r.json();
    document.getElementById("error").textContent = "";
    document.getElementById("appliance").textContent = d.appliance;
    document.getElementById("uptime").textContent = dur(d.uptime_seconds);
    document.getElementById("link").textContent = d.link ? (d.link.connected ? "connected" : "disconnected") : "standalone";
    const cards = Object.entries(d.channel_states).map(([k,v]) => `<div class="card"><b>${v}</b>${esc(k)}</div>`)
      .concat(Object.entries(d.jobs).map(([k,v]) => `<div class="card"><b>${v}</b>jobs ${esc(k)}</div>`))
      .concat(Object.entries(d.scheduler.waiting_for || {}).map(([k,v]) =>
        `<div class="card waiting" data-waiting="${esc(k)}"><b>${v}</b>waiting: ${esc(k.replaceAll("_", " "))}</div>`));
    document.getElementById("cards").innerHTML = cards.join("");
    rows("channels", d.channels.map(c => `<tr data-channel="${esc(c.id)}"><td>${esc(c.id)}</td>
      <td><span class="state ${esc(c.state)}">${esc(c.state)}</span></td><td>${esc(c.reason)}</td><td>${esc(c.model)}</td>
      <td>${esc(c.dialect)}</td><td>${c.active_slot + 1}/${c.slots}</td><td>${esc(c.msisdn)}</td><td>${esc(c.operator)}</td>
      <td>${bars(c.signal_dbm)}</td><td>${c.balance == null ? "—" : esc(c.balance)}</td><td>${esc(c.job_id)}</td></tr>`));
    rows("outcomes", d.outcomes.map(o => `<tr><td>${esc(o.kind)}</td><td>${esc(o.outcome)}</td><td>${o.count}</td></tr>`));
    rows("events", d.events.map(e => `<tr><td>${new Date(e.at*1000).toLocaleTimeString()}</td><td>${esc(e.kind)}</td>
      <td>${esc(e.subject)}</td><td>${esc(JSON.stringify(e.detail))}</td></tr>`));
  }catch(err){ document.getElementById("error").textContent = "cannot reach the appliance"; }
}
refresh(); setInterval(refresh, 2000);
</script></body></html>
"""


async def page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


async def status_json(request: web.Request) -> web.Response:
    return web.json_response(status_document(request.app[STATUS]))


def add_routes(app: web.Application) -> None:
    """The page's routes on the API's application (which holds ``STATUS``)."""
    app.router.add_get("/", page)
    app.router.add_get("/status.json", status_json)
