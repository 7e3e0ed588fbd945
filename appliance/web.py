"""The technician page: one HTML page on every appliance, the JSON it shows, and the
actions a signed-in technician takes from it.

``GET /`` serves a self-contained page (no CDN: appliances often have no internet);
``GET /status.json`` is what it shows (and ``GET /events.stream`` sends it live, as
server-sent events: ``technician/live.py``): channels (state and reason, SIM, masked number,
operator, signal), every SIM of every slot with its traffic against its caps and why it
is held (``technician/sims.py``), the calls up now (``technician/calls.py``), the last
hour's charts and ASR, ACD and PDD per SIM, operator and modem (``technician/traffic.py``),
job counters and why jobs wait, results by outcome, events in words
(``technician/words.py``), link state. ``POST /actions/{name}`` quarantines or releases a
SIM, resets, drains or brings back a modem, switches its slot or selftests one SIM
(``technician/actions.py``).

Nothing but ``/healthz`` and the sign-in form answers without a session: local
technician accounts (``simrotor appliance user add NAME``), a session cookie and a CSRF
token on every action (``common/webauth``). ``[appliance] status_page = false``
switches the page (and its sign-in) off.

Its handlers read the status sources from the application key ``status.STATUS``, which
the runtime sets when it builds the API's application.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Final

from aiohttp import web

from common.phone import mask
from common.webauth import DESK, SESSION, Desk, guard, routes

from .problems import media_problem, problem
from .status import STATUS, Status
from .technician import technician_accounts, technician_door
from .technician.actions import ActionRefused, Actions
from .technician.calls import live_calls
from .technician.live import Streams
from .technician.sims import sim_rows
from .technician.traffic import Traffic
from .technician.words import SCAN_ROWS, trouble

logger = logging.getLogger(__name__)

#: Rows of "Events" on the page.
PAGE_EVENTS: Final = 20
#: Largest action body: a modem id, a slot and a one-line reason.
MAX_ACTION_BODY: Final = 4096

ACTIONS: Final = web.AppKey("technician_actions", Actions)
STREAMS: Final = web.AppKey("technician_streams", Streams)
TRAFFIC: Final = web.AppKey("technician_traffic", Traffic)


def status_document(status: Status, technician: str | None = None, traffic: Traffic | None = None) -> dict[str, Any]:
    hour = (traffic or Traffic(status.store, status.bank, clock=status.clock)).document()
    channels = []
    for ch in status.bank.channels.values():
        d = ch.public()
        d["msisdn"] = mask(d["msisdn"]) if d.get("msisdn") else None
        d["sim_id"] = mask(d["sim_id"]) if d.get("sim_id") else None
        d["imei"] = mask(d["imei"]) if d.get("imei") else None
        info = ch.active_sim.info if ch.active_sim else None
        d["operator_name"] = info.operator_label if info else None  # a name (SimInfo.operator_label); operator is MCC-MNC
        d["quality"] = hour["by_modem"].get(ch.id)
        channels.append(d)
    st = status.summary()
    now = status.clock()
    return {
        "appliance": st["appliance"],
        "technician": technician,
        "uptime_seconds": st["uptime_seconds"],
        "now": time.time(),
        "link": st.get("link"),
        "channels": channels,
        "channel_states": st["channels"],
        "jobs": st["jobs"],
        "scheduler": st["scheduler"],
        "sims": sim_rows(status.bank, status.scheduler.policy, now, status.store.get_kv("balances", {}),
                         hour["by_sim"]),
        "calls": live_calls(status.bank, now),
        "traffic": {k: hour[k] for k in ("from", "to", "calls", "by_operator", "charts")},
        "outcomes": status.store.final_outcomes(),
        "events": trouble(status.store.recent_events(SCAN_ROWS), PAGE_EVENTS),
    }


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>simrotor — appliance</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{{CSRF}}">
<style>
 body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
 header{background:#1d2330;color:#fff;padding:10px 16px;display:flex;gap:8px 24px;align-items:baseline;flex-wrap:wrap}
 header h1{font-size:18px;margin:0} .muted{color:#8a93a6} header form{margin-left:auto}
 header button{background:#39425a;color:#fff;border:0;border-radius:4px;padding:3px 10px;font:inherit}
 main{padding:12px 16px;display:grid;gap:16px}
 section{background:#fff;border-radius:8px;padding:10px 12px;box-shadow:0 1px 2px #0001;min-width:0}
 .scroll{overflow-x:auto}
 h2{font-size:14px;margin:0 0 8px} #filter{font:inherit;font-weight:normal;margin-left:8px;padding:2px 6px;border:1px solid #c9ced8;border-radius:4px;width:min(22em,60%)} table{border-collapse:collapse;width:100%}
 th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eceef2;white-space:nowrap;vertical-align:top}
 td.why{white-space:normal;min-width:16em;max-width:40em} td.why:empty{min-width:0}
 td.acts{white-space:normal;min-width:6em} td.acts button.act{margin:0 4px 3px 0}
 .state{font-weight:600;border-radius:4px;padding:1px 6px}
 .idle,.ready{background:#e3f6e8;color:#146c2e}.busy{background:#e3ecfb;color:#1a4fa0}
 .cooling_down,.paused,.capped{background:#eef0f3}.switching_sim{background:#fff3d6;color:#7a5600}
 .faulty,.locked,.pin_locked{background:#fde4e4;color:#a11}.quarantined{background:#f3e1fb;color:#6b1d8f}
 .opening,.stopped,.unread,.out_of_rotation{background:#eef0f3}
 .cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#fff;border-radius:8px;padding:8px 14px;box-shadow:0 1px 2px #0001}
 .card b{display:block;font-size:20px}
 button.act{font:inherit;font-size:12px;border:1px solid #c9ced8;background:#fff;border-radius:4px;padding:2px 8px;margin-right:4px}
 #error,#live.off{color:#ff9d9d} #live.on{color:#7fd89a} #notice{padding:8px 12px;border-radius:6px;background:#e3f6e8;color:#146c2e}
 #notice.bad{background:#fde4e4;color:#a11} #notice:empty{display:none}
 .charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,420px),1fr));gap:8px 16px}
 .charts svg{width:100%;height:auto;display:block} .charts h3{font-size:12px;font-weight:600;margin:0 0 2px;color:#5c6375}
 .q{font-variant-numeric:tabular-nums} #channels td.q,#sims td.q{white-space:normal;min-width:6em;max-width:7.5em} #sims th,#sims td{padding:4px 5px} .dialing,.alerting{background:#fff3d6;color:#7a5600}.active{background:#e3f6e8;color:#146c2e}
 .help{color:#5c6375;font-size:12px;margin:6px 0 0} .help dt{font-weight:600;display:inline} .help dd{display:inline;margin:0 0 0 4px}
 .help dd::after{content:"";display:block;margin-bottom:2px}
 /* a phone (360-390 px): modems and SIMs as cards, one "column: value" line each */
 @media (max-width: 640px){
  main{padding:8px} section{padding:8px}
  .cards{gap:8px} .card{padding:6px 10px} .card b{font-size:17px}
  #channels thead,#sims thead,#calls thead{display:none}
  #channels,#sims,#calls,#channels tbody,#sims tbody,#calls tbody,#channels tr,#sims tr,#calls tr{display:block}
  #channels tr,#sims tr,#calls tr{border:1px solid #e2e5eb;border-radius:8px;margin:0 0 8px;padding:6px 8px}
  #channels td,#sims td,#calls td{display:flex;gap:8px;border:0;padding:2px 0;white-space:normal;min-width:0;max-width:none;overflow-wrap:anywhere}
  #channels td::before,#sims td::before,#calls td::before{content:attr(data-label);color:#8a93a6;flex:none;width:6.5em}
  #channels td:empty,#sims td:empty,#calls td:empty{display:none}
  td.why{min-width:0}
  #operators th,#operators td{padding:4px 3px;white-space:normal;font-size:13px}
 }
</style></head>
<body>
<header><h1>simrotor <span id="appliance"></span></h1><span class="muted">up <span id="uptime"></span></span>
<span class="muted">link: <span id="link">standalone</span></span><span id="live" class="off">connecting…</span><span id="error"></span>
<form method="post" action="signout"><input type="hidden" name="csrf" value="{{CSRF}}">
<span class="muted" id="technician"></span> <button type="submit" id="signout">Sign out</button></form></header>
<main>
<div id="notice" role="status"></div>
<div class="cards" id="cards"></div>
<section><h2>Live calls</h2><div class="scroll"><table id="calls"><thead><tr><th>modem</th><th>SIM</th><th>callee</th>
<th>direction</th><th>state</th><th>duration</th><th>talk</th><th>job</th></tr></thead><tbody></tbody></table></div>
<p class="help" id="nocalls">No call is up now.</p></section>
<section id="hour"><h2>Last hour <span class="muted" id="hourcalls"></span></h2><div class="charts">
<div><h3>Calls per minute (green: answered)</h3><div id="chart-calls"></div></div>
<div><h3>Answer rate (ASR) per operator</h3><div id="chart-rate"></div></div></div>
<div class="scroll"><table id="operators"><thead><tr><th>operator</th><th>seizures</th><th>answered</th><th>ASR</th><th>ACD</th>
<th>PDD</th></tr></thead><tbody></tbody></table></div>
<dl class="help"><dt>Seizure</dt><dd>a call attempt the network saw: every outcome but channel_error (a dial the modem refused).</dd>
<dt>ASR</dt><dd>answer-seizure ratio: answered seizures / seizures, in %.</dd>
<dt>ACD</dt><dd>average call duration: talk time (answer to release) of the answered seizures / answered seizures.</dd>
<dt>PDD</dt><dd>post-dial delay: from the appliance's dial (ATD) to the ringing (alerting), or to the answer when no ringing came; the mean over seizures that rang or were answered.</dd>
<dt>Window</dt><dd>calls started in the last 60 whole minutes (UTC), read again every 5 s. Modems and SIMs show the same three figures for the same hour (ASR · ACD · PDD, then the seizures).</dd></dl></section>
<section><h2>Modems</h2><div class="scroll"><table id="channels"><thead><tr><th>modem</th><th>state</th><th>reason</th><th>model</th>
<th>dialect</th><th>slot</th><th>number</th><th>operator</th><th>signal</th><th>balance</th><th>job</th><th>ASR · ACD · PDD</th><th>actions</th></tr></thead><tbody></tbody></table></div></section>
<section><h2>SIMs (every slot)</h2><div class="scroll"><table id="sims"><thead><tr><th>modem</th><th>slot</th><th>SIM</th><th>number</th>
<th>operator</th><th>pool</th><th>calls 24 h</th><th>SMS 24 h</th><th>balance</th><th>last used</th><th>ASR · ACD · PDD</th><th>state</th><th>why</th><th>actions</th></tr></thead><tbody></tbody></table></div></section>
<section><h2>Results</h2><div class="scroll"><table id="outcomes"><thead><tr><th>kind</th><th>outcome</th><th>count</th></tr></thead><tbody></tbody></table></div></section>
<section><h2>Events <input id="filter" type="search" placeholder="filter: a modem, a SIM's last digits, a word" aria-label="filter events"></h2><div class="scroll"><table id="events"><thead><tr><th>when</th><th>what</th></tr></thead><tbody></tbody></table></div></section>
</main>
<script>
const CSRF = document.querySelector("meta[name=csrf-token]").content;
const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));
const dur = s => s < 120 ? `${Math.round(s)} s` : s < 7200 ? `${Math.round(s/60)} min` : `${(s/3600).toFixed(1)} h`;
const ago = (t, now) => t == null ? "never" : `${dur(Math.max(0, now - t))} ago`;
const cap = (n, c) => n == null ? "—" : c == null ? `${n}` : `${n} / ${c}`;
const money = (amount, currency) => amount == null ? "—" : esc(amount.toFixed(2) + (currency ? " " + currency : ""));
function bars(dbm){ if(dbm==null) return "—"; return `${dbm} dBm`; }
const pct = v => v == null ? "—" : `${v} %`, secs = v => v == null ? "—" : `${v} s`;
const quality = q => !q ? "—" : `${pct(q.asr)} · ${secs(q.acd)} · ${secs(q.pdd)} <span class="muted">(${q.seizures})</span>`;
let skew = 0;  // the appliance's clock minus this browser's: call durations tick here between updates
function tick(){
  const now = Date.now() / 1000 + skew;
  document.querySelectorAll("#calls [data-since]").forEach(td => td.textContent = dur(Math.max(0, now - Number(td.dataset.since))));
}
setInterval(tick, 1000);
function rows(id, html){
  const t = document.getElementById(id), heads = [...t.querySelectorAll("thead th")].map(th => th.textContent);
  t.querySelector("tbody").innerHTML = html.join("");
  // each cell carries its column's name: on a phone a row is a card of "name value" lines
  t.querySelectorAll("tbody tr").forEach(tr => [...tr.children].forEach((td, i) => td.dataset.label = heads[i] || ""));
}
function notice(text, bad){ const n = document.getElementById("notice"); n.textContent = text; n.className = bad ? "bad" : ""; }
async function act(name, body, question, ask){
  // ask: the body field a prompt's answer goes to (a quarantine's reason, a selftest's reference number)
  if(ask){ const answer = prompt(question); if(answer === null) return; body[ask] = answer; }
  else if(!confirm(question)) return;
  try{
    const r = await fetch("actions/" + name, {method: "POST", cache: "no-store",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": CSRF}, body: JSON.stringify(body)});
    const d = await r.json().catch(() => ({}));
    if(r.status === 401){ location.href = "signin"; return; }
    notice(r.ok ? d.message : `refused: ${d.detail || d.title || r.status}`, !r.ok);
  }catch(err){ notice("cannot reach the appliance", true); }
  refresh();
}
document.addEventListener("click", ev => {
  const b = ev.target.closest("button[data-act]"); if(!b) return;
  const a = b.dataset.act, m = b.dataset.modem, slot = b.dataset.slot == null ? null : Number(b.dataset.slot), sim = b.dataset.sim;
  if(a === "quarantine") act(a, {channel: m, slot}, `Quarantine SIM ${sim} (${m} slot ${slot + 1})? Nothing will be placed on it until it is released. Why?`, "reason");
  if(a === "release") act(a, {channel: m, slot}, `Release SIM ${sim} (${m} slot ${slot + 1})? Its quarantine and locks are lifted and it takes calls again.`);
  if(a === "reset") act(a, {channel: m}, `Reset modem ${m}? It restarts and is out of service until it answers again.`);
  if(a === "switch") act(a, {channel: m, slot}, `Switch modem ${m} to slot ${slot + 1}? It is out of service while that SIM registers.`);
  if(a === "drain") act(a, {channel: m}, `Drain modem ${m}? No new calls are placed on it; the call on it now ends as it would, then it stops and can be unplugged.`);
  if(a === "bring_back") act(a, {channel: m}, `Bring modem ${m} back? Its port is opened again and it returns to rotation.`);
  if(a === "selftest") act(a, {channel: m, slot}, `Selftest SIM ${sim} (${m} slot ${slot + 1})? Modem ${m} leaves rotation for up to a minute`
    + (b.dataset.active ? "" : ` and switches to slot ${slot + 1}`) + ". Registration, signal and balance are checked; "
    + "to test an SMS and a call too, give the number of a phone to receive them (yours), or leave it empty:", "reference");
});
function modemActions(c){
  if(c.state === "stopped") return c.pending ? "" : `<button class="act" data-act="bring_back" data-modem="${esc(c.id)}">Bring back</button>`;
  let h = `<button class="act" data-act="reset" data-modem="${esc(c.id)}">Reset</button>`;
  if(!c.pending) h += `<button class="act" data-act="drain" data-modem="${esc(c.id)}">Drain</button>`;
  for(let s = 0; s < c.slots; s++) if(c.slots > 1 && s !== c.active_slot)
    h += `<button class="act" data-act="switch" data-modem="${esc(c.id)}" data-slot="${s}">Use slot ${s + 1}</button>`;
  return h;
}
function simActions(s){
  let h = "";
  if(s.can_quarantine) h += `<button class="act" data-act="quarantine" data-modem="${esc(s.channel)}" data-slot="${s.slot}" data-sim="${esc(s.sim)}">Quarantine</button>`;
  if(s.can_release) h += `<button class="act" data-act="release" data-modem="${esc(s.channel)}" data-slot="${s.slot}" data-sim="${esc(s.sim)}">Release</button>`;
  if(s.sim) h += `<button class="act" data-act="selftest" data-modem="${esc(s.channel)}" data-slot="${s.slot}" data-sim="${esc(s.sim)}"${s.active ? " data-active=1" : ""}>Selftest</button>`;
  return h;
}
async function refresh(){
  try{
    const r = await fetch("status.json", {cache: "no-store"});
    if(r.status === 401){ location.href = "signin"; return; }
    render(await r.json());
  }catch(err){ document.getElementById("error").textContent = "cannot reach the appliance"; }
}
const lastCharts = [null, null];
function render(d){
    document.getElementById("error").textContent = "";
    document.getElementById("appliance").textContent = d.appliance;
    document.getElementById("technician").textContent = d.technician || "";
    document.getElementById("uptime").textContent = dur(d.uptime_seconds);
    document.getElementById("link").textContent = d.link ? (d.link.connected ? "connected" : "disconnected") : "standalone";
    const cards = Object.entries(d.channel_states).map(([k,v]) => `<div class="card"><b>${v}</b>${esc(k)}</div>`)
      .concat(Object.entries(d.jobs).map(([k,v]) => `<div class="card"><b>${v}</b>jobs ${esc(k)}</div>`))
      .concat(Object.entries(d.scheduler.waiting_for || {}).map(([k,v]) =>
        `<div class="card waiting" data-waiting="${esc(k)}"><b>${v}</b>waiting: ${esc(k.replaceAll("_", " "))}</div>`));
    document.getElementById("cards").innerHTML = cards.join("");
    rows("channels", d.channels.map(c => `<tr data-channel="${esc(c.id)}"><td>${esc(c.id)}</td>
      <td><span class="state ${esc(c.state)}">${esc(c.state)}</span></td><td>${esc(c.reason)}</td><td>${esc(c.model)}</td>
      <td>${esc(c.dialect)}</td><td>${c.active_slot + 1}/${c.slots}</td><td>${esc(c.msisdn)}</td><td title="${esc(c.operator)}">${esc(c.operator_name || c.operator)}</td>
      <td>${bars(c.signal_dbm)}</td><td>${money(c.balance, c.balance_currency)}</td><td>${esc(c.job_id)}</td>
      <td class="q">${quality(c.quality)}</td><td class="acts">${modemActions(c)}</td></tr>`));
    rows("sims", d.sims.map(s => `<tr data-sim="${esc(s.channel)}/${s.slot}"><td>${esc(s.channel)}</td>
      <td>${s.slot + 1}${s.active ? " (active)" : ""}</td><td>${esc(s.sim || "—")}</td><td>${esc(s.msisdn || "—")}</td>
      <td>${esc(s.operator || "—")}</td><td>${esc(s.pools.join(", ") || "—")}</td>
      <td>${cap(s.calls_day, s.limits && s.limits.calls_per_day)}</td><td>${cap(s.sms_day, s.limits && s.limits.sms_per_day)}</td>
      <td title="${s.balance_at == null ? "" : "checked " + esc(ago(s.balance_at, d.now))}">${money(s.balance, s.balance_currency)}</td>
      <td>${ago(s.last_used, d.now)}</td><td class="q">${quality(s.quality)}</td><td><span class="state ${esc(s.state)}">${esc(s.state.replaceAll("_", " "))}</span></td>
      <td class="why">${esc(s.why)}</td><td class="acts">${simActions(s)}</td></tr>`));
    skew = d.now - Date.now() / 1000;
    rows("calls", d.calls.map(c => `<tr data-call="${esc(c.channel)}"><td>${esc(c.channel)}</td><td>${esc(c.sim || "—")} (slot ${c.slot + 1})</td>
      <td>${esc(c.callee || "—")}</td><td>${c.direction === "in" ? "callback (in)" : "out"}</td>
      <td><span class="state ${esc(c.state)}">${esc(c.state)}</span></td><td data-since="${c.since}">${dur(Math.max(0, d.now - c.since))}</td>
      <td${c.answered_at == null ? "" : ` data-since="${c.answered_at}"`}>${c.answered_at == null ? "—" : dur(Math.max(0, d.now - c.answered_at))}</td>
      <td>${esc(c.job_id)}</td></tr>`));
    document.getElementById("nocalls").hidden = d.calls.length > 0;
    const h = d.traffic;
    document.getElementById("hourcalls").textContent = `${h.calls} call attempt${h.calls === 1 ? "" : "s"}`;
    // the charts are SVG made by the appliance (technician/traffic.py, every text escaped there)
    if(h.charts.calls !== lastCharts[0]) document.getElementById("chart-calls").innerHTML = lastCharts[0] = h.charts.calls;
    if(h.charts.answer_rate !== lastCharts[1]) document.getElementById("chart-rate").innerHTML = lastCharts[1] = h.charts.answer_rate;
    rows("operators", h.by_operator.map(o => `<tr data-operator="${esc(o.operator)}"><td>${esc(o.operator)}</td><td>${o.seizures}</td>
      <td>${o.answered}</td><td class="q">${pct(o.asr)}</td><td class="q">${secs(o.acd)}</td><td class="q">${secs(o.pdd)}</td></tr>`));
    rows("outcomes", d.outcomes.map(o => `<tr><td>${esc(o.kind)}</td><td>${esc(o.outcome)}</td><td>${o.count}</td></tr>`));
    rows("events", d.events.map(e => `<tr data-kind="${esc(e.kind)}"><td>${new Date(e.at*1000).toLocaleTimeString()}</td>
      <td class="why">${esc(e.text)}</td></tr>`));
    filterEvents();
}
function filterEvents(){
  const words = document.getElementById("filter").value.toLowerCase().split(" ").filter(Boolean);
  document.querySelectorAll("#events tbody tr").forEach(tr => {
    const text = tr.textContent.toLowerCase();
    tr.hidden = !words.every(w => text.includes(w));
  });
}
document.getElementById("filter").addEventListener("input", filterEvents);
// Live updates: server-sent events; on a drop the browser reconnects by itself (retry:
// 2000) and the header says the updates are lost meanwhile; a stream refused (the session
// ended) leads back to the sign-in through one fetch of status.json.
function live(on){
  const l = document.getElementById("live");
  l.textContent = on ? "live" : "live updates lost — reconnecting";
  l.className = on ? "on" : "off";
}
function connect(){
  const es = new EventSource("events.stream");
  es.addEventListener("status", ev => { live(true); render(JSON.parse(ev.data)); });
  es.addEventListener("signedout", () => { es.close(); location.href = "signin"; });
  es.onerror = () => {
    live(false);
    if(es.readyState === EventSource.CLOSED) setTimeout(async () => { await refresh(); connect(); }, 2000);
  };
}
connect();
</script></body></html>
"""


