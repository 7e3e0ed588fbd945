"""The selftest's report as a person reads it: a text table for the terminal, and one
self-contained HTML file the installer hands over (inline style, no script, no font or
CDN to fetch: it opens the same on a laptop without network years later). Every value in
the HTML is escaped: an operator name or a USSD answer is text from the network."""
from __future__ import annotations

from html import escape
from typing import Final

from .selftest import MIN_SIGNAL_DBM, Check, SelftestReport, SimResult

#: Columns of both renderings: (check name, heading).
CHECKS: Final = (("registration", "registration"), ("signal", "signal"), ("sms", "test SMS"),
                 ("call", "test call"), ("balance", "balance"))
#: The words a check's state is shown with.
MARK: Final = {True: "pass", False: "FAIL", None: "skipped"}


def _cell(c: Check | None) -> str:
    return "-" if c is None else f"{MARK[c.ok]}: {c.detail}"


def _other(sim: SimResult) -> list[Check]:
    """Checks outside the columns (the port could not be opened, a slot refused)."""
    named = {n for n, _ in CHECKS}
    return [c for c in sim.checks if c.name not in named]


def text(report: SelftestReport) -> str:
    lines = [(f"selftest of {report.appliance_id}, {report.started_at}, reference {report.reference or 'none'} "
             f"(ports {report.ports})")]
    for sim in report.sims:
        lines.append(f"{sim.modem_id} slot {sim.slot}  {'PASS' if sim.passed else 'FAIL'}  ICCID {sim.iccid or '-'}  "
                     f"number {sim.msisdn or '-'}  {sim.operator or ''}".rstrip())
        for name, heading in CHECKS:
            c = sim.check(name)
            if c is not None:
                lines.append(f"    {heading:<13} {_cell(c)}")
        for c in _other(sim):
            lines.append(f"    {c.name:<13} {_cell(c)}")
        if sim.fix and not sim.passed:
            lines.append(f"    fix:          {sim.fix}")
    lines += [f"note: {n}" for n in report.notes]
    passed = sum(1 for s in report.sims if s.passed)
    lines.append(f"{passed} of {len(report.sims)} SIMs passed in {report.seconds:.1f} s")
    return "\n".join(lines)


_STYLE: Final = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:20px;margin:0 0 .2em} p.meta{color:#555;margin:0 0 1.2em}
table{border-collapse:collapse;width:100%} th,td{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f2f2f2} td.pass{background:#e8f5e9} td.fail{background:#fdecea;font-weight:600} td.skipped{color:#777}
span.verdict{font-weight:700} .PASS{color:#1b5e20} .FAIL{color:#b71c1c} td.fix{color:#b71c1c}
@media print{body{margin:0}}
"""


def _td(c: Check | None) -> str:
    if c is None:
        return "<td>-</td>"
    cls = {True: "pass", False: "fail", None: "skipped"}[c.ok]
    return f'<td class="{cls}">{escape(MARK[c.ok])}<br>{escape(c.detail)}</td>'


def html(report: SelftestReport) -> str:
    """The hand-over document: one file, everything inline, every value escaped."""
    passed = sum(1 for s in report.sims if s.passed)
    verdict = "PASS" if report.passed else "FAIL"
    rows = []
    for sim in report.sims:
        other = "".join(f"<br>{escape(c.name)}: {escape(MARK[c.ok])}: {escape(c.detail)}" for c in _other(sim))
        fix = f'<tr><td class="fix" colspan="{4 + len(CHECKS)}">fix: {escape(sim.fix)}</td></tr>' \
            if sim.fix and not sim.passed else ""
        rows.append(
            f"<tr><td>{escape(sim.modem_id)} / {sim.slot}<br><small>{escape(sim.port)}</small>{other}</td>"
            f"<td>{escape(sim.iccid or '-')}</td><td>{escape(sim.msisdn or '-')}<br>"
            f"<small>{escape(sim.operator or '')}</small></td>"
            + "".join(_td(sim.check(name)) for name, _ in CHECKS)
            + f'<td><span class="verdict {"PASS" if sim.passed else "FAIL"}">{"PASS" if sim.passed else "FAIL"}'
              "</span></td></tr>" + fix)
    heads = "".join(f"<th>{escape(h)}</th>" for _, h in CHECKS)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>simrotor selftest: {escape(report.appliance_id)}</title>
<style>{_STYLE}</style></head>
<body>
<h1>Selftest of appliance {escape(report.appliance_id)}: <span class="verdict {verdict}">{verdict}</span></h1>
<p class="meta">{escape(report.started_at)} &middot; reference number {escape(report.reference or "none")} &middot;
{passed} of {len(report.sims)} SIMs passed &middot; {report.seconds:.1f} s &middot; ports {escape(report.ports)}</p>
<table>
<thead><tr><th>modem / slot</th><th>ICCID</th><th>number</th>{heads}<th>result</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table>
{"".join(f'<p class="meta">note: {escape(n)}</p>' for n in report.notes)}
<p class="meta">Made by <code>simrotor provision selftest</code>. Signal passes from {MIN_SIGNAL_DBM} dBm.</p>
</body></html>
"""

