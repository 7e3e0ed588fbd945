"""The overview page as HTML, rendered on the server: the page itself (``page_html``) and
its panels (``panels_html``), which the live stream sends again whenever they change.

Phone first: cards, one column at 390 px, as many as fit on a desktop; no table wider
than a card, no CDN, no build step, one small inline script (the stream). Every figure a
test or a person checks carries a ``data-`` attribute with the value as the API gives it
(``data-eta`` the report's ``eta.at``), beside the words shown.
"""
from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any, Final

#: Outcome colours (common/contract.py ``Outcome``): a person reached or a message delivered
#: green, machines and unanswered grey-blue, the line's refusals amber/orange, dead numbers
#: and errors red, our own refusals and cancellations purple/grey.
OUTCOME_COLOURS: Final = {
    "answered_human": "#2f8f4e", "delivered": "#2f8f4e", "active": "#2f8f4e", "submitted": "#5aa469",
    "answered_machine": "#7c8db0", "no_answer": "#a9b4c8", "no_report": "#a9b4c8", "unknown": "#a9b4c8",
    "busy": "#c9a227", "rejected": "#d0703c", "unreachable": "#b5651d", "absent": "#b5651d",
    "invalid_number": "#c0392b", "invalid": "#c0392b", "failed": "#c0392b", "network_error": "#a93226",
    "channel_error": "#a93226", "audio_fault": "#a93226", "interrupted": "#a93226",
    "refused_by_policy": "#8e44ad", "no_eligible_sim": "#8e44ad", "expired": "#95a5a6", "cancelled": "#95a5a6",
}
OTHER_COLOUR: Final = "#6c7a89"
LINK_WORDS: Final = {"up": "link up", "quiet": "link quiet", "down": "link down"}