async def page(request: web.Request) -> web.Response:
    session = request[SESSION]
    return web.Response(text=PAGE.replace("{{CSRF}}", session.csrf), content_type="text/html",
                        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                 "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
                                 "style-src 'unsafe-inline'; frame-ancestors 'none'"})


async def status_json(request: web.Request) -> web.Response:
    return web.json_response(status_document(request.app[STATUS], request[SESSION].name, request.app[TRAFFIC]),
                             headers={"Cache-Control": "no-store"})


async def events_stream(request: web.Request) -> web.StreamResponse:
    """``GET /events.stream``: the status document as server-sent events (technician/live.py)."""
    desk, status, traffic = request.app[DESK], request.app[STATUS], request.app[TRAFFIC]

    def document() -> dict[str, Any] | None:
        session = desk.session_of(request)
        return None if session is None else status_document(status, session.name, traffic)

    return await request.app[STREAMS].serve(request, document)


async def action(request: web.Request) -> web.Response:
    """``POST /actions/{name}`` with ``{"channel": id, "slot": n, "reason": "…"}``: the
    action's sentence, or a problem (appliance.problems) with the reason it was refused."""
    name = request.match_info["name"]
    actions = request.app[ACTIONS]
    by = request[SESSION].name
    if (refused := media_problem(request)) is not None:
        return refused
    raw = await request.content.read(MAX_ACTION_BODY + 1)
    if len(raw) > MAX_ACTION_BODY:
        return problem(request, 413, "too_large", {"field": "body", "reason": f"at most {MAX_ACTION_BODY} bytes"})
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return problem(request, 400, "invalid_json", {"field": "body", "reason": "not JSON"})
    if not isinstance(body, dict):
        return problem(request, 400, "invalid_body", {"field": "body", "reason": "expected a JSON object"})
    try:
        if name == "quarantine":
            message = actions.quarantine(by, body.get("channel"), body.get("slot"), body.get("reason"))
        elif name == "release":
            message = actions.release(by, body.get("channel"), body.get("slot"))
        elif name == "reset":
            message = actions.reset(by, body.get("channel"))
        elif name == "switch":
            message = actions.switch(by, body.get("channel"), body.get("slot"))
        elif name == "drain":
            message = actions.drain(by, body.get("channel"))
        elif name == "bring_back":
            message = actions.bring_back(by, body.get("channel"))
        elif name == "selftest":
            message = actions.selftest(by, body.get("channel"), body.get("slot"), body.get("reference"))
        else:
            return problem(request, 404, "not_found", f"no action {name[:40]!r}; one of quarantine, release, reset, "
                           "switch, drain, bring_back, selftest")
    except ActionRefused as exc:
        return problem(request, exc.status, "refused", str(exc))
    return web.json_response({"message": message})


def add_routes(app: web.Application) -> None:
    """The page's routes, its sign-in and its guard on the API's application (which holds
    ``STATUS``)."""
    status = app[STATUS]
    app[DESK] = Desk.build(technician_door(status.appliance_id), technician_accounts(status.store.conn))
    app[ACTIONS] = Actions(status.bank, status.scheduler.policy, status.store, status.scheduler.cfg, clock=status.clock)
    app[TRAFFIC] = Traffic(status.store, status.bank, clock=status.clock)
    app.middlewares.append(guard(problem))

    async def close_actions(app: web.Application) -> None:
        await app[ACTIONS].close()

    app.on_cleanup.append(close_actions)
    app[STREAMS] = Streams()
    status.bank.on_change(app[STREAMS].wake)  # a channel move is on every open page at once
    app.on_shutdown.append(app[STREAMS].close)  # open pages never hold up a stop
    app.router.add_routes(routes())
    app.router.add_get("/", page)
    app.router.add_get("/status.json", status_json)
    app.router.add_get("/events.stream", events_stream)
    app.router.add_post("/actions/{name}", action)