def _ago(seconds: int | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 90:
        return f"{seconds} s ago"
    if seconds < 5400:
        return f"{round(seconds / 60)} min ago"
    if seconds < 48 * 3600:
        return f"{round(seconds / 3600)} h ago"
    return f"{round(seconds / 86400)} days ago"


def _eta_words(eta: dict[str, Any], generated_at: str | None) -> str:
    at = eta.get("at")
    if at is None:
        return "no ETA yet" if eta.get("basis") == "none" else "not within a year"
    end = datetime.fromisoformat(at)
    now = datetime.fromisoformat(generated_at) if generated_at else datetime.now(UTC)
    left = (end - now).total_seconds()
    if left <= 0:
        return "finished"
    span = f"{round(left / 60)} min" if left < 5400 else (f"{left / 3600:.1f} h" if left < 48 * 3600
                                                          else f"{left / 86400:.1f} days")
    return f"in {span} ({end:%d %b %H:%M} UTC)"


def _fact(label: str, value: str, key: str, raw: Any) -> str:
    return (f'<div class="fact"><dt>{escape(label)}</dt>'
            f'<dd data-{key}="{escape(str(raw if raw is not None else ""))}">{escape(value)}</dd></div>')


def appliance_card(a: dict[str, Any]) -> str:
    sims_detail = ", ".join(f"{n} {s}" for s, n in a["sims_by_state"].items()) or "none reported"
    busy = "?" if a["busy"] is None else str(a["busy"])
    facts = "".join((
        _fact("Last seen", _ago(a["seen_seconds_ago"]), "last-seen", a["last_seen"]),
        _fact("Version", a["version"] or "?", "version", a["version"]),
        _fact("Channels busy", f"{busy} of {a['channels']}", "channels", a["channels"]),
        _fact("SIMs usable", f"{a['sims_usable']} of {a['sims']}", "sims-usable", a["sims_usable"]),
        _fact("Jobs in flight", str(a["jobs_in_flight"]), "jobs-in-flight", a["jobs_in_flight"]),
        _fact("Queue on the box", "?" if a["queued"] is None else str(a["queued"]), "queued", a["queued"]),
    ))
    return (f'<article class="card appliance" data-appliance="{escape(a["id"])}" data-link="{a["link"]}">'
            f'<header><h3>{escape(a["id"])}</h3><span class="pill {a["link"]}">{LINK_WORDS[a["link"]]}</span></header>'
            f'<dl>{facts}</dl><p class="small">SIMs: {escape(sims_detail)}</p></article>')


def _mix_bar(outcomes: dict[str, int]) -> str:
    total = sum(outcomes.values())
    if not total:
        return '<p class="small">no results yet</p>'
    parts, legend = [], []
    for outcome, n in outcomes.items():
        colour = OUTCOME_COLOURS.get(outcome, OTHER_COLOUR)
        parts.append(f'<span style="flex:{n};background:{colour}" title="{escape(outcome)}: {n}"></span>')
        legend.append(f'<li data-outcome="{escape(outcome)}" data-n="{n}"><i style="background:{colour}"></i>'
                      f'{escape(outcome.replace("_", " "))} {n}</li>')
    return f'<div class="mix">{"".join(parts)}</div><ul class="legend">{"".join(legend)}</ul>'


def campaign_card(c: dict[str, Any]) -> str:
    counts, eta = c["contacts"], c["eta"]
    pct = 0.0 if c["progress"] is None else c["progress"] * 100
    rate = "—" if c["contact_rate"] is None else f"{c['contact_rate'] * 100:.0f} %"
    facts = "".join((
        _fact("Done", f"{counts['done']} of {counts['total']}", "done", counts["done"]),
        _fact("Waiting", str(counts["waiting"]), "waiting", counts["waiting"]),
        _fact("In flight", str(counts["in_flight"]), "in-flight", counts["in_flight"]),
        _fact("Contact rate", rate, "contact-rate", c["contact_rate"]),
        _fact("Promises", str(c["promises_to_pay"]), "promises", c["promises_to_pay"]),
        _fact("Pace", f"{round(eta['contacts_per_hour'])}/h ({eta['basis']})", "pace", eta["contacts_per_hour"]),
    ))
    return (f'<article class="card campaign" data-campaign="{escape(c["id"])}" data-state="{escape(c["state"])}"'
            f' data-total="{counts["total"]}" data-generated="{escape(c["generated_at"] or "")}">'
            f'<header><h3>{escape(c["name"])}</h3><span class="pill {escape(c["state"])}">{escape(c["state"])}</span>'
            f'</header><div class="progress" role="progressbar" aria-valuenow="{pct:.0f}" aria-valuemin="0"'
            f' aria-valuemax="100"><span style="width:{pct:.1f}%"></span></div>'
            f'<p class="eta">ETA <time data-eta="{escape(eta["at"] or "")}" datetime="{escape(eta["at"] or "")}">'
            f'{escape(_eta_words(eta, c["generated_at"]))}</time> · {eta["contacts_left"]} left</p>'
            f'<dl>{facts}</dl>{_mix_bar(c["outcomes"])}</article>')


def panels_html(doc: dict[str, Any]) -> str:
    apps = "".join(appliance_card(a) for a in doc["appliances"]) or \
        '<p class="empty">No appliance has enrolled yet: <code>simrotor controller enroll-token</code>.</p>'
    camps = "".join(campaign_card(c) for c in doc["campaigns"]) or \
        '<p class="empty">No campaign yet: the CRM creates them through <code>POST /v1/campaigns</code>.</p>'
    up = sum(1 for a in doc["appliances"] if a["link"] == "up")
    return (f'<section id="appliances" data-generated="{escape(doc["generated_at"] or "")}"><h2>Appliances '
            f'<small>{up} of {len(doc["appliances"])} up</small></h2><div class="cards">{apps}</div></section>'
            f'<section id="campaigns"><h2>Campaigns <small>{len(doc["campaigns"])}</small></h2>'
            f'<div class="cards">{camps}</div></section>')


STYLE: Final = """
*{box-sizing:border-box} body{font:15px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header.top{display:flex;gap:8px;align-items:center;justify-content:space-between;padding:10px 14px;background:#1d2330;color:#fff}
header.top h1{font-size:17px;margin:0;white-space:nowrap} header.top form{margin:0}
header.top button{font:inherit;background:#fff2;color:#fff;border:0;border-radius:6px;padding:6px 10px}
#who{font-size:13px;opacity:.8;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
#live{font-size:13px;padding:6px 14px;background:#e8f4ec;color:#235} #live.lost{background:#fdecea;color:#8a1c12}
main{padding:8px 12px 24px;max-width:1280px;margin:0 auto} h2{font-size:16px;margin:16px 2px 8px} h2 small{color:#667;font-weight:400}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:10px}
.card{background:#fff;border-radius:10px;padding:12px 14px;box-shadow:0 1px 2px #0002;min-width:0}
.card header{display:flex;justify-content:space-between;align-items:center;gap:8px}
.card h3{font-size:15px;margin:0;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.pill{font-size:12px;border-radius:10px;padding:2px 8px;background:#eef0f3;white-space:nowrap}
.pill.up,.pill.running{background:#dff3e4;color:#1e6b37} .pill.down,.pill.cancelled{background:#fde2df;color:#8a1c12}
.pill.quiet,.pill.paused{background:#fff3cd;color:#7a5b00} .pill.done{background:#e3ecfa;color:#1d4f91}
dl{display:grid;grid-template-columns:1fr 1fr;gap:6px 12px;margin:10px 0 4px} .fact{min-width:0}
dt{font-size:12px;color:#667} dd{margin:0;font-weight:600;overflow-wrap:anywhere}
.small,.empty{font-size:13px;color:#556;margin:6px 0 0} code{background:#eef0f3;padding:1px 4px;border-radius:4px}
.progress{height:10px;background:#eef0f3;border-radius:5px;overflow:hidden;margin:10px 0 6px}
.progress span{display:block;height:100%;background:#2f8f4e}
.eta{margin:0;font-size:14px} .mix{display:flex;height:10px;border-radius:5px;overflow:hidden;margin-top:8px}
.legend{list-style:none;padding:0;margin:6px 0 0;display:flex;flex-wrap:wrap;gap:4px 12px;font-size:12px}
.legend i{display:inline-block;width:9px;height:9px;border-radius:2px;margin-right:4px}
"""

SCRIPT: Final = """
(() => {
  const live = document.getElementById("live"), panels = document.getElementById("panels");
  const es = new EventSource("events.stream");
  es.addEventListener("panels", e => { panels.innerHTML = e.data; live.className = "";
    live.textContent = "Live: updated " + new Date().toLocaleTimeString(); });
  es.addEventListener("signedout", () => { es.close(); location.href = "signin"; });
  es.onerror = () => { live.className = "lost";
    live.textContent = "Live updates lost: reconnecting… (the figures below may be old)"; };
})();
"""


def page_html(doc: dict[str, Any], *, user: str, csrf: str, base: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>simrotor — overview</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head><body>
<header class="top"><h1>simrotor overview</h1><span id="who">{escape(user)}</span>
<form method="post" action="{base}/signout"><input type="hidden" name="csrf" value="{escape(csrf)}">
<button type="submit" id="signout">Sign out</button></form></header>
<div id="live">Live: connecting…</div>
<main id="panels">{panels_html(doc)}</main>
<script>{SCRIPT}</script></body></html>"""
